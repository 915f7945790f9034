//! Handing a routed message to its queues: storing it once when it is persistent and reaches
//! a durable queue (or reaches a quorum queue, whatever its delivery mode), then enqueueing the
//! one shared `Arc<Message>` in each; a stream appends it to its log. Used for client publishes
//! and for dead-lettered messages alike.

use std::sync::Arc;

use bytes::Bytes;
use warren_protocol::{Properties, ShortStr};

use crate::broker::message::Message;
use crate::broker::queue::Queue;
use crate::broker::queue::dead_letter::CascadeScope;
use crate::broker::replication::CommitWait;
use crate::store::{MessageRecord, Store};

/// What enqueueing a message did.
pub struct Enqueued {
    /// The message went to the store (see [`Queue::must_store`]).
    pub stored: bool,
    /// No queue refused it (x-overflow reject-publish).
    pub accepted: bool,
    /// The replicated commits of the quorum queues it went to, on a cluster node.
    pub replicated: Vec<Arc<CommitWait>>,
}

/// Enqueues a message in `queues` (drained), storing it first if it must survive a restart.
pub fn enqueue(
    store: Option<&Arc<Store>>,
    exchange: Arc<str>,
    routing_key: ShortStr,
    properties: Properties,
    body: Bytes,
    queues: &mut Vec<Arc<Queue>>,
) -> Enqueued {
    let (message, stored, pin) =
        stored_message(store, exchange, routing_key, properties, body, queues);
    let mut accepted = true;
    let mut replicated = Vec::new();
    // Full queues dead-letter while the message is enqueued: one cascade for the whole
    // publish, drained once every queue has it.
    let cascade = CascadeScope::begin();
    for queue in queues.drain(..) {
        match queue.replica() {
            Some(replica) => replicated.push(replica.enqueue(&message)),
            None => accepted &= queue.publish(message.clone()),
        }
    }
    drop(pin);
    cascade.drain();
    Enqueued {
        stored,
        accepted,
        replicated,
    }
}

/// The one `Arc<Message>` a routed message becomes, written to the store first when one of
/// `queues` must keep it: a persistent message reaching a durable queue, any message reaching
/// a quorum queue, stored once whatever the fan-out. Also says whether its publisher must wait
/// for a store commit (that write, or a stream's append, which the stream sends itself under
/// its lock), and holds the record pinned while it goes to more than one storing queue: the
/// caller drops the pin once every queue has it.
pub fn stored_message(
    store: Option<&Arc<Store>>,
    exchange: Arc<str>,
    routing_key: ShortStr,
    properties: Properties,
    body: Bytes,
    queues: &[Arc<Queue>],
) -> (Arc<Message>, bool, RoutingPin) {
    let persistent = properties.delivery_mode() == Some(2);
    let streamed = store.is_some()
        && queues
            .iter()
            .any(|q| q.is_stream() && q.persistence.is_some());
    let storing = queues.iter().filter(|q| q.must_store(persistent)).count();
    let store = store.filter(|_| storing > 0);
    let mut pin = RoutingPin(None);
    let store_id = store.map(|store| {
        let id = store.next_message_id();
        let record = MessageRecord {
            exchange: exchange.clone(),
            routing_key: routing_key.clone(),
            properties: properties.raw().clone(),
            body: body.clone(),
        };
        store.put_message(id, record);
        if storing > 1 {
            store.pin(id);
            pin = RoutingPin(Some((store.clone(), id)));
        }
        id
    });
    let message = Arc::new(Message {
        exchange,
        routing_key,
        properties,
        body,
        store_id,
    });
    (message, store_id.is_some() || streamed, pin)
}

/// Keeps a message's record stored while its publisher enqueues it in several queues (see
/// [`Store::pin`]); dropping it lets the record go with its last queue entry.
#[must_use = "the record stays pinned until this is dropped, after the last queue has it"]
pub struct RoutingPin(Option<(Arc<Store>, u64)>);

impl Drop for RoutingPin {
    fn drop(&mut self) {
        if let Some((store, id)) = self.0.take() {
            store.unpin(id);
        }
    }
}
