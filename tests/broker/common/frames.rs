//! Frames and methods built by hand, for the raw client: encoded frames (`*_frame`, bytes) and
//! the methods a test sends or expects (`AMQPClass` values named after the method).

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, gen_frame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, connection, queue};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};

use super::{long_str, table};

/// The protocol header of AMQP 0-9-1.
pub const PROTOCOL_HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";

/// Encodes one frame.
pub fn encode(frame: &AMQPFrame) -> Vec<u8> {
    let (buf, _) = gen_frame(frame)(Vec::new().into())
        .expect("serialise frame")
        .into_inner();
    buf
}

pub fn method_frame(channel: u16, class: AMQPClass) -> Vec<u8> {
    encode(&AMQPFrame::Method(channel, class))
}

/// A frame built by hand: type, channel, payload, end byte.
pub fn raw_frame(frame_type: u8, channel: u16, payload: &[u8], end: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.push(frame_type);
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(end);
    v
}

/// Client properties announcing the capabilities a modern client has.
pub fn client_properties() -> FieldTable {
    let caps = table(vec![
        ("authentication_failure_close", AMQPValue::Boolean(true)),
        ("basic.nack", AMQPValue::Boolean(true)),
        ("connection.blocked", AMQPValue::Boolean(true)),
        ("consumer_cancel_notify", AMQPValue::Boolean(true)),
        ("publisher_confirms", AMQPValue::Boolean(true)),
    ]);
    table(vec![
        ("product", long_str("warren-tests")),
        ("capabilities", AMQPValue::FieldTable(caps)),
    ])
}

pub fn plain_response(user: &str, pass: &str) -> Vec<u8> {
    format!("\0{user}\0{pass}").into_bytes()
}

/// AMQPLAIN response: a field table *without* its 4-byte length prefix,
/// holding LOGIN and PASSWORD as long strings (what RabbitMQ's clients send).
pub fn amqplain_response(user: &str, pass: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for (k, val) in [("LOGIN", user), ("PASSWORD", pass)] {
        v.push(k.len() as u8);
        v.extend_from_slice(k.as_bytes());
        v.push(b'S');
        v.extend_from_slice(&(val.len() as u32).to_be_bytes());
        v.extend_from_slice(val.as_bytes());
    }
    v
}

pub fn start_ok(mechanism: &str, response: Vec<u8>) -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
        client_properties: client_properties(),
        mechanism: mechanism.into(),
        response: LongString::from(response),
        locale: "en_US".into(),
    }))
}

pub fn tune_ok(channel_max: u16, frame_max: u32, heartbeat: u16) -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
        channel_max,
        frame_max,
        heartbeat,
    }))
}

pub fn connection_open(vhost: &str) -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
        virtual_host: vhost.into(),
    }))
}

pub fn channel_open() -> AMQPClass {
    AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))
}

/// channel.close from the client: 200 "bye".
pub fn channel_close() -> AMQPClass {
    AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
        reply_code: 200,
        reply_text: "bye".into(),
        class_id: 0,
        method_id: 0,
    }))
}

pub fn channel_close_ok() -> AMQPClass {
    AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}))
}

/// connection.close from the client: 200 "bye".
pub fn connection_close() -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
        reply_code: 200,
        reply_text: "bye".into(),
        class_id: 0,
        method_id: 0,
    }))
}

pub fn connection_close_ok() -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {}))
}

/// queue.declare of an exclusive queue named `queue`.
pub fn queue_declare_exclusive(queue: &str) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: queue.into(),
        exclusive: true,
        ..Default::default()
    }))
}

/// Passive queue.declare of `queue`.
pub fn queue_declare_passive(queue: &str) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: queue.into(),
        passive: true,
        ..Default::default()
    }))
}

pub fn basic_get_method(queue: &str, no_ack: bool) -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
        queue: queue.into(),
        no_ack,
    }))
}

/// A basic.publish method frame (neither mandatory nor immediate); its content must follow.
pub fn publish_method_frame(channel: u16, exchange: &str, routing_key: &str) -> Vec<u8> {
    method_frame(
        channel,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            mandatory: false,
            immediate: false,
        })),
    )
}

/// A content header frame of class basic, without properties, announcing `body_size` bytes.
pub fn content_header_frame(channel: u16, body_size: u64) -> Vec<u8> {
    encode(&AMQPFrame::Header(
        channel,
        AMQPContentHeader {
            class_id: 60,
            body_size,
            properties: BasicProperties::default(),
        },
    ))
}

/// basic.publish + content header (no properties) + one body frame, as raw bytes.
pub fn publish_frames(channel: u16, exchange: &str, routing_key: &str, body: &[u8]) -> Vec<u8> {
    let mut out = publish_method_frame(channel, exchange, routing_key);
    out.extend(content_header_frame(channel, body.len() as u64));
    out.extend(raw_frame(3, channel, body, 0xCE));
    out
}
