//! Time in a queue: message TTL (`x-message-ttl`, the `expiration` property, TTL 0), queue
//! expiry (`x-expires`) and the consumer acknowledgement timeout setting. Messages expire only
//! when they reach the head, as in RabbitMQ; housekeeping expires the head of queues at rest.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::dead_letter::Reason;
use super::queue::{Queue, QueueState};
use crate::broker::clock;
use crate::broker::message::{Message, QueuedMessage};

impl Queue {
    /// The lower of the queue's x-message-ttl and the message's expiration.
    pub(super) fn ttl_of(&self, message: &Message) -> Option<u64> {
        match (
            self.options.arguments.message_ttl_ms,
            message.expiration_ms(),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(super) fn publish_now_or_never(
        self: &Arc<Self>,
        st: &mut QueueState,
        queued: QueuedMessage,
    ) {
        if !st.ready.is_empty() || !st.backlog.is_empty() {
            // Others are waiting ahead of it: no consumer can take it now.
            self.drop_message(st, queued, Reason::Expired);
            return;
        }
        st.ready.push_back(queued);
        self.dispatch_locked(st);
        if let Some(left) = st.ready.pop_front() {
            self.drop_message(st, left, Reason::Expired);
        }
    }

    /// Drops expired messages from the head of the ready list (messages expire only when they
    /// reach the head, as in RabbitMQ). Returns how many went.
    pub(super) fn drop_expired_head(&self, st: &mut QueueState, now: u64) -> usize {
        let mut dropped = 0;
        while st.ready.front().is_some_and(|m| m.is_expired(now)) {
            if let Some(m) = st.ready.pop_front() {
                self.drop_message(st, m, Reason::Expired);
                dropped += 1;
            }
        }
        dropped
    }

    /// Housekeeping: expire the head at rest. True if the queue may hold expiring messages.
    pub fn expire(self: &Arc<Self>, now: u64) -> bool {
        if !self.may_expire.load(Ordering::Relaxed) {
            return false;
        }
        let mut st = self.state.lock();
        self.drop_expired_head(&mut st, now);
        if st.ready.is_empty() && st.backlog.is_empty() {
            self.may_expire.store(false, Ordering::Relaxed);
        }
        self.finish(st);
        true
    }

    /// How long a consumer may hold a delivery unacknowledged, in ms.
    pub fn consumer_timeout(&self) -> Option<u64> {
        self.consumer_timeout
    }

    /// Marks the queue used now (x-expires counts idle time from the last use).
    pub fn touch(&self) {
        self.last_used.store(clock::now_ms(), Ordering::Relaxed);
    }

    /// `x-expires`: whether the queue has been unused (no consumers, no get, no redeclare) for
    /// longer than its expiry.
    pub fn is_expired(&self, now: u64) -> bool {
        let Some(expires) = self.options.arguments.expires_ms else {
            return false;
        };
        now.saturating_sub(self.last_used.load(Ordering::Relaxed)) > expires
            && self.state.lock().consumers.is_empty()
    }
}
