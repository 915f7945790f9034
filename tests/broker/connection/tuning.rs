//! connection.tune and tune-ok: the values the broker proposes, smaller values a client
//! chooses (frame_max, channel_max), values it must refuse, and heartbeats.

use std::time::{Duration, Instant};

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic, connection, queue};

use crate::common::*;

#[tokio::test]
async fn tune_proposes_channel_max_2047_frame_max_131072_heartbeat_60() {
    let (_broker, mut raw, _) = broker_with_raw_start().await;
    let tune = raw.start_ok_as_guest().await;
    assert_eq!(tune.channel_max, 2047);
    assert_eq!(tune.frame_max, 131_072);
    assert_eq!(tune.heartbeat, 60);
}

#[tokio::test]
async fn lapin_negotiates_server_tune_values() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let config = conn.configuration();
    assert_eq!(config.channel_max(), 2047);
    assert_eq!(config.frame_max(), 131_072);
    assert_eq!(config.heartbeat(), 60);
}

#[tokio::test]
async fn client_smaller_frame_max_splits_deliveries_into_smaller_frames() {
    let (_broker, mut raw, _) = broker_with_raw_start().await;
    raw.start_ok_as_guest().await;
    raw.tune_ok_and_open(2047, 4096, 0).await;
    raw.frame_max = 4096;
    raw.open_channel(1).await;
    let q = unique("frame-max");
    let (_, ok) = raw.rpc(1, queue_declare_exclusive(&q)).await;
    assert!(
        matches!(ok, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))),
        "{ok:?}"
    );
    let body: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    raw.publish(1, "", &q, false, false, &body).await;
    raw.send_method(1, basic_get_method(&q, true)).await;
    match raw.recv_method().await {
        (1, AMQPClass::Basic(basic::AMQPMethod::GetOk(_))) => {}
        other => panic!("expected basic.get-ok, got {other:?}"),
    }
    assert_eq!(raw.recv_content_header(1).await, body.len() as u64);
    let mut got = Vec::new();
    let mut frames = 0;
    while got.len() < body.len() {
        let chunk = raw.recv_content_body(1).await;
        assert!(
            chunk.len() <= 4096 - 8,
            "body frame of {} bytes exceeds frame_max",
            chunk.len()
        );
        got.extend(chunk);
        frames += 1;
    }
    assert_eq!(got, body);
    assert!(
        frames >= 5,
        "20000 bytes at frame_max 4096 need at least 5 frames, got {frames}"
    );
}

#[tokio::test]
async fn client_smaller_channel_max_limits_the_number_of_open_channels() {
    let (_broker, mut raw, _) = broker_with_raw_start().await;
    raw.start_ok_as_guest().await;
    raw.tune_ok_and_open(3, 131_072, 0).await;
    raw.open_channel(1).await;
    raw.open_channel(2).await;
    raw.open_channel(3).await;
    // RabbitMQ 3.10 limits the *count* of open channels, not their numbers.
    raw.send_method(7, channel_open()).await;
    assert_eq!(
        raw.expect_connection_close().await,
        expected_close(
            not_allowed("number of channels opened (3) has reached the negotiated channel_max (3)"),
            0,
            0
        )
    );
}

#[tokio::test]
async fn channel_number_above_channel_max_opens_while_under_the_count_limit() {
    // RabbitMQ 3.10 does not reject a channel *number* above channel_max;
    // only the number of open channels is limited.
    let (_broker, mut raw, _) = broker_with_raw_start().await;
    raw.start_ok_as_guest().await;
    raw.tune_ok_and_open(3, 131_072, 0).await;
    raw.open_channel(4).await;
    raw.open_channel(2048).await;
}

/// After a tune-ok the server cannot accept, the connection never opens:
/// RabbitMQ closes the socket (silently, after a short delay).
async fn assert_tune_ok_refused(channel_max: u16, frame_max: u32) {
    let (_broker, mut raw, _) = broker_with_raw_start().await;
    raw.start_ok_as_guest().await;
    raw.send_method(0, tune_ok(channel_max, frame_max, 0)).await;
    raw.send_method(0, connection_open("/")).await;
    loop {
        match raw.recv_within(Duration::from_secs(10)).await {
            Recv::Closed => return,
            Recv::Frame(AMQPFrame::Method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Close(c)),
            )) => {
                assert_eq!(c.reply_code, 530, "{c:?}");
                return;
            }
            Recv::Frame(AMQPFrame::Heartbeat) => continue,
            Recv::Frame(f) => panic!("connection must not open, got {f:?}"),
            Recv::Timeout => panic!("connection neither refused nor closed"),
        }
    }
}

#[tokio::test]
async fn tune_ok_frame_max_above_server_maximum_is_refused() {
    assert_tune_ok_refused(2047, 262_144).await;
}

#[tokio::test]
async fn tune_ok_frame_max_below_4096_is_refused() {
    assert_tune_ok_refused(2047, 4095).await;
}

#[tokio::test]
async fn tune_ok_channel_max_zero_is_refused_when_server_has_a_limit() {
    assert_tune_ok_refused(0, 131_072).await;
}

#[tokio::test]
async fn silent_client_with_heartbeat_1_is_disconnected_after_two_intervals() {
    let (_broker, mut raw, _) = broker_with_raw_start().await;
    raw.start_ok_as_guest().await;
    raw.tune_ok_and_open(2047, 131_072, 1).await;
    let opened = Instant::now();
    let mut heartbeats = 0;
    loop {
        match raw.recv_within(Duration::from_secs(6)).await {
            Recv::Frame(AMQPFrame::Heartbeat) => heartbeats += 1,
            Recv::Frame(other) => panic!("unexpected frame {other:?}"),
            Recv::Closed => break,
            Recv::Timeout => panic!("silent client was not disconnected within 6 s"),
        }
    }
    let elapsed = opened.elapsed();
    assert!(
        heartbeats >= 1,
        "server must send heartbeats while the client is silent"
    );
    assert!(
        elapsed >= Duration::from_millis(1500),
        "disconnected too early ({elapsed:?}); the client may miss up to two intervals"
    );
}

#[tokio::test]
async fn client_heartbeats_keep_connection_alive() {
    let (_broker, mut raw, _) = broker_with_raw_start().await;
    raw.start_ok_as_guest().await;
    raw.tune_ok_and_open(2047, 131_072, 1).await;
    let until = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < until {
        raw.send(&AMQPFrame::Heartbeat).await;
        match raw.recv_within(Duration::from_millis(400)).await {
            Recv::Closed => panic!("connection closed although the client sent heartbeats"),
            Recv::Frame(AMQPFrame::Heartbeat) | Recv::Timeout => {}
            Recv::Frame(other) => panic!("unexpected frame {other:?}"),
        }
    }
    raw.open_channel(1).await;
}
