//! Content assembly: basic.publish + content header + body frames → one message.
//!
//! A channel feeds frames in arrival order; the assembler enforces the order the spec demands
//! (a header right after the method, then exactly `body_size` bytes of body) and answers any
//! other sequence with RabbitMQ's 505 UNEXPECTED_FRAME texts. A body that arrives in one frame is
//! kept as that frame's `Bytes` (zero copy); a multi-frame body is copied once, into a buffer of
//! exactly its size, when its last frame arrives (until then its frames are kept as they came,
//! small ones gathered, so a body sent in tiny frames costs no more than its bytes).

use bytes::{Bytes, BytesMut};

use crate::properties::Properties;
use crate::reply::AmqpError;

/// A complete message as published.
#[derive(Debug)]
pub struct Content<M> {
    pub method: M,
    pub properties: Properties,
    pub body: Bytes,
}

enum State<M> {
    Idle,
    AwaitingHeader(M),
    AwaitingBody {
        content: Content<M>,
        size: u64,
        body: PartialBody,
    },
}

/// Per-channel assembly state for content-bearing methods (basic.publish from clients).
pub struct ContentAssembler<M> {
    state: State<M>,
}

impl<M> Default for ContentAssembler<M> {
    fn default() -> Self {
        ContentAssembler { state: State::Idle }
    }
}

/// Body frames at least this big are kept as they came; smaller ones are gathered into one
/// buffer (so each kept piece is big enough that keeping it costs little beside its bytes).
const KEPT_FRAME_MIN: usize = 4096;
/// A gathering buffer is kept as a piece once it holds this much.
const GATHER_MAX: usize = 64 * 1024;

/// The frames of a body received so far. Nothing is reserved from what a header claims: what
/// is held is what arrived.
#[derive(Default)]
struct PartialBody {
    pieces: Vec<Bytes>,
    gathering: BytesMut,
    received: usize,
}

impl PartialBody {
    fn push(&mut self, payload: Bytes) {
        self.received += payload.len();
        if payload.len() >= KEPT_FRAME_MIN {
            self.keep_gathered();
            self.pieces.push(payload);
        } else {
            self.gathering.extend_from_slice(&payload);
            if self.gathering.len() >= GATHER_MAX {
                self.keep_gathered();
            }
        }
    }

    fn keep_gathered(&mut self) {
        if !self.gathering.is_empty() {
            self.pieces.push(self.gathering.split().freeze());
        }
    }

    /// The whole body: the one piece as it is, or every piece copied into one buffer.
    fn finish(mut self) -> Bytes {
        self.keep_gathered();
        if self.pieces.len() == 1 {
            return self.pieces.pop().unwrap_or_default();
        }
        let mut body = BytesMut::with_capacity(self.received);
        for piece in &self.pieces {
            body.extend_from_slice(piece);
        }
        body.freeze()
    }
}

impl<M> ContentAssembler<M> {
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// The error for a method frame that arrives while content is expected.
    pub fn check_method_allowed(&self) -> Result<(), AmqpError> {
        match self.state {
            State::Idle => Ok(()),
            State::AwaitingHeader(_) => Err(AmqpError::unexpected_frame(
                "expected content header for class 60, got non content header frame instead",
            )),
            State::AwaitingBody { .. } => Err(AmqpError::unexpected_frame(
                "expected content body, got non content body frame instead",
            )),
        }
    }

    /// Starts a content-bearing method; its header must come next.
    pub fn start(&mut self, method: M) {
        self.state = State::AwaitingHeader(method);
    }

    /// Drops any partial content (channel closing).
    pub fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// Takes a content header. Returns the finished message at once for an empty body.
    pub fn header(
        &mut self,
        class_id: u16,
        body_size: u64,
        properties: Properties,
    ) -> Result<Option<Content<M>>, AmqpError> {
        let method = match std::mem::replace(&mut self.state, State::Idle) {
            State::AwaitingHeader(method) => method,
            State::Idle => {
                return Err(AmqpError::unexpected_frame(
                    "expected method frame, got non method frame instead",
                ));
            }
            other @ State::AwaitingBody { .. } => {
                self.state = other;
                return Err(AmqpError::unexpected_frame(
                    "expected content body, got non content body frame instead",
                ));
            }
        };
        if class_id != 60 {
            return Err(AmqpError::unexpected_frame(format_args!(
                "expected content header for class 60, got one for class {class_id} instead"
            )));
        }
        let content = Content {
            method,
            properties,
            body: Bytes::new(),
        };
        if body_size == 0 {
            return Ok(Some(content));
        }
        self.state = State::AwaitingBody {
            content,
            size: body_size,
            body: PartialBody::default(),
        };
        Ok(None)
    }

    /// Takes a body frame. Returns the finished message once `body_size` bytes have arrived.
    pub fn body(&mut self, payload: Bytes) -> Result<Option<Content<M>>, AmqpError> {
        let State::AwaitingBody { size, body, .. } = &mut self.state else {
            return Err(match self.state {
                State::AwaitingHeader(_) => AmqpError::unexpected_frame(
                    "expected content header for class 60, got non content header frame instead",
                ),
                _ => AmqpError::unexpected_frame(
                    "expected method frame, got non method frame instead",
                ),
            });
        };
        let received = body.received as u64 + payload.len() as u64;
        if received > *size {
            return Err(AmqpError::frame_error(format_args!(
                "content body exceeds declared size {size}"
            )));
        }
        let complete = received == *size;
        if complete && body.received == 0 {
            // The common case: the whole body in one frame, kept as a slice of the read buffer.
            return Ok(self.finish(payload));
        }
        body.push(payload);
        if complete {
            let body = std::mem::take(body).finish();
            return Ok(self.finish(body));
        }
        Ok(None)
    }

    fn finish(&mut self, body: Bytes) -> Option<Content<M>> {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::AwaitingBody { mut content, .. } => {
                content.body = body;
                Some(content)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(a: &mut ContentAssembler<u8>, size: u64) -> Result<Option<Content<u8>>, AmqpError> {
        a.header(60, size, Properties::default())
    }

    #[test]
    fn single_frame_body_is_not_copied() {
        let mut a = ContentAssembler::default();
        a.start(1u8);
        assert!(header(&mut a, 5).unwrap().is_none());
        let payload = Bytes::from_static(b"hello");
        let done = a.body(payload.clone()).unwrap().unwrap();
        assert_eq!(done.body.as_ptr(), payload.as_ptr());
        assert!(a.is_idle());
    }

    #[test]
    fn multi_frame_body_is_concatenated() {
        let mut a = ContentAssembler::default();
        a.start(1u8);
        header(&mut a, 6).unwrap();
        assert!(a.body(Bytes::from_static(b"abc")).unwrap().is_none());
        assert_eq!(
            &a.body(Bytes::from_static(b"def")).unwrap().unwrap().body[..],
            b"abcdef"
        );
    }

    #[test]
    fn a_body_in_many_frames_is_copied_once_into_a_buffer_of_its_size() {
        let mut a = ContentAssembler::default();
        a.start(1u8);
        let frames: Vec<Bytes> = (0..4u8)
            .map(|i| Bytes::from(vec![i; 128 * 1024]))
            .chain([Bytes::from_static(b"tail")])
            .collect();
        let size: usize = frames.iter().map(Bytes::len).sum();
        header(&mut a, size as u64).unwrap();
        let mut done = None;
        for frame in &frames {
            done = a.body(frame.clone()).unwrap();
        }
        let body = done.expect("complete").body;
        assert_eq!(body.len(), size);
        assert_eq!(&body[..], &frames.concat()[..]);
        // Nothing kept a second allocation: the buffer is exactly the body.
        assert_eq!(BytesMut::from(body).capacity(), size);
    }

    #[test]
    fn tiny_frames_are_gathered_not_kept_one_by_one() {
        let mut body = PartialBody::default();
        for _ in 0..100_000 {
            body.push(Bytes::from_static(b"x"));
        }
        // 100,000 one-byte frames: a handful of gathered pieces, not 100,000 handles.
        assert!(body.pieces.len() <= 2, "{} pieces", body.pieces.len());
        assert_eq!(body.finish().len(), 100_000);
    }

    #[test]
    fn empty_body_completes_at_header() {
        let mut a = ContentAssembler::default();
        a.start(1u8);
        assert!(header(&mut a, 0).unwrap().is_some());
    }

    #[test]
    fn out_of_order_frames_are_unexpected() {
        let mut a: ContentAssembler<u8> = ContentAssembler::default();
        assert_eq!(a.body(Bytes::from_static(b"x")).unwrap_err().code, 505);
        assert_eq!(header(&mut a, 1).unwrap_err().code, 505);
        a.start(1);
        assert_eq!(a.check_method_allowed().unwrap_err().code, 505);
        header(&mut a, 1).unwrap();
        assert_eq!(a.body(Bytes::from_static(b"xy")).unwrap_err().code, 501);
    }

    #[test]
    fn header_of_another_class_is_unexpected() {
        let mut a = ContentAssembler::default();
        a.start(1u8);
        let e = a.header(50, 1, Properties::default()).unwrap_err();
        assert_eq!(e.code, 505);
        assert_eq!(
            e.text,
            "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead"
        );
    }
}
