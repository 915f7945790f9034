//! Headers the broker adds to what it delivers: a quorum queue's `x-delivery-count` (written
//! per delivery: it changes as the message comes back) and a stream's `x-stream-offset`
//! (written once, when the entry is appended: every consumer of the entry sees the same one,
//! and the store keeps it stamped). RabbitMQ appends both at the end of the message's headers.

use std::borrow::Cow;
use std::sync::Arc;

use warren_protocol::Properties;
use warren_protocol::field_table::Writer;

use super::queue::Queue;
use crate::broker::message::{Message, QueuedMessage};
use crate::broker::sender_selected::header_entries;

impl Queue {
    /// The header a delivery of `message` gets added to its properties: a quorum queue's
    /// `x-delivery-count`. The channel writes it straight into the frame
    /// (`Properties::write_with_header`), falling back to [`Queue::delivered_properties`].
    pub fn delivery_header(&self, message: &QueuedMessage) -> Option<(&'static [u8], i64)> {
        self.is_quorum()
            .then(|| (&b"x-delivery-count"[..], i64::from(message.delivery_count)))
    }

    /// The properties a delivery of `message` carries: a quorum queue's with `x-delivery-count`
    /// set; a classic queue's and a stream's as they are held (a stream's entries carry their
    /// `x-stream-offset` from the append on: [`stamp_offset`]).
    pub fn delivered_properties<'a>(&self, message: &'a QueuedMessage) -> Cow<'a, Properties> {
        let properties = &message.message.properties;
        if !self.is_quorum() {
            return Cow::Borrowed(properties);
        }
        match with_header(
            properties,
            b"x-delivery-count",
            i64::from(message.delivery_count),
        ) {
            Some(counted) => Cow::Owned(counted),
            None => Cow::Borrowed(properties),
        }
    }
}

/// `message` as a stream holds it at `offset`: with `x-stream-offset` in its headers (the body
/// is shared, not copied). A message whose headers do not parse is kept as it is.
pub(super) fn stamp_offset(message: &Arc<Message>, offset: u64) -> Arc<Message> {
    match with_header(&message.properties, b"x-stream-offset", offset as i64) {
        Some(properties) => Arc::new(Message {
            exchange: message.exchange.clone(),
            routing_key: message.routing_key.clone(),
            properties,
            body: message.body.clone(),
            store_id: None,
        }),
        None => message.clone(),
    }
}

/// `properties` with header `key` = `value` (a long-long; replacing one it had).
fn with_header(properties: &Properties, key: &[u8], value: i64) -> Option<Properties> {
    let headers = header_entries(properties);
    let mut w = Writer::new();
    let table = w.begin_table();
    w.entries_where(&headers, |k| k != key);
    w.key(key).long_long(value);
    w.end(table)?;
    properties.with_headers(&w.out, &[])
}
