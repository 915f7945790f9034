//! The client's frame layer on top of `warren-protocol`: inbound frames with a hand-decoded
//! hot path (basic.deliver, basic.get-ok, confirm ack/nack, content header and body, read in
//! place without allocating) and `codec::decode_frame` for everything else; outbound, a
//! pre-encoded basic.publish template so each message costs a few memcpys.

use amq_protocol::protocol::{AMQPClass, BasicProperties, basic};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use warren_protocol::codec::{
    self, FRAME_BODY, FRAME_END, FRAME_HEADER, FRAME_HEADER_SIZE, FRAME_METHOD, FRAME_OVERHEAD,
    Frame,
};
use warren_protocol::encode;

use crate::Error;

/// One frame from the server, reduced to what the load generator needs.
#[derive(Debug)]
pub enum Inbound {
    Deliver {
        delivery_tag: u64,
    },
    GetOk {
        delivery_tag: u64,
    },
    Header {
        body_size: u64,
    },
    /// A body frame; `head` is its first 8 bytes as a big-endian u64 (the send timestamp when
    /// this is the first body frame of a message).
    Body {
        len: usize,
        head: Option<u64>,
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
            FRAME_BODY => Some(Inbound::Body {
                len: size,
                head: be_u64(p),
            }),
            FRAME_HEADER if size >= 14 => {
                be_u64(&p[4..]).map(|body_size| Inbound::Header { body_size })
            }
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
            channel, body_size, ..
        } => (channel, Inbound::Header { body_size }),
        Frame::Body { channel, payload } => (
            channel,
            Inbound::Body {
                len: payload.len(),
                head: be_u64(&payload),
            },
        ),
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

/// A pre-encoded basic.publish + content header; the body is a reused buffer whose first
/// 16 bytes are rewritten per message.
pub struct PublishTemplate {
    channel: u16,
    method: Bytes,
    properties: Vec<u8>,
    body: Vec<u8>,
    frame_max: u32,
}

impl PublishTemplate {
    pub fn new(
        channel: u16,
        exchange: &str,
        routing_key: &str,
        persistent: bool,
        size: usize,
        frame_max: u32,
    ) -> Result<PublishTemplate, Error> {
        let publish = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: crate::config::short_str(exchange)?,
            routing_key: crate::config::short_str(routing_key)?,
            mandatory: false,
            immediate: false,
        }));
        let mut method = BytesMut::new();
        encode::method(&mut method, channel, &publish);
        let props = BasicProperties::default().with_delivery_mode(if persistent { 2 } else { 1 });
        // Filler after the 16-byte stamp: not all zeros, so nothing compresses it away.
        let body = (0..size.max(16)).map(|i| (i % 251) as u8).collect();
        Ok(PublishTemplate {
            channel,
            method: method.freeze(),
            properties: encode::properties(&props),
            body,
            frame_max,
        })
    }

    /// Wire bytes of one message (for sizing write batches).
    pub fn wire_len(&self) -> usize {
        let frames = self
            .body
            .len()
            .div_ceil(self.frame_max.saturating_sub(8).max(1) as usize);
        self.method.len()
            + FRAME_OVERHEAD
            + 12
            + self.properties.len()
            + self.body.len()
            + frames * FRAME_OVERHEAD
    }

    /// Appends one message stamped with `stamp_ns` (wall-clock nanoseconds) and `seq`.
    pub fn put(&mut self, out: &mut BytesMut, stamp_ns: u64, seq: u64) {
        out.put_slice(&self.method);
        self.body[..8].copy_from_slice(&stamp_ns.to_be_bytes());
        self.body[8..16].copy_from_slice(&seq.to_be_bytes());
        encode::content(
            out,
            self.channel,
            &self.properties,
            &self.body,
            self.frame_max,
        );
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
        let mut t = PublishTemplate::new(1, "", "q", true, 20, 131072).unwrap();
        let mut msg = BytesMut::new();
        t.put(&mut msg, 123, 5);
        assert_eq!(msg.len(), t.wire_len());
        // Skip the publish method (a client frame) and keep header + body.
        let method_len = t.method.len();
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
                "Header { body_size: 20 }",
                "Body { len: 20, head: Some(123) }",
            ]
        );
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
