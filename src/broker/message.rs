//! A published message as the broker holds it: routing facts, properties and body.
//!
//! One `Arc<Message>` is shared by every queue the message is routed to (zero-copy fan-out); the
//! body, the routing key and the properties are `Bytes` slices of the publisher's read buffer.
//! Deliveries forward the properties' raw bytes unchanged.

use std::sync::Arc;

use amq_protocol::types::FieldTable;
use bytes::Bytes;
use warren_protocol::{Properties, ShortStr};

#[derive(Debug)]
pub struct Message {
    pub exchange: Arc<str>,
    pub routing_key: ShortStr,
    pub properties: Properties,
    pub body: Bytes,
    /// Set when the message is stored (see `Queue::must_store`).
    pub store_id: Option<u64>,
}

impl Message {
    /// The `expiration` property as milliseconds, if it is a valid one.
    pub fn expiration_ms(&self) -> Option<u64> {
        self.properties.expiration()?.parse().ok()
    }

    /// The same message with its body and properties in buffers of their own. A published
    /// message's body and properties are slices of its connection's 64 kB read buffers, which
    /// stay alive while any slice does: a message kept long while its neighbours are gone (a
    /// delayed message in the window) would otherwise pin ~60 times its size. Costs one copy,
    /// so only for messages that are held apart from the ones published with them.
    pub fn detached(&self) -> Message {
        Message {
            exchange: self.exchange.clone(),
            routing_key: self.routing_key.clone(),
            properties: self.properties.detached(),
            body: Bytes::copy_from_slice(&self.body),
            store_id: self.store_id,
        }
    }

    /// delivery-mode 2.
    pub fn is_persistent(&self) -> bool {
        self.properties.delivery_mode() == Some(2)
    }
}

/// A message's place in one queue.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// Position in the queue's FIFO order; requeued messages go back in this order.
    pub seq: u64,
    pub message: Arc<Message>,
    pub redelivered: bool,
    /// When this message expires in this queue ([`crate::broker::clock::now_ms`]); 0 = never.
    pub expires_at: u64,
    /// How often this message came back to a quorum queue (see queue/quorum_returns.rs).
    pub delivery_count: u32,
}

impl QueuedMessage {
    pub fn new(seq: u64, message: Arc<Message>, redelivered: bool) -> Self {
        QueuedMessage {
            seq,
            message,
            redelivered,
            expires_at: 0,
            delivery_count: 0,
        }
    }

    /// Expired strictly before `now`: a TTL-0 message can still go to a consumer waiting now.
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at != 0 && self.expires_at < now
    }
}

/// The `headers` property, parsed at most once per routing and only if an exchange asks for it
/// (parsing a field table allocates; most messages never meet a headers exchange).
pub struct LazyHeaders<'a> {
    properties: &'a Properties,
    parsed: Option<Option<FieldTable>>,
}

impl<'a> LazyHeaders<'a> {
    pub fn new(properties: &'a Properties) -> Self {
        LazyHeaders {
            properties,
            parsed: None,
        }
    }

    pub fn get(&mut self) -> Option<&FieldTable> {
        let properties = self.properties;
        self.parsed
            .get_or_insert_with(|| properties.headers())
            .as_ref()
    }
}
