//! The client's frame layer on top of `warren-protocol`: inbound frames with a hand-decoded
//! hot path (basic.deliver, basic.get-ok, confirm ack/nack, content header and body, read in
//! place without allocating) and `codec::decode_frame` for everything else; outbound, a
//! pre-encoded basic.publish template so each message costs a few memcpys.
//!
//! The body of a warren-perf message starts with two big-endian u64s: the send time
//! (nanoseconds since the Unix epoch) and the sequence field, which holds the producer's id in
//! its top 16 bits and that producer's message number (from 0) in the other 48
//! ([`seq_field`], [`split_seq`]). A delayed message (`--delays`) has a third, its delay field
//! ([`crate::delay::delay_field`]). The rest is filler. With `--priorities N` the `priority`
//! property of message number k is k mod N; with delays, message k goes to the k mod n-th
//! [`Target`] (its own exchange, routing key, `x-delay` header and delay field).

use amq_protocol::protocol::{AMQPClass, BasicProperties, basic};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use warren_protocol::codec::{
    self, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEADER_SIZE, FRAME_METHOD, FRAME_OVERHEAD,
    Frame,
};
use warren_protocol::encode;

use crate::Error;
use crate::delay::{Target, delay_field, split_delay_field, x_delay_headers};

/// One frame from the server, reduced to what the load generator needs.
#[derive(Debug)]
pub enum Inbound {
    Deliver {
        delivery_tag: u64,
    },
    GetOk {
        delivery_tag: u64,
    },
    /// A content header; `priority` is the `priority` property, if set.
    Header {
        body_size: u64,
        priority: Option<u8>,
    },
    /// A body frame; `head` and `seq` are its first two big-endian u64s (the send timestamp and
    /// the sequence field when this is the first body frame of a message), `delay` the delay
    /// in ms of the third when that is a delay field.
    Body {
        len: usize,
        head: Option<u64>,
        seq: Option<u64>,
        delay: Option<u64>,
    },
    Ack {
        tag: u64,
        multiple: bool,
    },
    Nack {
        tag: u64,
        multiple: bool,
    },
    Method(AMQPClass),
    Heartbeat,
}

fn be_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

/// Bits of the sequence field below the producer id.
const SEQ_BITS: u32 = 48;

/// The body's sequence field: `producer` (its low 16 bits) over message number `seq` (its low
/// 48 bits).
pub fn seq_field(producer: usize, seq: u64) -> u64 {
    ((producer as u64 & 0xFFFF) << SEQ_BITS) | (seq & ((1 << SEQ_BITS) - 1))
}

/// (producer, message number) of a sequence field.
pub fn split_seq(field: u64) -> (u16, u64) {
    ((field >> SEQ_BITS) as u16, field & ((1 << SEQ_BITS) - 1))
}

/// Property flags (AMQP 0-9-1 basic class), in wire order from the top bit.
const FLAG_CONTENT_TYPE: u16 = 0x8000;
const FLAG_CONTENT_ENCODING: u16 = 0x4000;
const FLAG_HEADERS: u16 = 0x2000;
const FLAG_DELIVERY_MODE: u16 = 0x1000;
const FLAG_PRIORITY: u16 = 0x0800;

/// The `priority` property of encoded properties (flags, then the fields present), if set.
/// Only the fields before it are walked: content-type, content-encoding, headers, delivery-mode.
pub fn properties_priority(p: &[u8]) -> Option<u8> {
    let flags = u16::from_be_bytes([*p.first()?, *p.get(1)?]);
    // Bit 0 announces a further flags word (never used by the basic class).
    if flags & FLAG_PRIORITY == 0 || flags & 1 != 0 {
        return None;
    }
    let mut pos = 2;
    if flags & FLAG_CONTENT_TYPE != 0 {
        pos = skip_short_str(p, pos)?;
    }
    if flags & FLAG_CONTENT_ENCODING != 0 {
        pos = skip_short_str(p, pos)?;
    }
    if flags & FLAG_HEADERS != 0 {
        let len = u32::from_be_bytes(p.get(pos..pos + 4)?.try_into().ok()?);
        pos += 4 + len as usize;
    }
    if flags & FLAG_DELIVERY_MODE != 0 {
        pos += 1;
    }
    p.get(pos).copied()
}

/// Skips a short string at `pos`, returning the position after it.
fn skip_short_str(p: &[u8], pos: usize) -> Option<usize> {
    let end = pos + 1 + *p.get(pos)? as usize;
    (end <= p.len()).then_some(end)
}

/// basic.deliver: consumer-tag, delivery-tag, redelivered, exchange, routing-key.
fn deliver_tag(p: &[u8]) -> Option<u64> {
    let pos = skip_short_str(p, 4)?;
    let tag = be_u64(p.get(pos..)?)?;
    let pos = skip_short_str(p, pos + 9)?;
    let pos = skip_short_str(p, pos)?;
    (pos == p.len()).then_some(tag)
}

/// basic.get-ok: delivery-tag, redelivered, exchange, routing-key, message-count.
fn get_ok_tag(p: &[u8]) -> Option<u64> {
    let tag = be_u64(p.get(4..)?)?;
    let pos = skip_short_str(p, 13)?;
    let pos = skip_short_str(p, pos)?;
    (pos + 4 == p.len()).then_some(tag)
}

/// A body frame's payload: its length and stamps.
fn body(p: &[u8]) -> Inbound {
    Inbound::Body {
        len: p.len(),
        head: be_u64(p),
        seq: p.get(8..).and_then(be_u64),
        delay: p.get(16..).and_then(be_u64).and_then(split_delay_field),
    }
}

/// Decodes the frame at the front of `buf`, consuming it; `Ok(None)` when more bytes are
/// needed. Anything unusual (other methods, bad sizes, bad frame ends) goes through
/// `codec::decode_frame`, which reports malformed input as an error rather than panicking.
pub fn next_frame(buf: &mut BytesMut, frame_max: u32) -> Result<Option<(u16, Inbound)>, Error> {
    if buf.len() < FRAME_HEADER_SIZE {
        return Ok(None);
    }
    let kind = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    let size = u32::from_be_bytes([buf[3], buf[4], buf[5], buf[6]]) as usize;
    let plain = matches!(kind, FRAME_METHOD | FRAME_HEADER | FRAME_BODY)
        && (frame_max == 0 || size <= frame_max as usize);
    let total = size + FRAME_OVERHEAD;
    if plain && buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    if plain && buf[total - 1] == FRAME_END {
        let p = &buf[FRAME_HEADER_SIZE..FRAME_HEADER_SIZE + size];
        let fast = match kind {
            FRAME_BODY => Some(body(p)),
            FRAME_HEADER if size >= 14 => be_u64(&p[4..]).map(|body_size| Inbound::Header {
                body_size,
                priority: properties_priority(&p[12..]),
            }),
            FRAME_METHOD if size >= 4 && p[0..2] == [0, 60] => {
                let method = u16::from_be_bytes([p[2], p[3]]);
                match method {
                    60 => deliver_tag(p).map(|delivery_tag| Inbound::Deliver { delivery_tag }),
                    71 => get_ok_tag(p).map(|delivery_tag| Inbound::GetOk { delivery_tag }),
                    80 if size == 13 => be_u64(&p[4..]).map(|tag| Inbound::Ack {
                        tag,
                        multiple: p[12] & 1 != 0,
                    }),
                    120 if size == 13 => be_u64(&p[4..]).map(|tag| Inbound::Nack {
                        tag,
                        multiple: p[12] & 1 != 0,
                    }),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(inbound) = fast {
            buf.advance(total);
            return Ok(Some((channel, inbound)));
        }
    }
    let frame = codec::decode_frame(buf, frame_max)
        .map_err(|e| Error(format!("bad frame from server: {e}")))?;
    Ok(frame.map(|f| match f {
        Frame::Method { channel, method } => (channel, Inbound::Method(method)),
        Frame::Heartbeat { channel } => (channel, Inbound::Heartbeat),
        Frame::Header {
            channel,
            body_size,
            properties,
            ..
        } => (
            channel,
            Inbound::Header {
                body_size,
                priority: properties.priority(),
            },
        ),
        Frame::Body { channel, payload } => (channel, body(&payload)),
        Frame::Publish { channel, .. } => (
            channel,
            Inbound::Method(AMQPClass::Basic(basic::AMQPMethod::Publish(
                basic::Publish::default(),
            ))),
        ),
    }))
}

/// Appends a client basic.ack (same wire form as the server's confirm ack).
pub fn put_ack(out: &mut BytesMut, channel: u16, delivery_tag: u64, multiple: bool) {
    encode::basic_ack(out, channel, delivery_tag, multiple);
}

/// What a producer's messages look like.
#[derive(Debug, Clone, Default)]
pub struct MessageSpec {
    /// The producer's id, in the top bits of each body's sequence field.
    pub producer: usize,
    /// delivery-mode 2 rather than 1.
    pub persistent: bool,
    /// Body size in bytes (at least 16).
    pub size: usize,
    /// Priority levels to cycle through, message by message (0: no `priority` property).
    pub priorities: u8,
    /// The `expiration` property (per-message TTL in milliseconds, as a string).
    pub expiration: Option<String>,
}

/// A pre-encoded basic.publish + content header per [`Target`]; the body is a reused buffer
/// whose first 16 bytes (24 with a delay) are rewritten per message, and with priorities, one
/// byte of the properties.
pub struct PublishTemplate {
    channel: u16,
    variants: Vec<Variant>,
    priorities: u8,
    producer: usize,
    body: Vec<u8>,
    frame_max: u32,
}

/// One target's encoded publish method and properties.
struct Variant {
    method: Bytes,
    properties: Vec<u8>,
    /// Where the priority byte sits in `properties` (with `priorities` > 0).
    priority_at: usize,
    /// The body's delay field, for a delayed target.
    delay_field: Option<u64>,
}

impl PublishTemplate {
    /// Every message to `exchange` with `routing_key`.
    pub fn new(
        channel: u16,
        exchange: &str,
        routing_key: &str,
        spec: &MessageSpec,
        frame_max: u32,
    ) -> Result<PublishTemplate, Error> {
        let target = Target {
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
            delay_ms: None,
            x_delay_header: false,
        };
        PublishTemplate::with_targets(channel, &[target], spec, frame_max)
    }

    /// Message number k to `targets[k mod n]` (at least one target).
    pub fn with_targets(
        channel: u16,
        targets: &[Target],
        spec: &MessageSpec,
        frame_max: u32,
    ) -> Result<PublishTemplate, Error> {
        if targets.is_empty() {
            return Err(Error::msg("no publish target"));
        }
        let delayed = targets.iter().any(|t| t.delay_ms.is_some());
        if delayed && spec.size < crate::delay::MIN_SIZE {
            return Err(Error::msg("delayed messages need --size 24 or more"));
        }
        let variants = targets
            .iter()
            .map(|t| Variant::new(channel, t, spec))
            .collect::<Result<Vec<_>, Error>>()?;
        // Filler after the 16-byte stamp: not all zeros, so nothing compresses it away.
        let body = (0..spec.size.max(16)).map(|i| (i % 251) as u8).collect();
        Ok(PublishTemplate {
            channel,
            variants,
            priorities: spec.priorities,
            producer: spec.producer,
            body,
            frame_max,
        })
    }

    /// Wire bytes of one message, the largest target's (for sizing write batches).
    pub fn wire_len(&self) -> usize {
        let frames = self
            .body
            .len()
            .div_ceil(self.frame_max.saturating_sub(8).max(1) as usize);
        let head = self
            .variants
            .iter()
            .map(|v| v.method.len() + v.properties.len())
            .max()
            .unwrap_or(0);
        head + FRAME_OVERHEAD + 12 + self.body.len() + frames * FRAME_OVERHEAD
    }

    /// Appends the producer's message number `seq`, stamped with `stamp_ns` (wall-clock
    /// nanoseconds).
    pub fn put(&mut self, out: &mut BytesMut, stamp_ns: u64, seq: u64) {
        let n = self.variants.len() as u64;
        let v = &mut self.variants[(seq % n) as usize];
        out.put_slice(&v.method);
        self.body[..8].copy_from_slice(&stamp_ns.to_be_bytes());
        self.body[8..16].copy_from_slice(&seq_field(self.producer, seq).to_be_bytes());
        if let Some(field) = v.delay_field {
            self.body[16..24].copy_from_slice(&field.to_be_bytes());
        }
        if self.priorities > 0 {
            v.properties[v.priority_at] = (seq % self.priorities as u64) as u8;
        }
        encode::content(out, self.channel, &v.properties, &self.body, self.frame_max);
    }
}

impl Variant {
    fn new(channel: u16, target: &Target, spec: &MessageSpec) -> Result<Variant, Error> {
        let publish = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: crate::config::short_str(&target.exchange)?,
            routing_key: crate::config::short_str(&target.routing_key)?,
            mandatory: false,
            immediate: false,
        }));
        let mut method = BytesMut::new();
        encode::method(&mut method, channel, &publish);
        let mut props =
            BasicProperties::default().with_delivery_mode(if spec.persistent { 2 } else { 1 });
        if let (Some(d), true) = (target.delay_ms, target.x_delay_header) {
            props = props.with_headers(x_delay_headers(d)?);
        }
        if let Some(e) = &spec.expiration {
            props = props.with_expiration(crate::config::short_str(e)?);
        }
        let (properties, priority_at) = if spec.priorities > 0 {
            // The byte that differs between priority 0 and 1 is the one to rewrite.
            let zero = encode::properties(&props.clone().with_priority(0));
            let one = encode::properties(&props.with_priority(1));
            let at = zero
                .iter()
                .zip(&one)
                .position(|(a, b)| a != b)
                .filter(|_| zero.len() == one.len())
                .ok_or_else(|| Error::msg("cannot place the priority property"))?;
            (zero, at)
        } else {
            (encode::properties(&props), 0)
        };
        Ok(Variant {
            method: method.freeze(),
            properties,
            priority_at,
            delay_field: target.delay_ms.map(delay_field),
        })
    }
}

/// Wall-clock nanoseconds since the Unix epoch (shared by producer and consumer processes
/// on one machine, so it can stamp end-to-end latency).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_path_frames_decode_by_hand() {
        let mut out = BytesMut::new();
        encode::deliver(&mut out, 1, "ctag", 42, false, "ex", "rk");
        encode::get_ok(&mut out, 1, 43, true, "", "q", 7);
        encode::basic_ack(&mut out, 1, 9, true);
        encode::basic_nack(&mut out, 1, 10, false);
        let spec = MessageSpec {
            producer: 3,
            persistent: true,
            size: 20,
            ..MessageSpec::default()
        };
        let mut t = PublishTemplate::new(1, "", "q", &spec, 131072).unwrap();
        let mut msg = BytesMut::new();
        t.put(&mut msg, 123, 5);
        assert_eq!(msg.len(), t.wire_len());
        // Skip the publish method (a client frame) and keep header + body.
        let method_len = t.variants[0].method.len();
        out.extend_from_slice(&msg[method_len..]);
        let mut got = vec![];
        while let Some((_, f)) = next_frame(&mut out, 131072).unwrap() {
            got.push(format!("{f:?}"));
        }
        assert_eq!(
            got,
            [
                "Deliver { delivery_tag: 42 }",
                "GetOk { delivery_tag: 43 }",
                "Ack { tag: 9, multiple: true }",
                "Nack { tag: 10, multiple: false }",
                "Header { body_size: 20, priority: None }",
                format!(
                    "Body {{ len: 20, head: Some(123), seq: Some({}), delay: None }}",
                    seq_field(3, 5)
                )
                .as_str(),
            ]
        );
    }

    #[test]
    fn sequence_field_holds_producer_and_number() {
        assert_eq!(split_seq(seq_field(7, 42)), (7, 42));
        assert_eq!(
            split_seq(seq_field(65535, (1 << 48) - 1)),
            (65535, (1 << 48) - 1)
        );
        // Wider values keep their low bits.
        assert_eq!(split_seq(seq_field(65536 + 2, 1 << 48)), (2, 0));
    }

    /// The properties of the header frame `t` writes for message number `seq`.
    fn header_of(t: &mut PublishTemplate, seq: u64) -> (Option<u8>, BasicProperties) {
        let mut msg = BytesMut::new();
        t.put(&mut msg, 1, seq);
        let _ = msg.split_to(
            t.variants[(seq % t.variants.len() as u64) as usize]
                .method
                .len(),
        );
        let Some((_, Inbound::Header { priority, .. })) = next_frame(&mut msg.clone(), 0).unwrap()
        else {
            panic!("no header frame");
        };
        let Some(Frame::Header { properties, .. }) = codec::decode_frame(&mut msg, 0).unwrap()
        else {
            panic!("no header frame");
        };
        (priority, properties.to_basic())
    }

    #[test]
    fn priorities_cycle_and_expiration_is_set() {
        let spec = MessageSpec {
            persistent: true,
            size: 16,
            priorities: 10,
            expiration: Some("3600000".into()),
            ..MessageSpec::default()
        };
        let mut t = PublishTemplate::new(1, "", "q", &spec, 131072).unwrap();
        for seq in [0u64, 1, 9, 10, 23] {
            let (fast, props) = header_of(&mut t, seq);
            let want = (seq % 10) as u8;
            assert_eq!(fast, Some(want), "hand-decoded priority of {seq}");
            assert_eq!(props.priority(), &Some(want));
            assert_eq!(props.delivery_mode(), &Some(2));
            assert_eq!(
                props.expiration().as_ref().map(|e| e.as_str()),
                Some("3600000")
            );
        }
        // Without --priorities: no property; transient is delivery mode 1.
        let plain = MessageSpec {
            size: 16,
            ..MessageSpec::default()
        };
        let mut t = PublishTemplate::new(1, "", "q", &plain, 131072).unwrap();
        let (fast, props) = header_of(&mut t, 3);
        assert_eq!((fast, props.priority()), (None, &None));
        assert_eq!(props.delivery_mode(), &Some(1));
        assert!(props.expiration().is_none());
    }

    #[test]
    fn delayed_targets_cycle_with_header_and_body_delay() {
        let targets = crate::delay::targets(
            crate::delay::DelayMode::Header,
            "later",
            "q",
            "q",
            &[1000, 2000],
        );
        let spec = MessageSpec {
            size: 24,
            priorities: 3,
            ..MessageSpec::default()
        };
        let mut t = PublishTemplate::with_targets(1, &targets, &spec, 131072).unwrap();
        for seq in 0..4u64 {
            let want = [1000i64, 2000][seq as usize % 2];
            let (priority, props) = header_of(&mut t, seq);
            assert_eq!(priority, Some((seq % 3) as u8));
            let x_delay = props
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get("x-delay").cloned());
            assert_eq!(
                x_delay,
                Some(amq_protocol::types::AMQPValue::LongLongInt(want))
            );
            let mut msg = BytesMut::new();
            t.put(&mut msg, 77, seq);
            let _ = msg.split_to(t.variants[(seq % 2) as usize].method.len());
            let _header = next_frame(&mut msg, 0).unwrap();
            let Some((_, Inbound::Body { head, delay, .. })) = next_frame(&mut msg, 0).unwrap()
            else {
                panic!("no body frame");
            };
            assert_eq!((head, delay), (Some(77), Some(want as u64)));
        }
        // ttl-queues: the default exchange and a routing key per delay, no header.
        let ttl = crate::delay::targets(crate::delay::DelayMode::TtlQueues, "", "q", "q", &[5]);
        let mut t = PublishTemplate::with_targets(1, &ttl, &spec, 131072).unwrap();
        let (_, props) = header_of(&mut t, 0);
        assert!(props.headers().is_none());
        let method = &t.variants[0].method;
        assert!(method.windows(9).any(|w| w == b"q.delay.5"));
        assert!(method.windows(5).all(|w| w != b"later"));
        // The body must hold the delay.
        let small = MessageSpec {
            size: 16,
            ..MessageSpec::default()
        };
        assert!(PublishTemplate::with_targets(1, &ttl, &small, 131072).is_err());
    }

    #[test]
    fn priority_is_found_after_the_fields_before_it() {
        use amq_protocol::types::{AMQPValue, FieldTable};
        let mut headers = FieldTable::default();
        headers.insert("x-death-ish".into(), AMQPValue::LongString("abc".into()));
        let props = BasicProperties::default()
            .with_content_type("text/plain".into())
            .with_content_encoding("gzip".into())
            .with_headers(headers)
            .with_delivery_mode(2)
            .with_priority(7)
            .with_expiration("5".into());
        assert_eq!(properties_priority(&encode::properties(&props)), Some(7));
        let none = BasicProperties::default().with_content_type("a".into());
        assert_eq!(properties_priority(&encode::properties(&none)), None);
        // Truncated properties: no priority rather than a panic.
        let raw = encode::properties(&props);
        for cut in 0..raw.len() - 1 {
            let _ = properties_priority(&raw[..cut]);
        }
        assert_eq!(properties_priority(&raw[..2]), None);
    }

    #[test]
    fn other_methods_and_garbage_go_through_the_codec() {
        let mut out = BytesMut::new();
        let ok = AMQPClass::Basic(basic::AMQPMethod::QosOk(basic::QosOk {}));
        encode::method(&mut out, 1, &ok);
        encode::heartbeat(&mut out);
        let (_, f) = next_frame(&mut out, 0).unwrap().unwrap();
        assert!(matches!(f, Inbound::Method(m) if m == ok));
        assert!(matches!(
            next_frame(&mut out, 0).unwrap(),
            Some((0, Inbound::Heartbeat))
        ));
        let mut bad = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 5, 0, 60, 0, 60, 9, 0xCE][..]);
        assert!(next_frame(&mut bad, 0).is_err());
        let mut bad_end = BytesMut::from(&[3u8, 0, 1, 0, 0, 0, 1, 7, 0xAB][..]);
        assert!(next_frame(&mut bad_end, 0).is_err());
    }
}
