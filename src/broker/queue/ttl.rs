//! Time in a queue: message TTL (`x-message-ttl`, the `expiration` property, TTL 0), queue
//! expiry (`x-expires`) and the consumer acknowledgement timeout setting. Messages expire only
//! when they reach the head, as in RabbitMQ; housekeeping expires the head of queues at rest.
//!
//! For that, a queue keeps one deadline registered with its vhost's timer (see
//! broker/deadlines.rs): the earliest of its head message's expiry, while it has no
//! consumers its x-expires, and for a stream the time its oldest segment passes x-max-age. An operation that brings an earlier one registers it; a later one
//! (a `touch`) waits until the registered deadline fires and the queue reports its next.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::dead_letter::Reason;
use super::queue::{Queue, QueueState};
use super::stream::epoch_ms;
use crate::broker::clock;
use crate::broker::deadlines::{Registered, Scheduled};
use crate::broker::message::{Message, QueuedMessage};

impl Queue {
    /// The lower of the queue's x-message-ttl and the message's expiration.
    pub(super) fn ttl_of(st: &QueueState, message: &Message) -> Option<u64> {
        match (st.settings.message_ttl_ms, message.expiration_ms()) {
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
        // Offered at the moment it was published: a second clock reading must not call it
        // expired on the way to a consumer that can take it.
        if let Err(left) = self.deliver_one(st, queued) {
            self.drop_message(st, left, Reason::Expired);
        }
    }

    /// Drops expired messages from the head of the queue, in memory or paged (messages expire
    /// only when they reach the head, as in RabbitMQ; a paged one's expiry is in the backlog's
    /// index, so its body is not read unless it is dead-lettered). Returns how many went.
    pub(super) fn drop_expired_head(&self, st: &mut QueueState, now: u64) -> usize {
        let mut dropped = 0;
        loop {
            let expires_at = Self::head_expires_at(st);
            if expires_at == 0 || expires_at >= now || !self.drop_head(st, Reason::Expired) {
                return dropped;
            }
            dropped += 1;
        }
    }

    /// Housekeeping, when the queue's deadline comes: expires the head at rest, and tells
    /// whether the queue itself has expired (x-expires: the caller deletes it). Otherwise the
    /// queue's next deadline is registered on the way out.
    pub fn expire_at_rest(self: &Arc<Self>, now: u64) -> bool {
        let mut st = self.state.lock();
        self.drop_expired_head(&mut st, now);
        if let Some(log) = st.stream.as_deref_mut() {
            self.apply_retention(log, epoch_ms());
        }
        let expired = self.unused_too_long(&st, now);
        self.finish(st);
        expired
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
    fn unused_too_long(&self, st: &QueueState, now: u64) -> bool {
        let Some(expires) = st.settings.expires_ms else {
            return false;
        };
        now.saturating_sub(self.last_used.load(Ordering::Relaxed)) > expires
            && st.consumers.is_empty()
    }

    /// When something next falls due: the first millisecond at which the message at the head
    /// expires ([`Self::drop_expired_head`]), while the queue has no consumers x-expires runs
    /// out ([`Self::unused_too_long`]), or held dead letters are offered again
    /// (dead_letter/at_least_once.rs; `finish` forwards them).
    fn next_deadline(&self, st: &QueueState) -> Option<u64> {
        if st.deleted {
            return None;
        }
        let head = Some(Self::head_expires_at(st)).filter(|t| *t != 0);
        let unused = st
            .settings
            .expires_ms
            .filter(|_| st.consumers.is_empty())
            .map(|expires| {
                self.last_used
                    .load(Ordering::Relaxed)
                    .saturating_add(expires)
            });
        // A stream's oldest segment getting too old (x-max-age), on this clock.
        let aged = st
            .stream
            .as_deref()
            .and_then(|log| log.retention.next_age_deadline(&log.segments))
            .map(|at| clock::now_ms().saturating_add(at.saturating_sub(epoch_ms())));
        // Both tests are strict (`expires_at < now`, idle `> expires`): due a millisecond later.
        let edge = [head, unused, aged, st.dead_letters.deadline()]
            .into_iter()
            .flatten()
            .min()?;
        Some(edge.saturating_add(1))
    }

    /// Registers the queue's next deadline with the vhost's timer when it is earlier than the
    /// one registered (a later one is found when that fires). Called with the lock held after
    /// anything that may change the head or leave the queue without consumers, so a deadline
    /// firing meanwhile cannot miss the change.
    pub(super) fn schedule_locked(self: &Arc<Self>, st: &QueueState) {
        let Some(due) = self.next_deadline(st) else {
            return;
        };
        if self.deadline.covers(due) {
            return;
        }
        if let Some(vhost) = self.vhost_ref.upgrade() {
            vhost.deadlines().register(self, due);
        }
    }

    /// Registers the queue's first deadline (a declared or recovered queue with x-expires).
    pub fn schedule(self: &Arc<Self>) {
        let st = self.state.lock();
        self.schedule_locked(&st);
    }

    /// A deleted queue has nothing more due. Called with the lock held and `deleted` set, so
    /// nothing registers again.
    pub(super) fn unschedule(&self) {
        if let Some(vhost) = self.vhost_ref.upgrade() {
            vhost.deadlines().cancel(self);
        }
    }
}

impl Scheduled for Queue {
    fn registered(&self) -> &Registered {
        &self.deadline
    }
}
