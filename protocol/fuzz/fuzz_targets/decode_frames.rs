//! Input layout: [frame_max: 4 bytes BE][chunk: 1 byte][stream...].
//! `stream` is checked with `check_protocol_header` (and skipped past when accepted), then decoded
//! frame by frame, once from a single buffer and once appended `chunk` bytes at a time; both must
//! give the same frames and the same final error. Decoded frames drive per-channel
//! `ContentAssembler`s the way a connection would.
#![no_main]

use std::collections::HashMap;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

use warren_protocol::codec::{ProtocolHeader, check_protocol_header, decode_frame};
use warren_protocol::content::ContentAssembler;
use warren_protocol::{AmqpError, Frame, PROTOCOL_HEADER, Publish};

/// Every result until the first error or Ok(None), from one buffer.
fn decode_all(stream: &[u8], frame_max: u32) -> Vec<Result<Frame, AmqpError>> {
    let mut buf = BytesMut::from(stream);
    let mut out = Vec::new();
    loop {
        let before = buf.len();
        match decode_frame(&mut buf, frame_max) {
            Ok(Some(f)) => {
                assert!(before - buf.len() >= 8, "a frame consumed fewer than 8 bytes");
                out.push(Ok(f));
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) consumed input");
                return out;
            }
            Err(e) => {
                assert!(matches!(e.code, 501 | 502 | 503 | 505 | 540), "unexpected code {e}");
                out.push(Err(e));
                return out;
            }
        }
    }
}

/// The same, with the input arriving `chunk` bytes at a time.
fn decode_chunked(stream: &[u8], frame_max: u32, chunk: usize) -> Vec<Result<Frame, AmqpError>> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decode_frame(&mut buf, frame_max) {
                Ok(Some(f)) => out.push(Ok(f)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    out
}

fn assemble(frames: &[Result<Frame, AmqpError>]) {
    let mut channels: HashMap<u16, (ContentAssembler<Publish>, u64)> = HashMap::new();
    for frame in frames.iter().filter_map(|r| r.as_ref().ok()) {
        let (a, declared) = channels.entry(frame.channel()).or_default();
        let result = match frame {
            Frame::Method { .. } => a.check_method_allowed().map(|()| None),
            Frame::Publish { publish, .. } => a.check_method_allowed().map(|()| {
                a.start(publish.clone());
                None
            }),
            Frame::Header { class_id, body_size, properties, .. } => {
                *declared = *body_size;
                a.header(*class_id, *body_size, properties.clone())
            }
            Frame::Body { payload, .. } => a.body(payload.clone()),
            Frame::Heartbeat { .. } => Ok(None),
        };
        match result {
            Ok(Some(content)) => {
                assert_eq!(content.body.len() as u64, *declared, "body length differs from header");
                assert!(a.is_idle());
            }
            Ok(None) => {}
            Err(e) => {
                assert!(matches!(e.code, 501 | 505), "unexpected assembler code {e}");
                a.reset(); // the channel/connection would close
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    // frame_max 0 ("no limit") is left out: decode_frame then reserves whatever size a header
    // announces (up to 4 GiB), which is by design and would only report out-of-memory.
    let frame_max = match u32::from_be_bytes([data[0], data[1], data[2], data[3]]) % (1 << 20) {
        0 => 131_072,
        n => n,
    };
    let chunk = usize::from(data[4]).max(1);
    let mut stream = &data[5..];

    let header = check_protocol_header(stream);
    let n = stream.len().min(8);
    match header {
        ProtocolHeader::Accepted => {
            assert_eq!(&stream[..8], PROTOCOL_HEADER);
            stream = &stream[8..];
        }
        ProtocolHeader::Incomplete => assert!(n < 8 && stream[..n] == PROTOCOL_HEADER[..n]),
        // A broker would answer with its header and close; keep going to fuzz the frame decoder.
        ProtocolHeader::Rejected => assert_ne!(stream[..n], PROTOCOL_HEADER[..n]),
    }

    let whole = decode_all(stream, frame_max);
    let chunked = decode_chunked(stream, frame_max, chunk);
    // Debug strings, not ==: a NaN float in a decoded table is not equal to itself.
    assert_eq!(format!("{whole:?}"), format!("{chunked:?}"), "chunked decoding differs");
    assemble(&whole);
});
