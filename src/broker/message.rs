//! A published message as the broker holds it: routing facts, properties and body.
//!
//! One `Arc<Message>` is shared by every queue the message is routed to (zero-copy fan-out); the
//! body is a `Bytes` slice of the publisher's read buffer. `raw_properties` are the publisher's
//! property bytes, forwarded unchanged on delivery; `properties` is the parsed view the broker
//! consults (headers for routing, user-id, …).

use std::sync::Arc;

use amq_protocol::protocol::BasicProperties;
use bytes::Bytes;

#[derive(Debug)]
pub struct Message {
    pub exchange: Arc<str>,
    pub routing_key: String,
    pub properties: Box<BasicProperties>,
    pub raw_properties: Bytes,
    pub body: Bytes,
}

impl Message {
    pub fn headers(&self) -> Option<&amq_protocol::types::FieldTable> {
        self.properties.headers().as_ref()
    }
}

/// A message's place in one queue.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// Position in the queue's FIFO order; requeued messages go back in this order.
    pub seq: u64,
    pub message: Arc<Message>,
    pub redelivered: bool,
}
