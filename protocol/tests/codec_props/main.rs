//! Property tests for the streaming codec (`decode_frame`, `encode`) and `ContentAssembler`.
//!
//! Run with more cases: `PROPTEST_CASES=5000 cargo test -p warren-protocol --test codec_props`.
//!
//! This file holds the generators and the encoders they feed; the properties are in
//! [`decode`] (frames), [`nesting`] (deep field values) and [`assembler`] (content assembly).

mod assembler;
mod decode;
mod nesting;

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use warren_protocol::amq_protocol::protocol::{AMQPClass, BasicProperties, basic, exchange, queue};
use warren_protocol::amq_protocol::types::{
    AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable, LongString, ShortString,
};
use warren_protocol::codec::{
    FRAME_END, FRAME_HEARTBEAT, ProtocolHeader, check_protocol_header, decode_frame,
};
use warren_protocol::content::ContentAssembler;
use warren_protocol::{Frame, PROTOCOL_HEADER, Properties, Publish, ShortStr, encode};

const CASES: u32 = 256;

/// 256 cases (or `PROPTEST_CASES`); failures are saved next to the file of the failing test
/// (`tests/codec_props/<file>.proptest-regressions`)
/// and replayed first.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(CASES),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Truncates to at most 255 bytes at a char boundary (what a short string can hold).
fn clamp_255(mut s: String) -> String {
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

/// Arbitrary UTF-8 short strings of 0..=255 bytes, biased to hit the 255-byte edge.
fn short_str() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9._-]{0,16}",
        2 => vec(any::<char>(), 0..=255).prop_map(|cs| clamp_255(cs.into_iter().collect())),
        1 => "[ -~]{250,255}",
        1 => Just("x".repeat(255)),
        1 => Just(String::new()),
    ]
}

fn short_string() -> impl Strategy<Value = ShortString> {
    short_str().prop_map(ShortString::from)
}

/// Short keys for tables (kept short so nested tables stay well under frame_max).
fn key() -> impl Strategy<Value = ShortString> {
    prop_oneof![
        "[a-z-]{0,12}",
        vec(any::<char>(), 0..8).prop_map(|c| clamp_255(c.into_iter().collect()))
    ]
    .prop_map(ShortString::from)
}

fn f32_no_nan() -> impl Strategy<Value = f32> {
    use proptest::num::f32::*;
    NORMAL | SUBNORMAL | ZERO | INFINITE | NEGATIVE | POSITIVE
}

fn f64_no_nan() -> impl Strategy<Value = f64> {
    use proptest::num::f64::*;
    NORMAL | SUBNORMAL | ZERO | INFINITE | NEGATIVE | POSITIVE
}

/// Field values that survive an encode/decode round trip unchanged. (amq-protocol follows
/// RabbitMQ: `AMQPValue::ShortString` has no wire tag and `LongLongUInt` decodes as
/// `LongLongInt`, so neither is generated; NaN floats are excluded because NaN != NaN.)
fn amqp_value() -> impl Strategy<Value = AMQPValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(AMQPValue::Boolean),
        any::<i8>().prop_map(AMQPValue::ShortShortInt),
        any::<u8>().prop_map(AMQPValue::ShortShortUInt),
        any::<i16>().prop_map(AMQPValue::ShortInt),
        any::<u16>().prop_map(AMQPValue::ShortUInt),
        any::<i32>().prop_map(AMQPValue::LongInt),
        any::<u32>().prop_map(AMQPValue::LongUInt),
        any::<i64>().prop_map(AMQPValue::LongLongInt),
        f32_no_nan().prop_map(AMQPValue::Float),
        f64_no_nan().prop_map(AMQPValue::Double),
        (any::<u8>(), any::<u32>())
            .prop_map(|(scale, value)| AMQPValue::DecimalValue(DecimalValue { scale, value })),
        vec(any::<u8>(), 0..64).prop_map(|b| AMQPValue::LongString(LongString::from(b))),
        any::<u64>().prop_map(AMQPValue::Timestamp),
        vec(any::<u8>(), 0..32).prop_map(|b| AMQPValue::ByteArray(ByteArray::from(b))),
        Just(AMQPValue::Void),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..5).prop_map(|v| AMQPValue::FieldArray(FieldArray::from(v))),
            btree_map(key(), inner, 0..5).prop_map(|m| AMQPValue::FieldTable(FieldTable::from(m))),
        ]
    })
}

fn field_table() -> impl Strategy<Value = FieldTable> {
    btree_map(key(), amqp_value(), 0..6).prop_map(|m: BTreeMap<_, _>| FieldTable::from(m))
}

/// Any combination of the 14 basic properties, headers as (possibly nested) tables.
fn properties() -> impl Strategy<Value = BasicProperties> {
    let a = (
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
        proptest::option::of(field_table()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(any::<u8>()),
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
    );
    let b = (
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
        proptest::option::of(any::<u64>()),
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
        proptest::option::of(short_string()),
    );
    (a, b).prop_map(
        |((ct, ce, h, dm, pr, ci, rt), (ex, mi, ts, ki, ui, ai, cl))| {
            let mut p = BasicProperties::default();
            if let Some(v) = ct {
                p = p.with_content_type(v)
            }
            if let Some(v) = ce {
                p = p.with_content_encoding(v)
            }
            if let Some(v) = h {
                p = p.with_headers(v)
            }
            if let Some(v) = dm {
                p = p.with_delivery_mode(v)
            }
            if let Some(v) = pr {
                p = p.with_priority(v)
            }
            if let Some(v) = ci {
                p = p.with_correlation_id(v)
            }
            if let Some(v) = rt {
                p = p.with_reply_to(v)
            }
            if let Some(v) = ex {
                p = p.with_expiration(v)
            }
            if let Some(v) = mi {
                p = p.with_message_id(v)
            }
            if let Some(v) = ts {
                p = p.with_timestamp(v)
            }
            if let Some(v) = ki {
                p = p.with_type(v)
            }
            if let Some(v) = ui {
                p = p.with_user_id(v)
            }
            if let Some(v) = ai {
                p = p.with_app_id(v)
            }
            if let Some(v) = cl {
                p = p.with_cluster_id(v)
            }
            p
        },
    )
}

fn publish() -> impl Strategy<Value = basic::Publish> {
    (short_string(), short_string(), any::<bool>(), any::<bool>()).prop_map(
        |(exchange, routing_key, mandatory, immediate)| basic::Publish {
            exchange,
            routing_key,
            mandatory,
            immediate,
        },
    )
}

/// Non-content methods a client sends.
fn control_method() -> impl Strategy<Value = AMQPClass> {
    prop_oneof![
        (short_string(), any::<[bool; 5]>(), field_table()).prop_map(|(queue, f, arguments)| {
            AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
                queue,
                passive: f[0],
                durable: f[1],
                exclusive: f[2],
                auto_delete: f[3],
                nowait: f[4],
                arguments,
            }))
        }),
        (
            short_string(),
            short_string(),
            any::<[bool; 5]>(),
            field_table()
        )
            .prop_map(|(exchange, kind, f, arguments)| {
                AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
                    exchange,
                    kind,
                    passive: f[0],
                    durable: f[1],
                    auto_delete: f[2],
                    internal: f[3],
                    nowait: f[4],
                    arguments,
                }))
            }),
        (
            short_string(),
            short_string(),
            short_string(),
            any::<bool>(),
            field_table()
        )
            .prop_map(|(queue, exchange, routing_key, nowait, arguments)| {
                AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
                    queue,
                    exchange,
                    routing_key,
                    nowait,
                    arguments,
                }))
            }),
        (any::<u64>(), any::<bool>()).prop_map(|(delivery_tag, multiple)| AMQPClass::Basic(
            basic::AMQPMethod::Ack(basic::Ack {
                delivery_tag,
                multiple
            })
        )),
        (any::<u16>(), any::<bool>()).prop_map(|(prefetch_count, global)| {
            AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
                prefetch_count,
                global,
            }))
        }),
    ]
}

/// One logical thing a client sends: a control method, a heartbeat, or a published message.
/// (Test data made a few hundred times a run: the size difference between variants is moot.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
enum Item {
    Method {
        channel: u16,
        method: AMQPClass,
    },
    Heartbeat,
    Message {
        channel: u16,
        publish: basic::Publish,
        properties: BasicProperties,
        body: Vec<u8>,
    },
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => vec(any::<u8>(), 0..64),
        2 => vec(any::<u8>(), 0..20_000),
        1 => Just(Vec::new()),
    ]
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        2 => (any::<u16>(), control_method()).prop_map(|(channel, method)| Item::Method { channel, method }),
        1 => Just(Item::Heartbeat),
        3 => (any::<u16>(), publish(), properties(), body())
            .prop_map(|(channel, publish, properties, body)| Item::Message { channel, publish, properties, body }),
    ]
}

/// basic.publish as warren's codec decodes it (exchange and routing key as buffer slices).
fn wire_publish(p: &basic::Publish) -> Publish {
    Publish {
        exchange: ShortStr::from_bytes(Bytes::copy_from_slice(p.exchange.as_str().as_bytes()))
            .unwrap(),
        routing_key: ShortStr::from_bytes(Bytes::copy_from_slice(
            p.routing_key.as_str().as_bytes(),
        ))
        .unwrap(),
        mandatory: p.mandatory,
        immediate: p.immediate,
    }
}

/// The frames `items` should decode to, and their wire encoding.
fn encode_items(items: &[Item], frame_max: u32) -> (Vec<Frame>, BytesMut) {
    let mut wire = BytesMut::new();
    let mut frames = Vec::new();
    for item in items {
        match item {
            Item::Method { channel, method } => {
                encode::method(&mut wire, *channel, method);
                frames.push(Frame::Method {
                    channel: *channel,
                    method: method.clone(),
                });
            }
            Item::Heartbeat => {
                encode::heartbeat(&mut wire);
                frames.push(Frame::Heartbeat { channel: 0 });
            }
            Item::Message {
                channel,
                publish,
                properties,
                body,
            } => {
                let method = AMQPClass::Basic(basic::AMQPMethod::Publish(publish.clone()));
                encode::method(&mut wire, *channel, &method);
                frames.push(Frame::Publish {
                    channel: *channel,
                    publish: wire_publish(publish),
                });
                let raw = encode::properties(properties);
                encode::content(&mut wire, *channel, &raw, body, frame_max);
                frames.push(Frame::Header {
                    channel: *channel,
                    class_id: 60,
                    body_size: body.len() as u64,
                    properties: Properties::parse(Bytes::from(raw)).unwrap(),
                });
                let chunk = frame_max as usize - 8;
                for c in body.chunks(chunk) {
                    frames.push(Frame::Body {
                        channel: *channel,
                        payload: Bytes::copy_from_slice(c),
                    });
                }
            }
        }
    }
    (frames, wire)
}

/// Frame sizes (payload + 8) found by walking the headers of a well-formed stream.
fn frame_lengths(wire: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        let size = u32::from_be_bytes(wire[at + 3..at + 7].try_into().unwrap()) as usize;
        out.push(size + 8);
        at += size + 8;
    }
    assert_eq!(at, wire.len());
    out
}

/// Decodes `wire` delivered in chunks of the given sizes (cycled), decoding after every append.
fn decode_chunked(wire: &[u8], chunk_sizes: &[usize], frame_max: u32) -> Vec<Frame> {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut at = 0;
    let mut sizes = chunk_sizes.iter().cycle();
    while at < wire.len() {
        let n = (*sizes.next().unwrap()).min(wire.len() - at);
        buf.extend_from_slice(&wire[at..at + n]);
        at += n;
        loop {
            let before = buf.clone();
            match decode_frame(&mut buf, frame_max) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => {
                    assert_eq!(buf, before, "Ok(None) must not consume input");
                    break;
                }
                Err(e) => panic!("valid stream rejected after {at} bytes: {e}"),
            }
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    frames
}
