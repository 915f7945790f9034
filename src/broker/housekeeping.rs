//! Housekeeping: expires messages at the head of queues at rest (message TTL must not wait for
//! a publish or a consumer) and deletes queues unused for longer than their `x-expires`.
//!
//! Driven by deadlines, not a periodic sweep: queues register when something of theirs falls
//! due (broker/deadlines.rs, queue/ttl.rs), and this task sleeps until the earliest. An idle
//! broker costs nothing here, however many queues it holds.

use std::sync::Arc;

use tokio::sync::watch;

use super::Broker;
use super::queue::Queue;

/// Runs housekeeping for `broker` until `shutdown` turns true.
pub async fn run(broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    broker
        .deadlines
        .run(shutdown, |queue, now| fire(&broker, &queue, now))
        .await;
}

/// `queue`'s deadline has come: expire its head, or delete it if x-expires ran out.
fn fire(broker: &Broker, queue: &Arc<Queue>, now: u64) {
    if !queue.expire_at_rest(now) {
        return;
    }
    tracing::debug!(queue = %queue.name, "x-expires: deleting unused queue");
    // Vhosts are never removed, so a queue's is always there.
    if let Some(vhost) = broker.vhost(&queue.vhost) {
        vhost.remove_queue(queue);
    }
}

#[cfg(test)]
#[path = "housekeeping_tests.rs"]
mod tests;
