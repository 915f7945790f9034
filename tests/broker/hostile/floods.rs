//! Floods of frames of every type at every stage of a connection: before connection.start-ok,
//! between start-ok and tune-ok, between tune-ok and open, and after open. A heartbeat flood
//! before start-ok once overflowed the stack of the whole process (the handshake skipped
//! heartbeats by recursion).

use std::net::SocketAddr;

use amq_protocol::protocol::{AMQPClass, channel, connection, exchange};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{Abuse, GoingOn, assert_served_during_abuse};
use crate::common::*;

/// How far into the handshake a flooder gets before it floods.
#[derive(Clone, Copy, Debug)]
enum Stage {
    BeforeStartOk,
    BeforeTuneOk,
    BeforeOpen,
    AfterOpen,
}

/// The kinds of frame a flooder repeats.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Heartbeat,
    HeartbeatOnChannel,
    ConnectionMethod,
    ChannelOpen,
    /// A method the broker answers (after open: a passive declare of amq.direct).
    AnsweredMethod,
    ContentHeader,
    ContentBody,
    UnknownFrameType,
}

const KINDS: [Kind; 8] = [
    Kind::Heartbeat,
    Kind::HeartbeatOnChannel,
    Kind::ConnectionMethod,
    Kind::ChannelOpen,
    Kind::AnsweredMethod,
    Kind::ContentHeader,
    Kind::ContentBody,
    Kind::UnknownFrameType,
];

fn one_frame(kind: Kind) -> Vec<u8> {
    match kind {
        Kind::Heartbeat => raw_frame(8, 0, &[], 0xCE),
        Kind::HeartbeatOnChannel => raw_frame(8, 1, &[], 0xCE),
        Kind::ConnectionMethod => method_frame(
            0,
            AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
                channel_max: 10,
                frame_max: 131072,
                heartbeat: 0,
            })),
        ),
        Kind::ChannelOpen => method_frame(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
        ),
        Kind::AnsweredMethod => method_frame(
            1,
            AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                exchange: "amq.direct".into(),
                kind: "direct".into(),
                passive: true,
                ..Default::default()
            })),
        ),
        Kind::ContentHeader => {
            // class 60, weight 0, body size 5, no properties.
            let mut payload = vec![0, 60, 0, 0];
            payload.extend_from_slice(&5u64.to_be_bytes());
            payload.extend_from_slice(&[0, 0]);
            raw_frame(2, 1, &payload, 0xCE)
        }
        Kind::ContentBody => raw_frame(3, 1, b"hello", 0xCE),
        Kind::UnknownFrameType => raw_frame(9, 0, b"??", 0xCE),
    }
}

/// Connects and walks the handshake up to `stage`; `None` if the broker refused meanwhile.
async fn reach(addr: SocketAddr, stage: Stage) -> Option<TcpStream> {
    let mut raw = tokio::time::timeout(WAIT, async {
        let mut raw = RawClient::connect(addr).await;
        raw.start().await;
        raw
    })
    .await
    .ok()?;
    if !matches!(stage, Stage::BeforeStartOk) {
        let tune = raw.start_ok_as_guest().await;
        if !matches!(stage, Stage::BeforeTuneOk) {
            raw.send_method(0, tune_ok(tune.channel_max, tune.frame_max, 0))
                .await;
        }
        if matches!(stage, Stage::AfterOpen) {
            raw.send_method(0, connection_open("/")).await;
            raw.expect_open_ok().await;
            raw.open_channel(1).await;
        }
    }
    Some(raw.into_stream())
}

/// Floods `kind` frames at `stage` in bursts of 1,000, reconnecting whenever the broker closes
/// the connection, until told to stop. It never reads what the broker sends.
async fn flood(addr: SocketAddr, stage: Stage, kind: Kind, going_on: GoingOn) {
    let burst: Vec<u8> = one_frame(kind).repeat(1000);
    while going_on.yes() {
        let Some(mut socket) = reach(addr, stage).await else {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        while going_on.yes() {
            let sent = tokio::time::timeout(WAIT, socket.write_all(&burst)).await;
            if !matches!(sent, Ok(Ok(()))) {
                break;
            }
        }
    }
}

async fn floods_at(stage: Stage) {
    let mut broker = TestBroker::start();
    let mut abuse = Abuse::new();
    for kind in KINDS {
        let addr = broker.addr();
        abuse.spawn(move |going_on| flood(addr, stage, kind, going_on));
    }
    // Let the floods get going (the original crash took ~10,000 heartbeats).
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_served_during_abuse(&mut broker, 3).await;
    abuse.stop().await;
    broker.assert_alive().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_every_frame_type_before_start_ok_leave_others_served() {
    floods_at(Stage::BeforeStartOk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_every_frame_type_before_tune_ok_leave_others_served() {
    floods_at(Stage::BeforeTuneOk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_every_frame_type_before_open_leave_others_served() {
    floods_at(Stage::BeforeOpen).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_every_frame_type_after_open_leave_others_served() {
    floods_at(Stage::AfterOpen).await;
}

/// The original report, exactly: header, then 10,000 heartbeats (80 KB) before start-ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_heartbeats_before_start_ok_are_ignored() {
    let mut broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_bytes(&raw_frame(8, 0, &[], 0xCE).repeat(10_000))
        .await;
    // The connection is still in the handshake and still answers it.
    let tune = raw.start_ok_as_guest().await;
    raw.tune_ok_and_open(tune.channel_max, tune.frame_max, 0)
        .await;
    broker.assert_alive().await;
}
