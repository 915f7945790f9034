//! Periodic housekeeping: expires messages at the head of queues at rest (message TTL must not
//! wait for a publish or a consumer) and deletes queues unused for longer than their
//! `x-expires`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Broker;
use super::clock;

/// Runs housekeeping for `broker` until `shutdown` turns true.
pub async fn run(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = ticker.tick() => sweep(&broker),
        }
    }
}

/// One pass over every queue; cheap for queues without TTLs or expiry (atomic flags only).
pub fn sweep(broker: &Broker) {
    let now = clock::now_ms();
    for vhost in broker.vhosts() {
        for queue in vhost.queues() {
            queue.expire(now);
            if queue.is_expired(now) {
                tracing::debug!(queue = %queue.name, "x-expires: deleting unused queue");
                vhost.remove_queue(&queue);
            }
        }
    }
}
