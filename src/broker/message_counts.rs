//! Messages counted as RabbitMQ's Prometheus plugin counts them (`rabbitmq_global_messages_*`):
//! received, routed, dropped or returned unroutable, confirmed, delivered, acknowledged.
//!
//! Each connection counts its own. What only the connection's task counts (received, routed,
//! unroutable, acknowledged) is a plain load and store ([`MessageCounts::add_own`]), not a
//! locked read-modify-write; what other threads count too (deliveries from publishers' tasks,
//! confirms from the store's writer thread) is an atomic add ([`MessageCounts::add`]).
//! Readers (a scrape) load them. The registry in connections.rs folds a closing connection's
//! counts into the broker's totals under the same lock a reader takes, so totals only grow.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct MessageCounts {
    pub received: AtomicU64,
    pub routed: AtomicU64,
    pub unroutable_dropped: AtomicU64,
    pub unroutable_returned: AtomicU64,
    pub confirmed: AtomicU64,
    pub delivered: AtomicU64,
    pub acknowledged: AtomicU64,
}

/// The counters at one moment, by RabbitMQ's names (without `rabbitmq_global_messages_`).
pub type MessageFigures = [(&'static str, u64); 7];

impl MessageCounts {
    /// Adds `n` to a counter several threads add to.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds `n` to a counter only the connection's own task writes.
    pub fn add_own(counter: &AtomicU64, n: u64) {
        counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
    }

    pub fn figures(&self) -> MessageFigures {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("received", get(&self.received)),
            ("routed", get(&self.routed)),
            ("unroutable_dropped", get(&self.unroutable_dropped)),
            ("unroutable_returned", get(&self.unroutable_returned)),
            ("confirmed", get(&self.confirmed)),
            ("delivered", get(&self.delivered)),
            ("acknowledged", get(&self.acknowledged)),
        ]
    }

    /// Adds `other`'s counts to these.
    pub fn absorb(&self, other: &MessageCounts) {
        let pairs = [
            (&self.received, &other.received),
            (&self.routed, &other.routed),
            (&self.unroutable_dropped, &other.unroutable_dropped),
            (&self.unroutable_returned, &other.unroutable_returned),
            (&self.confirmed, &other.confirmed),
            (&self.delivered, &other.delivered),
            (&self.acknowledged, &other.acknowledged),
        ];
        for (mine, theirs) in pairs {
            mine.fetch_add(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}
