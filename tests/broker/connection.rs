//! Connection-level behaviour: protocol header, handshake, authentication,
//! tuning, heartbeats, limits and closing.

use std::time::{Duration, Instant};

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic, channel, connection, queue};
use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::options::ChannelFlowOptions;

use crate::common::*;

async fn assert_header_rejected(sent: &[u8]) {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.send_bytes(sent).await;
    let (bytes, closed) = raw.read_raw_until_close(WAIT).await;
    assert_eq!(
        bytes, PROTOCOL_HEADER,
        "server must answer with the header it supports"
    );
    assert!(
        closed,
        "server must close the socket after a bad protocol header"
    );
}

#[tokio::test]
async fn wrong_protocol_version_gets_supported_header_and_close() {
    assert_header_rejected(b"AMQP\x00\x00\x09\x00").await;
}

#[tokio::test]
async fn garbage_protocol_header_gets_supported_header_and_close() {
    assert_header_rejected(b"GET / HTTP/1.1\r\n\r\n").await;
}

fn bool_cap(caps: &FieldTable, name: &str) -> bool {
    match caps.inner().get(name) {
        Some(AMQPValue::Boolean(b)) => *b,
        other => panic!("capability {name} missing or not a boolean: {other:?}"),
    }
}

fn long_string_prop(props: &FieldTable, name: &str) -> String {
    match props.inner().get(name) {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        other => panic!("server property {name} missing or not a longstr: {other:?}"),
    }
}

#[tokio::test]
async fn connection_start_advertises_server_properties_and_capabilities() {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    let start = raw.start().await;
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    let props = &start.server_properties;
    for key in ["product", "version", "platform"] {
        assert!(!long_string_prop(props, key).is_empty(), "{key} is empty");
    }
    let caps = match props.inner().get("capabilities") {
        Some(AMQPValue::FieldTable(t)) => t.clone(),
        other => panic!("capabilities missing: {other:?}"),
    };
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "per_consumer_qos",
        "authentication_failure_close",
        "connection.blocked",
    ] {
        assert!(bool_cap(&caps, cap), "capability {cap} must be true");
    }
    let mechanisms = start.mechanisms.to_string();
    let mechanisms: Vec<&str> = mechanisms.split(' ').collect();
    assert!(mechanisms.contains(&"PLAIN"), "mechanisms: {mechanisms:?}");
    assert!(
        mechanisms.contains(&"AMQPLAIN"),
        "mechanisms: {mechanisms:?}"
    );
    assert!(start.locales.to_string().split(' ').any(|l| l == "en_US"));
}

#[tokio::test]
async fn plain_authentication_opens_connection() {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(0, start_ok("PLAIN", plain_response("guest", "guest")))
        .await;
    let tune = raw.recv_tune().await;
    raw.send_method(0, tune_ok(tune.channel_max, tune.frame_max, 0))
        .await;
    raw.send_method(0, connection_open("/")).await;
    raw.expect_open_ok().await;
    raw.open_channel(1).await;
}

#[tokio::test]
async fn amqplain_authentication_opens_connection() {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(0, start_ok("AMQPLAIN", amqplain_response("guest", "guest")))
        .await;
    let tune = raw.recv_tune().await;
    raw.send_method(0, tune_ok(tune.channel_max, tune.frame_max, 0))
        .await;
    raw.send_method(0, connection_open("/")).await;
    raw.expect_open_ok().await;
    raw.open_channel(1).await;
}

#[tokio::test]
async fn wrong_password_is_refused_with_403_access_refused() {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(
        0,
        start_ok("PLAIN", plain_response("guest", "not-the-password")),
    )
    .await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(code, 403);
    assert!(
        text.starts_with("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN"),
        "{text}"
    );
    raw.expect_eof(WAIT).await;
}

#[tokio::test]
async fn wrong_amqplain_password_is_refused_with_403_access_refused() {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(0, start_ok("AMQPLAIN", amqplain_response("guest", "nope")))
        .await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(code, 403);
    assert!(
        text.starts_with(
            "ACCESS_REFUSED - Login was refused using authentication mechanism AMQPLAIN"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_user_is_refused_with_403_access_refused() {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(
        0,
        start_ok("PLAIN", plain_response(&unique("nobody"), "guest")),
    )
    .await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(code, 403);
    assert_eq!(
        text,
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile."
    );
}

/// The handshake must not proceed: no connection.tune, and the socket is
/// closed (RabbitMQ closes silently after a short delay; a connection.close
/// is tolerated).
async fn assert_start_ok_refused(mechanism: &str, response: Vec<u8>) {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(0, start_ok(mechanism, response)).await;
    match raw.recv_within(Duration::from_secs(10)).await {
        Recv::Closed => {}
        Recv::Frame(AMQPFrame::Method(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Close(c)),
        )) => assert!(c.reply_code >= 400, "{c:?}"),
        Recv::Frame(f) => panic!("handshake must not proceed, got {f:?}"),
        Recv::Timeout => panic!("connection neither refused nor closed"),
    }
}

#[tokio::test]
async fn unknown_auth_mechanism_is_refused() {
    assert_start_ok_refused("X-UNKNOWN", plain_response("guest", "guest")).await;
}

#[tokio::test]
async fn malformed_plain_response_is_refused() {
    assert_start_ok_refused("PLAIN", b"no-nul-separators".to_vec()).await;
}

#[tokio::test]
async fn lapin_connect_with_wrong_password_fails() {
    let broker = TestBroker::start();
    let uri = broker.uri().replacen("guest:guest@", "guest:wrong@", 1);
    let res = tokio::time::timeout(
        WAIT,
        lapin::Connection::connect(&uri, lapin::ConnectionProperties::default()),
    )
    .await
    .expect("connect attempt must finish");
    assert!(res.is_err(), "connection with a wrong password must fail");
}

#[tokio::test]
async fn unknown_vhost_is_refused_with_530_not_allowed() {
    let broker = TestBroker::start();
    let vhost = unique("no-such-vhost");
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(0, start_ok("PLAIN", plain_response("guest", "guest")))
        .await;
    let tune = raw.recv_tune().await;
    raw.send_method(0, tune_ok(tune.channel_max, tune.frame_max, 0))
        .await;
    raw.send_method(0, connection_open(&vhost)).await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(code, 530);
    assert_eq!(text, format!("NOT_ALLOWED - vhost {vhost} not found"));
}

#[tokio::test]
async fn tune_proposes_channel_max_2047_frame_max_131072_heartbeat_60() {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(0, start_ok("PLAIN", plain_response("guest", "guest")))
        .await;
    let tune = raw.recv_tune().await;
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
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(0, start_ok("PLAIN", plain_response("guest", "guest")))
        .await;
    raw.recv_tune().await;
    raw.send_method(0, tune_ok(2047, 4096, 0)).await;
    raw.frame_max = 4096;
    raw.send_method(0, connection_open("/")).await;
    raw.expect_open_ok().await;
    raw.open_channel(1).await;
    let q = unique("frame-max");
    let (_, ok) = raw
        .rpc(
            1,
            AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue: q.as_str().into(),
                exclusive: true,
                ..Default::default()
            })),
        )
        .await;
    assert!(
        matches!(ok, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))),
        "{ok:?}"
    );
    let body: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    raw.publish(1, "", &q, false, false, &body).await;
    raw.send_method(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
            queue: q.as_str().into(),
            no_ack: true,
        })),
    )
    .await;
    match raw.recv_method().await {
        (1, AMQPClass::Basic(basic::AMQPMethod::GetOk(_))) => {}
        other => panic!("expected basic.get-ok, got {other:?}"),
    }
    match raw.recv().await {
        AMQPFrame::Header(1, h) => assert_eq!(h.body_size, body.len() as u64),
        other => panic!("expected content header, got {other:?}"),
    }
    let mut got = Vec::new();
    let mut frames = 0;
    while got.len() < body.len() {
        match raw.recv().await {
            AMQPFrame::Body(1, chunk) => {
                assert!(
                    chunk.len() <= 4096 - 8,
                    "body frame of {} bytes exceeds frame_max",
                    chunk.len()
                );
                got.extend(chunk);
                frames += 1;
            }
            other => panic!("expected content body, got {other:?}"),
        }
    }
    assert_eq!(got, body);
    assert!(
        frames >= 5,
        "20000 bytes at frame_max 4096 need at least 5 frames, got {frames}"
    );
}

#[tokio::test]
async fn client_smaller_channel_max_limits_the_number_of_open_channels() {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(0, start_ok("PLAIN", plain_response("guest", "guest")))
        .await;
    raw.recv_tune().await;
    raw.send_method(0, tune_ok(3, 131_072, 0)).await;
    raw.send_method(0, connection_open("/")).await;
    raw.expect_open_ok().await;
    raw.open_channel(1).await;
    raw.open_channel(2).await;
    raw.open_channel(3).await;
    // RabbitMQ 3.10 limits the *count* of open channels, not their numbers.
    raw.send_method(7, channel_open()).await;
    let (code, text, class_id, method_id) = raw.expect_connection_close().await;
    assert_eq!(code, 530);
    assert_eq!(
        text,
        "NOT_ALLOWED - number of channels opened (3) has reached the negotiated channel_max (3)"
    );
    assert_eq!((class_id, method_id), (0, 0));
}

#[tokio::test]
async fn channel_number_above_channel_max_opens_while_under_the_count_limit() {
    // RabbitMQ 3.10 does not reject a channel *number* above channel_max;
    // only the number of open channels is limited.
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(0, start_ok("PLAIN", plain_response("guest", "guest")))
        .await;
    raw.recv_tune().await;
    raw.send_method(0, tune_ok(3, 131_072, 0)).await;
    raw.send_method(0, connection_open("/")).await;
    raw.expect_open_ok().await;
    raw.open_channel(4).await;
    raw.open_channel(2048).await;
}

/// After a tune-ok the server cannot accept, the connection never opens:
/// RabbitMQ closes the socket (silently, after a short delay).
async fn assert_tune_ok_refused(channel_max: u16, frame_max: u32) {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(0, start_ok("PLAIN", plain_response("guest", "guest")))
        .await;
    raw.recv_tune().await;
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
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(0, start_ok("PLAIN", plain_response("guest", "guest")))
        .await;
    raw.recv_tune().await;
    raw.send_method(0, tune_ok(2047, 131_072, 1)).await;
    raw.send_method(0, connection_open("/")).await;
    raw.expect_open_ok().await;
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
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    raw.send_method(0, start_ok("PLAIN", plain_response("guest", "guest")))
        .await;
    raw.recv_tune().await;
    raw.send_method(0, tune_ok(2047, 131_072, 1)).await;
    raw.send_method(0, connection_open("/")).await;
    raw.expect_open_ok().await;
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

#[tokio::test]
async fn frame_larger_than_frame_max_is_rejected_before_its_payload_arrives() {
    let mut broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    // Only the 7-byte frame header, announcing a 16 MiB payload: the broker
    // must reject it without waiting for the payload.
    let mut header = vec![1u8];
    header.extend_from_slice(&1u16.to_be_bytes());
    header.extend_from_slice(&(16u32 << 20).to_be_bytes());
    raw.send_bytes(&header).await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(code, 501);
    assert!(text.starts_with("FRAME_ERROR"), "{text}");
    drop(raw);
    broker.assert_alive().await;
}

async fn publish_single_body_frame(raw: &mut RawClient, q: &str, payload_len: usize) {
    let mut bytes = method_frame(
        1,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: "".into(),
            routing_key: q.into(),
            mandatory: false,
            immediate: false,
        })),
    );
    bytes.extend(encode(&AMQPFrame::Header(
        1,
        amq_protocol::frame::AMQPContentHeader {
            class_id: 60,
            body_size: payload_len as u64,
            properties: Default::default(),
        },
    )));
    bytes.extend(raw_frame(3, 1, &vec![0xAB; payload_len], 0xCE));
    raw.send_bytes(&bytes).await;
}

#[tokio::test]
async fn body_frames_up_to_frame_max_payload_are_accepted() {
    // frame_max counts the whole frame (7-byte header + payload + end byte),
    // but RabbitMQ 3.10 only rejects payloads larger than frame_max itself.
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = ch
        .queue_declare(
            "".into(),
            lapin::options::QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap()
        .name()
        .as_str()
        .to_string();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    for len in [131_064usize, 131_072] {
        publish_single_body_frame(&mut raw, &q, len).await;
    }
    wait_message_count(&ch, &q, 2).await;
    for len in [131_064usize, 131_072] {
        let body = get_body(&ch, &q).await.expect("message");
        assert_eq!(body, vec![0xAB; len]);
    }
    ch.queue_delete(q.as_str().into(), Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn body_frame_payload_above_frame_max_is_501_frame_error() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    publish_single_body_frame(&mut raw, "anywhere", 131_073).await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(code, 501);
    assert!(text.starts_with("FRAME_ERROR"), "{text}");
}

#[tokio::test]
async fn body_split_into_many_tiny_frames_is_reassembled() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = ch
        .queue_declare(
            "".into(),
            lapin::options::QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap()
        .name()
        .as_str()
        .to_string();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    raw.frame_max = 8 + 7; // 7-byte body frames
    let body: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 256) as u8).collect();
    raw.publish(1, "", &q, false, false, &body).await;
    wait_message_count(&ch, &q, 1).await;
    assert_eq!(get_body(&ch, &q).await.unwrap(), body);
    ch.queue_delete(q.as_str().into(), Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn client_connection_close_gets_close_ok() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    let (ch, reply) = raw
        .rpc(
            0,
            AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
                reply_code: 200,
                reply_text: "bye".into(),
                class_id: 0,
                method_id: 0,
            })),
        )
        .await;
    assert_eq!(ch, 0);
    assert!(
        matches!(
            reply,
            AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))
        ),
        "expected close-ok, got {reply:?}"
    );
}

#[tokio::test]
async fn lapin_connection_close_succeeds() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    assert!(ch.status().connected());
    conn.close(200, "bye".into())
        .await
        .expect("connection.close");
    assert!(!conn.status().connected());
}

#[tokio::test]
async fn channel_close_from_client_gets_close_ok() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(5).await;
    let (ch, reply) = raw
        .rpc(
            5,
            AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                reply_code: 200,
                reply_text: "bye".into(),
                class_id: 0,
                method_id: 0,
            })),
        )
        .await;
    assert_eq!(ch, 5);
    assert!(
        matches!(reply, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))),
        "{reply:?}"
    );
    // The channel number can be reused.
    raw.open_channel(5).await;
}

#[tokio::test]
async fn channel_flow_active_true_is_confirmed() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let active = ch
        .channel_flow(ChannelFlowOptions { active: true })
        .await
        .expect("channel.flow");
    assert!(active);
}

#[tokio::test]
async fn channel_flow_active_false_is_not_implemented() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    raw.send_method(
        1,
        AMQPClass::Channel(channel::AMQPMethod::Flow(channel::Flow { active: false })),
    )
    .await;
    let (code, text, class_id, method_id) = raw.expect_connection_close().await;
    assert_eq!(code, 540);
    assert_eq!(text, "NOT_IMPLEMENTED - active=false");
    assert_eq!((class_id, method_id), (20, 20));
}

#[tokio::test]
async fn many_channels_on_one_connection_work_independently() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let mut channels = Vec::new();
    for _ in 0..20 {
        channels.push(conn.create_channel().await.expect("create channel"));
    }
    let ids: std::collections::HashSet<u16> = channels.iter().map(|c| c.id()).collect();
    assert_eq!(ids.len(), 20);
    for ch in &channels {
        let q = ch
            .queue_declare(
                "".into(),
                lapin::options::QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare on each channel");
        assert!(q.name().as_str().starts_with("amq.gen-"));
    }
}
