//! RabbitMQ's churn counters: connections, channels and queues created and gone since the
//! node started (the management API's `churn_rates` and node figures). Bumped where those
//! things happen, which is never per message.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Churn {
    pub connection_created: AtomicU64,
    pub connection_closed: AtomicU64,
    pub channel_created: AtomicU64,
    pub channel_closed: AtomicU64,
    /// Every successful queue.declare (new or existing queue), as RabbitMQ counts them.
    pub queue_declared: AtomicU64,
    pub queue_created: AtomicU64,
    pub queue_deleted: AtomicU64,
}

impl Churn {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Every counter with RabbitMQ's name.
    pub fn figures(&self) -> [(&'static str, u64); 7] {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("channel_closed", get(&self.channel_closed)),
            ("channel_created", get(&self.channel_created)),
            ("connection_closed", get(&self.connection_closed)),
            ("connection_created", get(&self.connection_created)),
            ("queue_created", get(&self.queue_created)),
            ("queue_declared", get(&self.queue_declared)),
            ("queue_deleted", get(&self.queue_deleted)),
        ]
    }
}
