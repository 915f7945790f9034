//! Messages counted as RabbitMQ counts them for a channel's and a queue's `message_stats`
//! (publish, confirm, unroutable returned or dropped, deliver with and without ack, get with
//! and without ack, get-empty, redeliver, ack) and for Prometheus' `rabbitmq_global_messages_*`
//! (which adds routed).
//!
//! Each channel counts its own ([`MessageCounts`] in `server/channel/shared.rs`), and so does
//! each queue (`broker/queue/queue.rs`). Every counter has one writer at a time: the channel's
//! task, or whoever holds the lock that serializes the event (the channel's delivery lock for
//! deliveries, its confirm lock for confirms, the queue's lock for a queue's counts). So a count
//! is a relaxed load and store ([`MessageCounts::bump`]), not a locked read-modify-write, and
//! readers (the management API, a scrape) load without taking any lock. A closing channel's
//! counts are folded into its connection's, and a closing connection's into the broker's
//! (connections.rs), under the locks readers of the totals take, so totals only grow.

use std::sync::atomic::{AtomicU64, Ordering};

/// Declares the counters once: the atomic [`MessageCounts`], the plain [`MessageFigures`] read
/// from them, and what goes between the two.
macro_rules! message_counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Message counters of one channel or queue, updated as messages pass.
        #[derive(Debug, Default)]
        pub struct MessageCounts {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        /// The counters at one moment.
        #[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
        pub struct MessageFigures {
            $($(#[$doc])* pub $name: u64,)*
        }

        impl MessageCounts {
            pub fn figures(&self) -> MessageFigures {
                MessageFigures {
                    $($name: self.$name.load(Ordering::Relaxed),)*
                }
            }

            /// Adds `figures` to these counts (a closing channel folded into its connection).
            /// Unlike [`MessageCounts::bump`], safe with other writers.
            pub fn absorb(&self, figures: &MessageFigures) {
                $(self.$name.fetch_add(figures.$name, Ordering::Relaxed);)*
            }
        }

        impl MessageFigures {
            pub fn add(&mut self, other: &MessageFigures) {
                $(self.$name += other.$name;)*
            }

            /// A counter by RabbitMQ's name (`deliver_get` is the sum of the four ways a
            /// message leaves for a client); 0 for a name that is not one.
            pub fn get(&self, name: &str) -> u64 {
                match name {
                    $(stringify!($name) => self.$name,)*
                    "deliver_get" => self.deliver_get(),
                    _ => 0,
                }
            }
        }
    };
}

message_counters! {
    /// Messages published (that passed the broker's checks); for a queue, enqueued.
    publish,
    /// Messages routed to at least one queue.
    routed,
    /// Unroutable messages dropped (not mandatory).
    drop_unroutable,
    /// Unroutable mandatory messages returned with basic.return.
    return_unroutable,
    /// Publishes confirmed with basic.ack.
    confirm,
    /// Deliveries to consumers that acknowledge.
    deliver,
    /// Deliveries to no-ack consumers.
    deliver_no_ack,
    /// basic.get answered with a message, to be acknowledged.
    get,
    /// basic.get answered with a message, no-ack.
    get_no_ack,
    /// basic.get answered get-empty.
    get_empty,
    /// Deliveries and gets of messages marked redelivered.
    redeliver,
    /// Messages acknowledged.
    ack,
}

impl MessageCounts {
    /// Adds `n` to a counter whose writers are serialized (one task, or one lock): a load and a
    /// store, no locked instruction.
    pub fn bump(counter: &AtomicU64, n: u64) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Counts a message handed to a client: by a consumer or a get, with or without ack.
    pub fn bump_delivery(&self, get: bool, no_ack: bool, redelivered: bool) {
        let counter = match (get, no_ack) {
            (false, false) => &self.deliver,
            (false, true) => &self.deliver_no_ack,
            (true, false) => &self.get,
            (true, true) => &self.get_no_ack,
        };
        Self::bump(counter, 1);
        if redelivered {
            Self::bump(&self.redeliver, 1);
        }
    }
}

impl MessageFigures {
    /// Messages handed to clients, every way (RabbitMQ's `deliver_get`; get-empty is not one).
    pub fn deliver_get(&self) -> u64 {
        self.deliver + self.deliver_no_ack + self.get + self.get_no_ack
    }

    /// Whether anything was published (RabbitMQ shows the publishing counters from then on).
    pub fn published(&self) -> bool {
        self.publish > 0
    }

    /// Whether any message left, or a get found none (RabbitMQ shows the delivering counters
    /// from then on).
    pub fn delivered(&self) -> bool {
        self.deliver_get() + self.get_empty + self.redeliver + self.ack > 0
    }

    /// The counters Prometheus' `rabbitmq_global_messages_*_total` report, by its names.
    pub fn prometheus(&self) -> [(&'static str, u64); 13] {
        [
            ("received", self.publish),
            ("routed", self.routed),
            ("unroutable_dropped", self.drop_unroutable),
            ("unroutable_returned", self.return_unroutable),
            ("confirmed", self.confirm),
            ("delivered", self.deliver_get()),
            ("delivered_consume_manual_ack", self.deliver),
            ("delivered_consume_auto_ack", self.deliver_no_ack),
            ("delivered_get_manual_ack", self.get),
            ("delivered_get_auto_ack", self.get_no_ack),
            ("get_empty", self.get_empty),
            ("redelivered", self.redeliver),
            ("acknowledged", self.ack),
        ]
    }
}
