//! Content assembly: basic.publish + content header + body frames → one message.
//!
//! A channel feeds frames in arrival order; the assembler enforces the order the spec demands
//! (a header right after the method, then exactly `body_size` bytes of body) and answers any
//! other sequence with RabbitMQ's 505 UNEXPECTED_FRAME texts. A body that arrives in one frame is
//! kept as that frame's `Bytes` (zero copy); only multi-frame bodies are concatenated.

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
        chunks: BytesMut,
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

/// Body sizes beyond this are accumulated in steps rather than reserved up front, so a header
/// that merely *claims* a huge body cannot make us allocate it.
const INITIAL_RESERVE_LIMIT: u64 = 1 << 20;
/// Nor may a tiny first body frame: what is reserved is at most this many times what arrived
/// (a client that sends full frames still gets its whole body reserved at once).
const RESERVE_PER_RECEIVED: u64 = 16;

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
            chunks: BytesMut::new(),
        };
        Ok(None)
    }

    /// Takes a body frame. Returns the finished message once `body_size` bytes have arrived.
    pub fn body(&mut self, payload: Bytes) -> Result<Option<Content<M>>, AmqpError> {
        let State::AwaitingBody { size, chunks, .. } = &mut self.state else {
            return Err(match self.state {
                State::AwaitingHeader(_) => AmqpError::unexpected_frame(
                    "expected content header for class 60, got non content header frame instead",
                ),
                _ => AmqpError::unexpected_frame(
                    "expected method frame, got non method frame instead",
                ),
            });
        };
        let received = chunks.len() as u64 + payload.len() as u64;
        if received > *size {
            return Err(AmqpError::frame_error(format_args!(
                "content body exceeds declared size {size}"
            )));
        }
        let complete = received == *size;
        if complete && chunks.is_empty() {
            // The common case: the whole body in one frame, kept as a slice of the read buffer.
            return Ok(self.finish(payload));
        }
        if chunks.is_empty() {
            let reserve = (*size)
                .min(INITIAL_RESERVE_LIMIT)
                .min(payload.len() as u64 * RESERVE_PER_RECEIVED);
            chunks.reserve(reserve as usize);
        }
        chunks.extend_from_slice(&payload);
        if complete {
            let body = std::mem::take(chunks).freeze();
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
