//! Property tests for the streaming codec (`decode_frame`, `encode`) and `ContentAssembler`.
//!
//! Run with more cases: `PROPTEST_CASES=5000 cargo test -p warren-protocol --test codec_props`.

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

/// 256 cases (or `PROPTEST_CASES`); failures are saved to `tests/codec_props.proptest-regressions`
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

// ---------------------------------------------------------------------------------------------
// decode_frame
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes never panic; each call is Ok(None), Ok(Some) (consuming ≥ 8 bytes) or a
    /// connection error with a frame/syntax/command code.
    #[test]
    fn arbitrary_bytes_never_panic(
        data in prop_oneof![
            vec(any::<u8>(), 0..4096),
            // Random bytes behind a plausible header, so payload parsers are reached too.
            (prop_oneof![Just(1u8), Just(2u8), Just(3u8), Just(8u8), any::<u8>()], any::<u16>(), vec(any::<u8>(), 0..4000))
                .prop_map(|(kind, ch, mut payload)| {
                    let mut v = vec![kind];
                    v.extend_from_slice(&ch.to_be_bytes());
                    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                    v.append(&mut payload);
                    v.push(FRAME_END);
                    v
                }),
        ],
        frame_max in prop_oneof![1u32..16, 4096u32..=131_072],
    ) {
        let mut buf = BytesMut::from(&data[..]);
        loop {
            let before = buf.len();
            match decode_frame(&mut buf, frame_max) {
                Ok(None) => {
                    prop_assert_eq!(buf.len(), before);
                    break;
                }
                Ok(Some(_)) => prop_assert!(before - buf.len() >= 8),
                Err(e) => {
                    prop_assert!([501, 502, 503, 505, 540].contains(&e.code), "unexpected code {}", e.code);
                    break;
                }
            }
        }
    }

    /// Random method/argument payloads inside well-formed method frames.
    #[test]
    fn arbitrary_method_payload_is_ok_or_coded_error(
        class in prop_oneof![Just(10u16), Just(20), Just(40), Just(50), Just(60), Just(85), Just(90), any::<u16>()],
        method in prop_oneof![(0u16..13).prop_map(|m| m * 10), (0u16..13).prop_map(|m| m * 10 + 1), any::<u16>()],
        args in vec(any::<u8>(), 0..512),
    ) {
        let mut payload = class.to_be_bytes().to_vec();
        payload.extend_from_slice(&method.to_be_bytes());
        payload.extend_from_slice(&args);
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[1, 0, 1]);
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        buf.extend_from_slice(&payload);
        buf.extend_from_slice(&[FRAME_END]);
        match decode_frame(&mut buf, 131_072) {
            Ok(Some(Frame::Method { .. })) => prop_assert!(buf.is_empty()),
            Ok(other) => prop_assert!(false, "unexpected {:?}", other),
            Err(e) => {
                // 501 for undecodable arguments (as RabbitMQ), 502 for over-deep nesting,
                // 503 for unknown methods, 540 for basic.qos prefetch_size != 0.
                prop_assert!([501, 502, 503, 540].contains(&e.code), "unexpected code {}", e.code);
                prop_assert_eq!((e.class_id, e.method_id), (class, method));
            }
        }
    }

    /// A valid stream decodes back to the values encoded, whether it arrives in one piece or in
    /// arbitrary chunk sizes (truncated input waits instead of failing).
    #[test]
    fn valid_stream_roundtrips_in_any_chunking(
        items in vec(item(), 1..6),
        frame_max in prop_oneof![Just(4096u32), 4096u32..=65_536, Just(131_072)],
        chunk_sizes in vec(prop_oneof![1usize..8, 1usize..64, 1usize..5000], 1..16),
    ) {
        // A header or method frame with big tables may need more than a small frame_max.
        let (_, probe) = encode_items(&items, u32::MAX);
        let needed = frame_lengths(&probe).into_iter().max().unwrap_or(0) as u32;
        let frame_max = frame_max.max(needed);
        let (expected, wire) = encode_items(&items, frame_max);
        prop_assert!(frame_lengths(&wire).iter().all(|&n| n <= frame_max as usize));

        let whole = decode_chunked(&wire, &[wire.len().max(1)], frame_max);
        prop_assert_eq!(&whole, &expected);
        let chunked = decode_chunked(&wire, &chunk_sizes, frame_max);
        prop_assert_eq!(&chunked, &expected);

        // And the decoded frames assemble back to the published messages.
        let mut assemblers: BTreeMap<u16, ContentAssembler<Publish>> = BTreeMap::new();
        let mut got = Vec::new();
        for f in chunked {
            match f {
                Frame::Method { channel, .. } => {
                    let a = assemblers.entry(channel).or_default();
                    prop_assert!(a.check_method_allowed().is_ok());
                }
                Frame::Publish { channel, publish } => {
                    let a = assemblers.entry(channel).or_default();
                    prop_assert!(a.check_method_allowed().is_ok());
                    a.start(publish);
                }
                Frame::Header { channel, class_id, body_size, properties } => {
                    let a = assemblers.get_mut(&channel).unwrap();
                    if let Some(c) = a.header(class_id, body_size, properties).unwrap() {
                        got.push((channel, c));
                    }
                }
                Frame::Body { channel, payload } => {
                    let a = assemblers.get_mut(&channel).unwrap();
                    if let Some(c) = a.body(payload).unwrap() {
                        got.push((channel, c));
                    }
                }
                Frame::Heartbeat { .. } => {}
            }
        }
        let want: Vec<_> = items.iter().filter_map(|i| match i {
            Item::Message { channel, publish, properties, body } => Some((*channel, publish, properties, body)),
            _ => None,
        }).collect();
        prop_assert_eq!(got.len(), want.len());
        for ((ch, c), (wch, wp, wprops, wbody)) in got.iter().zip(want) {
            prop_assert_eq!(*ch, wch);
            prop_assert_eq!(&c.method, &wire_publish(wp));
            prop_assert_eq!(&c.properties.to_basic(), wprops);
            prop_assert_eq!(&c.properties.raw()[..], &encode::properties(wprops)[..]);
            prop_assert_eq!(&c.body[..], &wbody[..]);
        }
        prop_assert!(assemblers.values().all(|a| a.is_idle()));
    }

    /// Every strict prefix of a valid frame waits (Ok(None)) and leaves the buffer untouched;
    /// the full frame decodes.
    #[test]
    fn every_strict_prefix_waits(item in item(), frame_max in 4096u32..=131_072) {
        let (_, probe) = encode_items(std::slice::from_ref(&item), u32::MAX);
        let frame_max = frame_max.max(frame_lengths(&probe).into_iter().max().unwrap() as u32);
        let (expected, wire) = encode_items(std::slice::from_ref(&item), frame_max);
        let mut at = 0;
        for (len, want) in frame_lengths(&wire).into_iter().zip(expected) {
            let frame = &wire[at..at + len];
            for cut in 0..len {
                let mut buf = BytesMut::from(&frame[..cut]);
                prop_assert_eq!(decode_frame(&mut buf, frame_max), Ok(None), "cut at {}/{}", cut, len);
                prop_assert_eq!(&buf[..], &frame[..cut]);
            }
            let mut buf = BytesMut::from(frame);
            prop_assert_eq!(decode_frame(&mut buf, frame_max), Ok(Some(want)));
            prop_assert!(buf.is_empty());
            at += len;
        }
    }

    /// A frame header announcing a payload larger than frame_max is a 501 from the 7 header
    /// bytes alone, whatever frame type and whatever follows. (Like RabbitMQ 3.10, the payload
    /// alone is compared with frame_max; the 8 bytes of framing are not counted.)
    #[test]
    fn oversized_frame_is_501_whatever_follows(
        kind in any::<u8>(),
        channel in any::<u16>(),
        frame_max in prop_oneof![1u32..=4096, 4096u32..=131_072, any::<u32>().prop_filter("0 = no limit", |&m| m != 0)],
        excess in prop_oneof![1u64..=16, any::<u32>().prop_map(u64::from)],
        tail in vec(any::<u8>(), 0..256),
    ) {
        // size > frame_max, size a u32.
        let size = (u64::from(frame_max) + excess).min(u64::from(u32::MAX)) as u32;
        prop_assume!(u64::from(size) > u64::from(frame_max));
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[kind]);
        buf.extend_from_slice(&channel.to_be_bytes());
        buf.extend_from_slice(&size.to_be_bytes());
        buf.extend_from_slice(&tail);
        let cap = buf.capacity();
        let err = decode_frame(&mut buf, frame_max).unwrap_err();
        prop_assert_eq!(err.code, 501);
        // Rejected before reserving room for the announced payload.
        prop_assert!(buf.capacity() <= cap.max(4096));
    }

    /// The hand-written server frames decode with amq-protocol's parser to the same values;
    /// over-long strings are truncated to 255 bytes at a char boundary.
    #[test]
    fn hand_written_methods_roundtrip(
        channel in any::<u16>(),
        strs in vec(prop_oneof![short_str(), vec(any::<char>(), 200..400).prop_map(|c| c.into_iter().collect())], 4),
        tag in any::<u64>(),
        flag in any::<bool>(),
        count in any::<u32>(),
        code in any::<u16>(),
    ) {
        let s = |i: usize| ShortString::from(clamp_255(strs[i].clone()));
        let mut wire = BytesMut::new();
        encode::deliver(&mut wire, channel, &strs[0], tag, flag, &strs[1], &strs[2]);
        encode::get_ok(&mut wire, channel, tag, flag, &strs[1], &strs[2], count);
        encode::basic_return(&mut wire, channel, code, &strs[3], &strs[1], &strs[2]);
        encode::basic_ack(&mut wire, channel, tag, flag);
        encode::basic_nack(&mut wire, channel, tag, flag);
        let want = [
            basic::AMQPMethod::Deliver(basic::Deliver {
                consumer_tag: s(0), delivery_tag: tag, redelivered: flag, exchange: s(1), routing_key: s(2),
            }),
            basic::AMQPMethod::GetOk(basic::GetOk {
                delivery_tag: tag, redelivered: flag, exchange: s(1), routing_key: s(2), message_count: count,
            }),
            basic::AMQPMethod::Return(basic::Return { reply_code: code, reply_text: s(3), exchange: s(1), routing_key: s(2) }),
            basic::AMQPMethod::Ack(basic::Ack { delivery_tag: tag, multiple: flag }),
            basic::AMQPMethod::Nack(basic::Nack { delivery_tag: tag, multiple: flag, requeue: false }),
        ];
        for w in want {
            let f = decode_frame(&mut wire, 131_072).unwrap().unwrap();
            prop_assert_eq!(f, Frame::Method { channel, method: AMQPClass::Basic(w) });
        }
        prop_assert!(wire.is_empty());
    }

    /// check_protocol_header never panics and agrees with a simple prefix model.
    #[test]
    fn protocol_header_check_matches_model(data in prop_oneof![
        vec(any::<u8>(), 0..16),
        (0usize..=8, vec(any::<u8>(), 0..8)).prop_map(|(n, mut rest)| {
            let mut v = PROTOCOL_HEADER[..n].to_vec();
            v.append(&mut rest);
            v
        }),
    ]) {
        let n = data.len().min(8);
        let want = if data[..n] != PROTOCOL_HEADER[..n] {
            ProtocolHeader::Rejected
        } else if n < 8 {
            ProtocolHeader::Incomplete
        } else {
            ProtocolHeader::Accepted
        };
        prop_assert_eq!(check_protocol_header(&data), want);
    }
}

// ---------------------------------------------------------------------------------------------
// Deeply nested field values
// ---------------------------------------------------------------------------------------------

/// A field value nested `depth` levels deep: arrays (`A`, 5 bytes a level) or tables
/// (`F` + empty key, 6 bytes a level), innermost empty.
fn nested_value(depth: usize, tables: bool) -> Vec<u8> {
    let mut v: Vec<u8> = Vec::new();
    for level in 0..depth {
        let mut outer = vec![if tables { b'F' } else { b'A' }];
        let inner_len = if level == 0 {
            0
        } else {
            v.len() + usize::from(tables)
        };
        outer.extend_from_slice(&(inner_len as u32).to_be_bytes());
        if level > 0 {
            if tables {
                outer.push(0); // empty key
            }
            outer.extend_from_slice(&v);
        }
        v = outer;
    }
    v
}

/// A queue.declare whose arguments are `{"": <nested>}` (in_header = false), or a content
/// header whose `headers` property is (in_header = true).
fn nested_frame(depth: usize, tables: bool, in_header: bool) -> BytesMut {
    let mut table = vec![0u8]; // key ""
    table.extend_from_slice(&nested_value(depth, tables));
    let (kind, mut payload) = if in_header {
        // class 60, weight 0, body size 0, flags: headers only (bit 13).
        (2u8, vec![0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x00])
    } else {
        // queue.declare: reserved u16, queue "", flags 0.
        (1u8, vec![0, 50, 0, 10, 0, 0, 0, 0])
    };
    payload.extend_from_slice(&(table.len() as u32).to_be_bytes());
    payload.extend_from_slice(&table);
    let mut b = BytesMut::new();
    b.extend_from_slice(&[kind, 0, 1]);
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(&payload);
    b.extend_from_slice(&[FRAME_END]);
    b
}

/// Runs `decode_frame` on a thread with a tokio worker's default 2 MiB stack.
fn decode_on_small_stack(mut buf: BytesMut, frame_max: u32) -> Result<bool, u16> {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            decode_frame(&mut buf, frame_max)
                .map(|f| f.is_some())
                .map_err(|e| e.code)
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn shallow_nesting_decodes() {
    for in_header in [false, true] {
        for tables in [false, true] {
            assert_eq!(
                decode_on_small_stack(nested_frame(64, tables, in_header), 131_072),
                Ok(true)
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..config() })]

    /// A frame within frame_max whose field table nests deeply must decode or fail with 502,
    /// not overflow the stack. amq-protocol's field-value parser recurses once per level with no
    /// depth limit, so ~316 levels of arrays (a 1.6 KB frame) abort a 2 MiB-stack thread in a
    /// debug build and ~1600 levels (8 KB) in release: one frame from any client kills the
    /// broker. `depth::MAX_DEPTH` now refuses such frames with 502 before that parser runs.
    #[test]
    fn deep_nesting_does_not_overflow_the_stack(
        depth in 1usize..=26_000,
        tables in any::<bool>(),
        in_header in any::<bool>(),
    ) {
        let frame = nested_frame(depth, tables, in_header);
        prop_assume!(frame.len() <= 131_072);
        let r = decode_on_small_stack(frame, 131_072);
        prop_assert!(matches!(r, Ok(true) | Err(502)), "{:?}", r);
    }
}

#[test]
fn heartbeat_on_nonzero_channel_is_505() {
    // RabbitMQ 3.10 answers this with 505 UNEXPECTED_FRAME.
    let mut buf = BytesMut::from(&[FRAME_HEARTBEAT, 0, 1, 0, 0, 0, 0, FRAME_END][..]);
    assert_eq!(decode_frame(&mut buf, 4096).unwrap_err().code, 505);
}

// ---------------------------------------------------------------------------------------------
// ContentAssembler
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Start(u8),
    Header { class_id: u16, body_size: u64 },
    Body(Vec<u8>),
    CheckMethod,
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<u8>().prop_map(Op::Start),
        2 => (prop_oneof![9 => Just(60u16), 1 => any::<u16>()], prop_oneof![0u64..16, any::<u64>()])
            .prop_map(|(class_id, body_size)| Op::Header { class_id, body_size }),
        4 => vec(any::<u8>(), 0..12).prop_map(Op::Body),
        1 => Just(Op::CheckMethod),
        1 => Just(Op::Reset),
    ]
}

/// Reference model of the assembler state.
#[derive(Debug, Clone, PartialEq)]
enum Model {
    Idle,
    AwaitingHeader(u8),
    AwaitingBody { method: u8, size: u64, got: Vec<u8> },
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary start/header/body sequences never panic, only fail with 501/505, and behave
    /// like a simple state-machine model.
    #[test]
    fn assembler_arbitrary_ops_match_model(ops in vec(op(), 0..40)) {
        let mut a: ContentAssembler<u8> = ContentAssembler::default();
        let mut m = Model::Idle;
        for op in ops {
            match op {
                Op::Start(x) => {
                    a.start(x);
                    m = Model::AwaitingHeader(x);
                }
                Op::Reset => {
                    a.reset();
                    m = Model::Idle;
                }
                Op::CheckMethod => {
                    let r = a.check_method_allowed();
                    match &m {
                        Model::Idle => prop_assert!(r.is_ok()),
                        _ => prop_assert_eq!(r.unwrap_err().code, 505),
                    }
                }
                Op::Header { class_id, body_size } => {
                    let r = a.header(class_id, body_size, Properties::default());
                    match m.clone() {
                        // RabbitMQ: "expected content header for class 60, got one for
                        // class N instead", an unexpected frame.
                        Model::AwaitingHeader(_) if class_id != 60 => {
                            prop_assert_eq!(r.unwrap_err().code, 505);
                            m = Model::Idle;
                        }
                        Model::AwaitingHeader(method) if body_size == 0 => {
                            let c = r.unwrap().unwrap();
                            prop_assert_eq!(c.method, method);
                            prop_assert!(c.body.is_empty());
                            m = Model::Idle;
                        }
                        Model::AwaitingHeader(method) => {
                            prop_assert!(r.unwrap().is_none());
                            m = Model::AwaitingBody { method, size: body_size, got: vec![] };
                        }
                        Model::Idle | Model::AwaitingBody { .. } => prop_assert_eq!(r.unwrap_err().code, 505),
                    }
                }
                Op::Body(chunk) => {
                    let r = a.body(Bytes::from(chunk.clone()));
                    match &mut m {
                        Model::AwaitingBody { method, size, got } => {
                            if (got.len() + chunk.len()) as u64 > *size {
                                prop_assert_eq!(r.unwrap_err().code, 501);
                                // State after an oversize body is not specified by the model:
                                // the connection closes. Stop here.
                                return Ok(());
                            }
                            got.extend_from_slice(&chunk);
                            if got.len() as u64 == *size {
                                let c = r.unwrap().unwrap();
                                prop_assert_eq!(c.method, *method);
                                prop_assert_eq!(&c.body[..], &got[..]);
                                m = Model::Idle;
                            } else {
                                prop_assert!(r.unwrap().is_none());
                            }
                        }
                        Model::Idle | Model::AwaitingHeader(_) => prop_assert_eq!(r.unwrap_err().code, 505),
                    }
                }
            }
            prop_assert_eq!(a.is_idle(), m == Model::Idle);
        }
    }

    /// A well-formed start/header/body… sequence, body split anywhere (empty chunks included),
    /// reproduces method, properties and body exactly; a single-frame body is not copied.
    #[test]
    fn assembler_well_formed_reproduces_body(
        method in any::<u32>(),
        properties in properties(),
        body in vec(any::<u8>(), 0..3000),
        cuts in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let raw = Bytes::from(encode::properties(&properties));
        let mut a: ContentAssembler<u32> = ContentAssembler::default();
        prop_assert!(a.check_method_allowed().is_ok());
        a.start(method);
        let r = a.header(60, body.len() as u64, Properties::parse(raw.clone()).unwrap()).unwrap();
        let done = if body.is_empty() {
            r.expect("empty body completes at the header")
        } else {
            prop_assert!(r.is_none());
            let mut points: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
            points.push(0);
            points.push(body.len());
            points.sort_unstable();
            let body = Bytes::from(body.clone());
            let mut pieces: Vec<Bytes> = points.windows(2).map(|w| body.slice(w[0]..w[1])).collect();
            // Empty frames after the last byte would be frames past the end of the content.
            while pieces.last().is_some_and(|p| p.is_empty()) {
                pieces.pop();
            }
            let mut done = None;
            for (i, p) in pieces.iter().enumerate() {
                prop_assert!(done.is_none(), "completed early");
                let r = a.body(p.clone()).unwrap();
                if i + 1 == pieces.len() {
                    done = r;
                } else {
                    prop_assert!(r.is_none());
                }
            }
            let done = done.expect("complete after the last chunk");
            if pieces.iter().filter(|p| !p.is_empty()).count() == 1 {
                prop_assert_eq!(done.body.as_ptr(), pieces.last().unwrap().as_ptr(), "single-frame body copied");
            }
            done
        };
        prop_assert_eq!(done.method, method);
        prop_assert_eq!(&done.properties.to_basic(), &properties);
        prop_assert_eq!(done.properties.raw(), &raw);
        prop_assert_eq!(&done.body[..], &body[..]);
        prop_assert!(a.is_idle());
    }
}
