//! A consumer as a queue sees it, and the interface through which the queue hands it messages.
//!
//! The queue never touches sockets: it calls [`DeliveryTarget::try_deliver`] on the consumer's
//! channel, which assigns the delivery tag, records the unacked message and writes the frames.
//! The per-consumer prefetch count lives here because only the queue that owns the consumer
//! changes it (under the queue's lock) or the ack path that settles it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::broker::message::QueuedMessage;
use crate::broker::queue::Queue;

/// What a channel offers to the queues its consumers are attached to.
pub trait DeliveryTarget: Send + Sync {
    /// Delivers `message` to `consumer` if the channel can take it now (flow on, channel-wide
    /// prefetch not exhausted, write buffer not over its limit); otherwise hands it back.
    fn try_deliver(
        &self,
        consumer: &Arc<Consumer>,
        queue: &Arc<Queue>,
        message: QueuedMessage,
    ) -> Result<(), QueuedMessage>;
    /// The queue is gone: tell the client its consumer was cancelled (if it asked to be told).
    fn cancelled_by_broker(&self, consumer_tag: &str);
}

pub struct Consumer {
    pub tag: String,
    pub no_ack: bool,
    pub exclusive: bool,
    /// Per-consumer prefetch (basic.qos global=false at consume time); 0 = unlimited.
    pub prefetch: u32,
    /// `x-priority` on basic.consume: higher-priority consumers are offered messages first.
    pub priority: i32,
    unacked: AtomicU32,
    /// Its basic.consume-ok is on its way: it may get deliveries (which must follow the ok).
    announced: AtomicBool,
    /// Out of its queue's rotation until something frees its credit: 0 if not, else when it
    /// was parked, in its queue's count (consumers.rs owns this, under the queue's lock).
    pub(crate) parked: AtomicU64,
    pub connection_id: u64,
    pub channel: Arc<dyn DeliveryTarget>,
}

impl Consumer {
    pub fn new(
        tag: String,
        no_ack: bool,
        exclusive: bool,
        prefetch: u32,
        priority: i32,
        connection_id: u64,
        channel: Arc<dyn DeliveryTarget>,
    ) -> Self {
        Consumer {
            tag,
            no_ack,
            exclusive,
            prefetch,
            priority,
            unacked: AtomicU32::new(0),
            announced: AtomicBool::new(true),
            parked: AtomicU64::new(0),
            connection_id,
            channel,
        }
    }

    /// A consumer that gets nothing until [`Consumer::announce`]: its queue may offer it a
    /// message (another connection's ack, a publish) between joining the queue and its
    /// basic.consume-ok being written, and a basic.deliver must not come before that ok.
    pub fn unannounced(self) -> Self {
        self.announced.store(false, Ordering::Relaxed);
        self
    }

    /// Its basic.consume-ok is written: deliveries may follow (the caller dispatches again).
    pub fn announce(&self) {
        self.announced.store(true, Ordering::Release);
    }

    /// Whether the prefetch window allows one more delivery (and the consumer is announced).
    pub fn has_credit(&self) -> bool {
        self.announced.load(Ordering::Acquire)
            && (self.no_ack
                || self.prefetch == 0
                || self.unacked.load(Ordering::Relaxed) < self.prefetch)
    }

    pub fn record_delivery(&self) {
        if !self.no_ack {
            self.unacked.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `count` of this consumer's deliveries were acked, rejected or requeued.
    pub fn settle(&self, count: u32) {
        // Saturating: a settle can never make the window larger than the prefetch.
        let _ = self
            .unacked
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(count))
            });
    }
}

/// The broker-wide consumer acknowledgement timeout in ms (0 = off), set once from the config;
/// a queue's `x-consumer-timeout` overrides it.
static DEFAULT_TIMEOUT_MS: AtomicU64 = AtomicU64::new(30 * 60 * 1000);

pub fn set_default_timeout(ms: u64) {
    DEFAULT_TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

pub fn default_timeout() -> Option<u64> {
    Some(DEFAULT_TIMEOUT_MS.load(Ordering::Relaxed)).filter(|ms| *ms > 0)
}

/// A channel consuming `amq.rabbitmq.reply-to` (direct reply-to): replies skip queues.
pub trait ReplyTarget: Send + Sync {
    fn deliver_reply(&self, message: &crate::broker::message::Message);
}
