//! Limits a peer runs into: opening and closing channels up to channel_max in a tight loop,
//! and `max_connections` (new connections wait, as on RabbitMQ, until one closes).

use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, channel, connection};

use super::{Abuse, assert_served_during_abuse, assert_served_within_5s};
use crate::common::*;

/// A client's channel.close (200, "bye") on `ch`.
fn channel_close_frame(ch: u16) -> Vec<u8> {
    method_frame(ch, channel_close())
}

/// Reads `n` methods of the expected kind, skipping heartbeats.
async fn expect_n(raw: &mut RawClient, n: usize, what: &str, is: impl Fn(&AMQPClass) -> bool) {
    for i in 0..n {
        match raw.recv().await {
            AMQPFrame::Method(_, class) if is(&class) => {}
            other => panic!("{what} {i}/{n}: got {other:?}"),
        }
    }
}

/// Opens every channel up to channel_max (2047), closes them all, twenty times over, with
/// every open and close pipelined; meanwhile other clients are served and memory stays flat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_and_closing_every_channel_many_times_over() {
    let mut broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    let channel_max = 2047u16;
    let opens: Vec<u8> = (1..=channel_max)
        .flat_map(|ch| method_frame(ch, channel_open()))
        .collect();
    let closes: Vec<u8> = (1..=channel_max).flat_map(channel_close_frame).collect();
    let mut rss_after_first = None;
    for round in 0..20 {
        raw.send_bytes(&opens).await;
        expect_n(&mut raw, channel_max as usize, "open-ok", |c| {
            matches!(c, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))
        })
        .await;
        raw.send_bytes(&closes).await;
        expect_n(&mut raw, channel_max as usize, "close-ok", |c| {
            matches!(c, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_)))
        })
        .await;
        if round == 0 {
            rss_after_first = broker.rss_kb();
        }
        if round % 5 == 0 {
            assert_served_within_5s(&broker).await;
        }
    }
    if let (Some(first), Some(now)) = (rss_after_first, broker.rss_kb()) {
        assert!(
            now < first + 50 * 1024,
            "memory grew from {first} kB to {now} kB over 20 rounds of channel churn"
        );
    }
    // One more channel than channel_max is refused with RabbitMQ's 530.
    raw.send_bytes(&opens).await;
    expect_n(&mut raw, channel_max as usize, "open-ok", |c| {
        matches!(c, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)))
    })
    .await;
    raw.send_method(channel_max + 1, channel_open()).await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(
        (code, text),
        not_allowed(
            "number of channels opened (2047) has reached the negotiated channel_max (2047)"
        )
    );
    broker.assert_alive().await;
}

/// The same churn from many connections at once leaves a probe served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_churn_on_many_connections_leaves_others_served() {
    let mut broker = TestBroker::start();
    let mut abuse = Abuse::new();
    for _ in 0..4 {
        let addr = broker.addr();
        abuse.spawn(move |going_on| async move {
            let mut raw = RawClient::connect(addr).await;
            raw.handshake().await;
            while going_on.yes() {
                let mut bytes = Vec::new();
                for ch in 1..=200u16 {
                    bytes.extend(method_frame(ch, channel_open()));
                    bytes.extend(channel_close_frame(ch));
                }
                raw.send_bytes(&bytes).await;
                for _ in 0..400 {
                    raw.recv().await;
                }
            }
        });
    }
    assert_served_during_abuse(&mut broker, 3).await;
    abuse.stop().await;
}

/// With `max_connections = 5`, a sixth connection waits in the listen backlog (no
/// connection.start) until one of the five closes, exactly as RabbitMQ's `connection_max`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_makes_the_next_connection_wait_for_a_free_slot() {
    let broker = TestBroker::spawn_with_config("max_connections = 5\n");
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(broker.raw_open().await);
    }
    let mut waiting = RawClient::connect(broker.addr()).await;
    waiting.send_bytes(b"AMQP\x00\x00\x09\x01").await;
    assert!(
        matches!(
            waiting.recv_within(Duration::from_secs(1)).await,
            Recv::Timeout
        ),
        "a sixth connection was served past max_connections = 5"
    );
    // Closing one frees its slot: the waiting connection gets connection.start.
    let mut first = open.remove(0);
    first.send_method(0, connection_close()).await;
    drop(first);
    match waiting.recv_within(WAIT).await {
        Recv::Frame(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Start(_)),
        )) => {}
        other => panic!("expected connection.start once a slot freed, got {other:?}"),
    }
}
