//! Malformed or out-of-order frames: each is a connection error with
//! RabbitMQ's code (and text where it is a fixed string), after which the
//! broker still serves fresh connections.

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic};

use crate::common::*;

fn publish_method() -> Vec<u8> {
    publish_method_frame(1, "", "nowhere")
}

fn qos_method(ch: u16) -> Vec<u8> {
    method_frame(
        ch,
        AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
            prefetch_count: 1,
            global: false,
        })),
    )
}

/// What the reply text of a close must be: exactly this, or (where RabbitMQ adds details that
/// are not fixed) start with this.
enum Text {
    Exact(&'static str),
    Prefix(&'static str),
}

use Text::{Exact, Prefix};

/// Opens a connection with channel 1, sends `bytes`, and expects the
/// connection to be closed with `code`/`text`/`class_method`; then the
/// socket closes and the broker serves a new connection.
async fn assert_connection_error(bytes: Vec<u8>, code: u16, text: Text, class_method: (u16, u16)) {
    let (mut broker, mut raw) = broker_with_raw_channel().await;
    raw.send_bytes(&bytes).await;
    let (got_code, got_text, class_id, method_id) = raw.expect_connection_close().await;
    assert_eq!(got_code, code, "reply text: {got_text}");
    match text {
        Exact(t) => assert_eq!(got_text, t),
        Prefix(p) => assert!(
            got_text.starts_with(p),
            "{got_text:?} should start with {p:?}"
        ),
    }
    assert_eq!(
        (class_id, method_id),
        class_method,
        "class/method of {got_text}"
    );
    raw.expect_eof(WAIT).await;
    broker.assert_alive().await;
}

/// One test per row, named by the row: `name: bytes => code, text, (class_id, method_id);` runs
/// [`assert_connection_error`] with them.
macro_rules! connection_error_tests {
    ($($name:ident: $bytes:expr => $code:literal, $text:expr, $class_method:expr;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                assert_connection_error($bytes, $code, $text, $class_method).await;
            }
        )*
    };
}

/// A basic.publish on channel 1 followed by `frames` (where its content header should be).
fn after_publish<const N: usize>(frames: [Vec<u8>; N]) -> Vec<u8> {
    let mut bytes = publish_method();
    bytes.extend(frames.into_iter().flatten());
    bytes
}

/// A content header frame on channel 1: class, weight 0, body size, then `properties` (flags
/// first).
fn header_frame(class_id: u16, body_size: u64, properties: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&class_id.to_be_bytes());
    payload.extend_from_slice(&0u16.to_be_bytes());
    payload.extend_from_slice(&body_size.to_be_bytes());
    payload.extend_from_slice(properties);
    raw_frame(2, 1, &payload, 0xCE)
}

const EXPECTED_METHOD: &str =
    "UNEXPECTED_FRAME - expected method frame, got non method frame instead";
const EXPECTED_HEADER: &str =
    "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead";
const EXPECTED_BODY: &str =
    "UNEXPECTED_FRAME - expected content body, got non content body frame instead";
const HEADER_OF_CLASS_50: &str =
    "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead";
const HEADER_OF_CLASS_10: &str =
    "UNEXPECTED_FRAME - expected content header for class 60, got one for class 10 instead";
const UNEXPECTED_WHILE_RUNNING: &str =
    "CHANNEL_ERROR - unexpected method in connection state running";
const UNIMPLEMENTED: &str = "COMMAND_INVALID - unimplemented method";

// 501 FRAME_ERROR: frames that do not parse.
connection_error_tests! {
    unknown_frame_type_is_501_frame_error:
        raw_frame(9, 1, b"abc", 0xCE) => 501, Prefix("FRAME_ERROR - type 9"), (0, 0);
    unknown_frame_type_on_channel_zero_is_501_frame_error:
        raw_frame(9, 0, b"abc", 0xCE) => 501, Prefix("FRAME_ERROR - type 9"), (0, 0);
    // A well-formed basic.qos payload with a bad end marker.
    frame_end_byte_not_0xce_is_501_frame_error:
        raw_frame(1, 1, &[0, 60, 0, 10, 0, 0, 0, 0, 0, 1, 0], 0x00)
        => 501, Prefix("FRAME_ERROR - type 1"), (0, 0);
    // queue.declare whose arguments stop in the middle of a field.
    // (RabbitMQ answers FRAME_ERROR here, not SYNTAX_ERROR.)
    method_with_truncated_arguments_is_501_frame_error:
        raw_frame(1, 1, &[0, 50, 0, 10, 0xff, 0xff], 0xCE)
        => 501, Prefix("FRAME_ERROR - cannot decode"), (50, 10);
    // queue.declare: reserved short, queue "abc", flags, then a field table
    // whose length runs past the end of the frame.
    method_with_garbage_arguments_is_501_frame_error:
        raw_frame(
            1,
            1,
            &[0, 50, 0, 10, 0, 0, 3, b'a', b'b', b'c', 0, 0, 0, 0, 9, 1, 2, 3],
            0xCE,
        ) => 501, Prefix("FRAME_ERROR - cannot decode"), (50, 10);
    empty_method_frame_is_501_frame_error:
        raw_frame(1, 1, &[], 0xCE) => 501, Prefix("FRAME_ERROR"), (0, 0);
}

// 505 UNEXPECTED_FRAME: well-formed frames where the protocol wants another kind.
connection_error_tests! {
    content_body_without_header_is_505_unexpected_frame:
        raw_frame(3, 1, b"hello", 0xCE) => 505, Exact(EXPECTED_METHOD), (0, 0);
    content_header_without_publish_is_505_unexpected_frame:
        content_header_frame(1, 5) => 505, Exact(EXPECTED_METHOD), (0, 0);
    body_instead_of_content_header_after_publish_is_505_unexpected_frame:
        after_publish([raw_frame(3, 1, b"hello", 0xCE)])
        => 505, Exact(EXPECTED_HEADER), (60, 40);
    method_instead_of_content_header_after_publish_is_505_unexpected_frame:
        after_publish([qos_method(1)]) => 505, Exact(EXPECTED_HEADER), (60, 40);
    method_instead_of_content_body_is_505_unexpected_frame:
        after_publish([content_header_frame(1, 5), qos_method(1)])
        => 505, Exact(EXPECTED_BODY), (60, 40);
    header_with_wrong_class_after_publish_is_505_unexpected_frame:
        after_publish([header_frame(50, 5, &[0, 0])])
        => 505, Exact(HEADER_OF_CLASS_50), (60, 40);
    // Flags announce a headers table that is not there: never looked at, the class is wrong.
    header_with_wrong_class_is_505_whatever_its_properties_hold:
        after_publish([header_frame(10, 5, &[0x20, 0x00, 0xFF])])
        => 505, Exact(HEADER_OF_CLASS_10), (60, 40);
    header_with_wrong_class_and_oversized_body_is_505_unexpected_frame:
        after_publish([header_frame(50, u64::MAX, &[0, 0])])
        => 505, Exact(HEADER_OF_CLASS_50), (60, 40);
    header_with_wrong_class_without_publish_is_505_unexpected_frame:
        header_frame(50, 5, &[0, 0]) => 505, Exact(EXPECTED_METHOD), (0, 0);
    heartbeat_on_nonzero_channel_is_505_unexpected_frame:
        raw_frame(8, 1, b"", 0xCE) => 505, Prefix("UNEXPECTED_FRAME"), (0, 0);
    content_body_on_channel_zero_is_505_unexpected_frame:
        raw_frame(3, 0, b"x", 0xCE) => 505, Prefix("UNEXPECTED_FRAME"), (0, 0);
    content_header_on_channel_zero_is_505_unexpected_frame:
        content_header_frame(0, 5) => 505, Prefix("UNEXPECTED_FRAME"), (0, 0);
}

// 504 CHANNEL_ERROR and 503 COMMAND_INVALID: methods on the wrong channel or in the wrong state.
connection_error_tests! {
    method_on_never_opened_channel_is_504_channel_error:
        qos_method(5) => 504, Exact("CHANNEL_ERROR - expected 'channel.open'"), (60, 10);
    second_channel_open_is_504_channel_error:
        method_frame(1, channel_open())
        => 504, Exact("CHANNEL_ERROR - second 'channel.open' seen"), (20, 10);
    channel_method_on_channel_zero_is_504_channel_error:
        method_frame(0, channel_open()) => 504, Exact(UNEXPECTED_WHILE_RUNNING), (20, 10);
    basic_method_on_channel_zero_is_504_channel_error:
        qos_method(0) => 504, Exact(UNEXPECTED_WHILE_RUNNING), (60, 10);
    start_ok_after_open_is_504_channel_error:
        method_frame(0, start_ok("PLAIN", plain_response("guest", "guest")))
        => 504, Exact(UNEXPECTED_WHILE_RUNNING), (10, 11);
    connection_method_on_a_channel_is_503_command_invalid:
        method_frame(1, connection_open("/")) => 503, Exact(UNIMPLEMENTED), (10, 40);
    unsolicited_channel_close_ok_is_503_command_invalid:
        method_frame(1, channel_close_ok()) => 503, Exact(UNIMPLEMENTED), (20, 41);
}

#[tokio::test]
async fn unknown_class_and_method_ids_end_the_connection() {
    // RabbitMQ 3.10 drops the connection without a connection.close here;
    // a connection.close with a hard-error code is accepted as well.
    let (mut broker, mut raw) = broker_with_raw_channel().await;
    raw.send_bytes(&raw_frame(1, 1, &[0, 99, 0, 10], 0xCE))
        .await;
    loop {
        match raw.recv_within(WAIT).await {
            Recv::Closed => break,
            Recv::Frame(AMQPFrame::Method(
                0,
                AMQPClass::Connection(amq_protocol::protocol::connection::AMQPMethod::Close(c)),
            )) => {
                assert!(c.reply_code >= 500, "{c:?}");
                raw.expect_eof(WAIT).await;
                break;
            }
            Recv::Frame(AMQPFrame::Heartbeat) => continue,
            Recv::Frame(f) => panic!("unexpected frame {f:?}"),
            Recv::Timeout => panic!("connection still open after an unknown method"),
        }
    }
    broker.assert_alive().await;
}

#[tokio::test]
async fn broker_survives_random_bytes_after_handshake() {
    let mut broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    // Deterministic pseudo-random garbage.
    let mut x: u32 = 0x1234_5678;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let _ = raw.try_send_bytes(&garbage).await;
    loop {
        match raw.recv_within(WAIT).await {
            Recv::Closed => break,
            Recv::Frame(_) => continue,
            Recv::Timeout => panic!("connection not closed after garbage"),
        }
    }
    broker.assert_alive().await;
}

#[tokio::test]
async fn frames_of_other_channels_may_interleave_with_content() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    raw.open_channel(2).await;
    let q = unique("interleave");
    let declare = queue_declare_exclusive(&q);
    let (_, ok) = raw.rpc(1, declare).await;
    assert!(matches!(ok, AMQPClass::Queue(_)), "{ok:?}");
    // publish on channel 1: method + header ...
    let mut bytes = publish_method_frame(1, "", &q);
    bytes.extend(content_header_frame(1, 10));
    bytes.extend(raw_frame(3, 1, b"hello", 0xCE));
    raw.send_bytes(&bytes).await;
    // ... a heartbeat and a whole round-trip on channel 2 in between ...
    raw.send(&AMQPFrame::Heartbeat).await;
    let (ch, reply) = raw
        .rpc(
            2,
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
                prefetch_count: 5,
                global: false,
            })),
        )
        .await;
    assert_eq!(ch, 2);
    assert!(
        matches!(reply, AMQPClass::Basic(basic::AMQPMethod::QosOk(_))),
        "{reply:?}"
    );
    // ... then the rest of the body.
    raw.send_bytes(&raw_frame(3, 1, b"world", 0xCE)).await;
    let (_, reply) = raw.rpc(1, basic_get_method(&q, true)).await;
    assert!(
        matches!(reply, AMQPClass::Basic(basic::AMQPMethod::GetOk(_))),
        "{reply:?}"
    );
    assert_eq!(raw.recv_content_header(1).await, 10);
    assert_eq!(raw.recv_content_body(1).await, b"helloworld");
}

#[tokio::test]
async fn zero_size_content_has_no_body_frames() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    let q = unique("empty-body");
    let declare = queue_declare_exclusive(&q);
    raw.rpc(1, declare).await;
    let mut bytes = publish_method_frame(1, "", &q);
    bytes.extend(content_header_frame(1, 0));
    raw.send_bytes(&bytes).await;
    let (_, reply) = raw.rpc(1, basic_get_method(&q, true)).await;
    assert!(
        matches!(reply, AMQPClass::Basic(basic::AMQPMethod::GetOk(_))),
        "{reply:?}"
    );
    assert_eq!(raw.recv_content_header(1).await, 0);
    // The next frame is the reply to the next method, not a body frame.
    let (_, reply) = raw.rpc(1, basic_get_method(&q, true)).await;
    assert!(
        matches!(reply, AMQPClass::Basic(basic::AMQPMethod::GetEmpty(_))),
        "{reply:?}"
    );
}
