//! Streaming decode of the frames a client sends.
//!
//! The read loop appends socket bytes to one `BytesMut` and calls [`decode_frame`] until it
//! returns `Ok(None)` (need more bytes). The frame size from the 7-byte header is checked against
//! the negotiated `frame_max` *before* any payload is buffered, so a peer cannot make us hold a
//! frame larger than we agreed to. Body payloads and content-header properties come out as
//! `Bytes` slices of the read buffer: no copy. Nothing here panics on peer input: every malformed
//! frame is an [`AmqpError`] carrying the spec's reply code.

use amq_protocol::protocol::{AMQPClass, parse_class};
use bytes::{Buf, Bytes, BytesMut};
use nom::Parser;
use nom::combinator::all_consuming;

use crate::properties::Properties;
use crate::publish::{self, Publish};
use crate::reply::AmqpError;

/// What a client must send first, and what we answer a wrong header with.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

pub const FRAME_METHOD: u8 = 1;
pub const FRAME_HEADER: u8 = 2;
pub const FRAME_BODY: u8 = 3;
pub const FRAME_HEARTBEAT: u8 = 8;
pub const FRAME_END: u8 = 0xCE;
/// Type (1) + channel (2) + size (4).
pub const FRAME_HEADER_SIZE: usize = 7;
/// Header plus the frame-end octet: what a frame costs beyond its payload.
pub const FRAME_OVERHEAD: usize = FRAME_HEADER_SIZE + 1;

/// One decoded client frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Method {
        channel: u16,
        method: AMQPClass,
    },
    /// basic.publish, decoded by hand without allocating (see [`publish`]).
    Publish {
        channel: u16,
        publish: Publish,
    },
    /// A content header. The properties keep the bytes exactly as sent, so deliveries forward
    /// them unchanged (field-table order and type tags preserved).
    Header {
        channel: u16,
        class_id: u16,
        body_size: u64,
        properties: Properties,
    },
    Body {
        channel: u16,
        payload: Bytes,
    },
    Heartbeat {
        channel: u16,
    },
}

impl Frame {
    pub fn channel(&self) -> u16 {
        match self {
            Frame::Method { channel, .. }
            | Frame::Publish { channel, .. }
            | Frame::Header { channel, .. }
            | Frame::Body { channel, .. }
            | Frame::Heartbeat { channel } => *channel,
        }
    }
}

/// Result of looking at the first bytes of a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum ProtocolHeader {
    /// Fewer than 8 bytes so far, and they are a prefix of a valid header.
    Incomplete,
    /// `AMQP 0-9-1`: the 8 bytes may be consumed.
    Accepted,
    /// Anything else: answer with [`PROTOCOL_HEADER`] and close.
    Rejected,
}

/// Checks the protocol header at the start of `buf` (does not consume it).
pub fn check_protocol_header(buf: &[u8]) -> ProtocolHeader {
    let n = buf.len().min(PROTOCOL_HEADER.len());
    // Both `AMQP\0\0\x09\x01` and the older `AMQP\x01\x01\x00\x09` forms exist; only 0-9-1 is ours.
    if buf[..n] != PROTOCOL_HEADER[..n] {
        return ProtocolHeader::Rejected;
    }
    if n < PROTOCOL_HEADER.len() {
        ProtocolHeader::Incomplete
    } else {
        ProtocolHeader::Accepted
    }
}

/// The payload size a frame header at the front of `buf` announces, once its 7 bytes are there.
/// Unchecked: [`decode_frame`] judges it (type, `frame_max`).
pub fn announced_payload(buf: &[u8]) -> Option<usize> {
    let header = buf.get(..FRAME_HEADER_SIZE)?;
    Some(u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize)
}

/// Decodes one frame from the front of `buf`, consuming it.
///
/// `frame_max` is the negotiated maximum frame size (0 means no limit). Returns `Ok(None)`
/// when more bytes are needed; in that case it reserves
/// room for the announced frame so the next read can fill it.
pub fn decode_frame(buf: &mut BytesMut, frame_max: u32) -> Result<Option<Frame>, AmqpError> {
    let Some(size) = announced_payload(buf) else {
        return Ok(None);
    };
    let kind = buf[0];
    let channel = u16::from_be_bytes([buf[1], buf[2]]);
    if !matches!(
        kind,
        FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
    ) {
        return Err(AmqpError::frame_error(format_args!(
            "type {kind}, unknown frame type"
        )));
    }
    // Like RabbitMQ 3.10, compare the payload alone with frame_max: clients that count the
    // 8 bytes of framing and clients that do not both work. (We send frames within frame_max.)
    if frame_max != 0 && size > frame_max as usize {
        return Err(AmqpError::frame_error(format_args!(
            "type {kind}, payload size {size} exceeds negotiated frame_max {frame_max}"
        )));
    }
    let total = size + FRAME_OVERHEAD;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    if buf[total - 1] != FRAME_END {
        return Err(AmqpError::frame_error(format_args!(
            "type {kind}, invalid frame end marker {:#04x}",
            buf[total - 1]
        )));
    }
    // Method and header frames are decoded straight from the buffer: only what outlives the
    // frame (a body, the properties) becomes a `Bytes` slice of it.
    let frame = match kind {
        FRAME_METHOD => decode_method(channel, &buf[FRAME_HEADER_SIZE..FRAME_HEADER_SIZE + size]),
        // These two consume the frame themselves: what they keep is a slice of it.
        FRAME_HEADER => return decode_header(channel, buf, size).map(Some),
        FRAME_BODY => {
            buf.advance(FRAME_HEADER_SIZE);
            let payload = buf.split_to(size).freeze();
            buf.advance(1);
            return Ok(Some(Frame::Body { channel, payload }));
        }
        _ if channel != 0 => Err(AmqpError::unexpected_frame(format_args!(
            "heartbeat frame on channel {channel}"
        ))),
        _ => Ok(Frame::Heartbeat { channel }),
    };
    buf.advance(total);
    frame.map(Some)
}

fn decode_method(channel: u16, payload: &[u8]) -> Result<Frame, AmqpError> {
    if payload.len() < 4 {
        return Err(AmqpError::frame_error("method frame too short"));
    }
    let class_id = u16::from_be_bytes([payload[0], payload[1]]);
    let method_id = u16::from_be_bytes([payload[2], payload[3]]);
    if (class_id, method_id) == (60, 40) {
        return publish::decode(payload).map(|publish| Frame::Publish { channel, publish });
    }
    if let Some(method) = publish::decode_settlement(payload, class_id, method_id) {
        return Ok(Frame::Method { channel, method });
    }
    crate::depth::check_method(payload, class_id, method_id)?;
    check_dropped_fields(payload, class_id, method_id)?;
    match all_consuming(parse_class).parse(payload) {
        Ok((_, method)) => Ok(Frame::Method { channel, method }),
        Err(_) if !is_known_method(class_id, method_id) => Err(AmqpError::command_invalid(
            format_args!("unknown method class {class_id} method {method_id}"),
        )
        .on(class_id, method_id)),
        // RabbitMQ answers undecodable arguments with 501, not 502.
        Err(_) => Err(AmqpError::frame_error(format_args!(
            "cannot decode arguments of method {class_id}.{method_id}"
        ))
        .on(class_id, method_id)),
    }
}

/// Fields amq-protocol parses but does not keep, which RabbitMQ refuses when set.
fn check_dropped_fields(payload: &[u8], class_id: u16, method_id: u16) -> Result<(), AmqpError> {
    // basic.qos prefetch-size: RabbitMQ answers a non-zero value with 540.
    if (class_id, method_id) == (60, 10)
        && let Some(b) = payload.get(4..8)
    {
        let prefetch_size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if prefetch_size != 0 {
            return Err(AmqpError::not_implemented(format_args!(
                "prefetch_size!=0 ({prefetch_size})"
            ))
            .on(60, 10));
        }
    }
    Ok(())
}

/// Whether (class, method) names an AMQP 0-9-1 method, so a parse failure is a syntax error
/// in its arguments rather than an unknown command.
fn is_known_method(class_id: u16, method_id: u16) -> bool {
    match class_id {
        10 => matches!(
            method_id,
            10 | 11 | 20 | 21 | 30 | 31 | 40 | 41 | 50 | 51 | 60 | 61 | 70 | 71
        ),
        20 => matches!(method_id, 10 | 11 | 20 | 21 | 40 | 41),
        40 => matches!(method_id, 10 | 11 | 20 | 21 | 30 | 31 | 40 | 51),
        50 => matches!(method_id, 10 | 11 | 20 | 21 | 30 | 31 | 40 | 41 | 50 | 51),
        60 => matches!(
            method_id,
            10 | 11
                | 20
                | 21
                | 30
                | 31
                | 40
                | 50
                | 60
                | 70
                | 71
                | 72
                | 80
                | 90
                | 100
                | 110
                | 111
                | 120
        ),
        85 => matches!(method_id, 10 | 11),
        90 => matches!(method_id, 10 | 11 | 20 | 21 | 30 | 31),
        _ => false,
    }
}

/// Decodes a content header frame of `size` payload bytes at the front of `buf`, consuming the
/// whole frame; the properties become one `Bytes` slice.
fn decode_header(channel: u16, buf: &mut BytesMut, size: usize) -> Result<Frame, AmqpError> {
    // class-id (2) + weight (2) + body-size (8) precede the property flags.
    const PROPERTIES_OFFSET: usize = 12;
    if size < PROPERTIES_OFFSET + 2 {
        return Err(AmqpError::frame_error("cannot decode content header"));
    }
    let p = &buf[FRAME_HEADER_SIZE..];
    let class_id = u16::from_be_bytes([p[0], p[1]]);
    let body_size = u64::from_be_bytes([p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11]]);
    buf.advance(FRAME_HEADER_SIZE + PROPERTIES_OFFSET);
    let raw = buf.split_to(size - PROPERTIES_OFFSET).freeze();
    buf.advance(1);
    // Only basic (60) has content clients may send; any other class is refused by the channel
    // (505, as RabbitMQ) whatever its property bytes hold, so they are not parsed.
    let properties = if class_id == 60 {
        Properties::parse(raw)?
    } else {
        Properties::default()
    };
    Ok(Frame::Header {
        channel,
        class_id,
        body_size,
        properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;
    use amq_protocol::protocol::basic;

    fn publish_frames() -> BytesMut {
        let mut out = BytesMut::new();
        let publish = AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: "ex".into(),
            routing_key: "rk".into(),
            mandatory: false,
            immediate: false,
        }));
        encode::method(&mut out, 1, &publish);
        let props = amq_protocol::protocol::BasicProperties::default().with_delivery_mode(2);
        let raw = encode::properties(&props);
        encode::content(&mut out, 1, &raw, b"hello world", 131072);
        out
    }

    #[test]
    fn decodes_publish_header_and_body_in_order() {
        let mut buf = publish_frames();
        let Some(Frame::Publish {
            channel: 1,
            publish,
        }) = decode_frame(&mut buf, 131072).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (publish.exchange.as_str(), publish.routing_key.as_str()),
            ("ex", "rk")
        );
        let Some(Frame::Header {
            body_size: 11,
            properties,
            ..
        }) = decode_frame(&mut buf, 131072).unwrap()
        else {
            panic!()
        };
        assert_eq!(properties.delivery_mode(), Some(2));
        let Some(Frame::Body { payload, .. }) = decode_frame(&mut buf, 131072).unwrap() else {
            panic!()
        };
        assert_eq!(&payload[..], b"hello world");
        assert!(buf.is_empty());
        assert_eq!(decode_frame(&mut buf, 131072).unwrap(), None);
    }

    #[test]
    fn every_prefix_waits_for_more_bytes() {
        let full = publish_frames();
        let first_len = 7 + u32::from_be_bytes([full[3], full[4], full[5], full[6]]) as usize + 1;
        for cut in 0..first_len {
            let mut buf = BytesMut::from(&full[..cut]);
            assert_eq!(
                decode_frame(&mut buf, 131072).unwrap(),
                None,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn oversized_frame_is_rejected_from_the_header_alone() {
        let mut buf = BytesMut::from(&[3u8, 0, 1, 0x10, 0, 0, 0][..]);
        let err = decode_frame(&mut buf, 131072).unwrap_err();
        assert_eq!(err.code, crate::reply::FRAME_ERROR);
    }

    #[test]
    fn heartbeat_on_a_channel_is_unexpected() {
        let mut buf = BytesMut::from(&[8u8, 0, 1, 0, 0, 0, 0, 0xCE][..]);
        assert_eq!(
            decode_frame(&mut buf, 0).unwrap_err().code,
            crate::reply::UNEXPECTED_FRAME
        );
    }

    #[test]
    fn bad_frame_end_and_unknown_type_are_frame_errors() {
        let mut buf = BytesMut::from(&[8u8, 0, 0, 0, 0, 0, 0, 0xAB][..]);
        assert_eq!(
            decode_frame(&mut buf, 0).unwrap_err().code,
            crate::reply::FRAME_ERROR
        );
        let mut buf = BytesMut::from(&[9u8, 0, 0, 0, 0, 0, 0, 0xCE][..]);
        assert_eq!(
            decode_frame(&mut buf, 0).unwrap_err().code,
            crate::reply::FRAME_ERROR
        );
    }

    #[test]
    fn garbage_method_arguments_are_a_frame_error() {
        // queue.declare (50, 10) with a short-string length running past the payload.
        let mut buf = BytesMut::from(&[1u8, 0, 1, 0, 0, 0, 7, 0, 50, 0, 10, 0, 0, 200, 0xCE][..]);
        assert_eq!(
            decode_frame(&mut buf, 0).unwrap_err().code,
            crate::reply::FRAME_ERROR
        );
    }

    #[test]
    fn protocol_header_check() {
        assert_eq!(check_protocol_header(b"AMQ"), ProtocolHeader::Incomplete);
        assert_eq!(
            check_protocol_header(b"AMQP\x00\x00\x09\x01"),
            ProtocolHeader::Accepted
        );
        assert_eq!(
            check_protocol_header(b"AMQP\x00\x00\x09\x00"),
            ProtocolHeader::Rejected
        );
        assert_eq!(
            check_protocol_header(b"GET / HTTP/1.1"),
            ProtocolHeader::Rejected
        );
    }
}
