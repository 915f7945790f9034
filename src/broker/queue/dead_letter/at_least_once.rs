//! `x-dead-letter-strategy: at-least-once`, as RabbitMQ 3.10's quorum queues do it
//! (`rabbit_fifo_dlx` and its worker). It applies to a quorum queue with overflow
//! `reject-publish` and a dead-letter exchange (settings.rs decides; otherwise RabbitMQ falls
//! back to at-most-once, mod.rs).
//!
//! A message that leaves such a queue for a dead-letter reason (rejected, expired,
//! delivery_limit) is not forgotten: it stays in the queue's [`DeadLetters`], its store index
//! entry in place, and is counted where RabbitMQ counts it (the management API's `messages`,
//! `messages_dlx`, `message_bytes_dlx`; the length limit counts it with the ready messages; a
//! queue.declare-ok, a get or a purge do not see it). It is forwarded at once, outside the
//! queue's lock: its copy (the same `x-death` history as at-most-once, dated when it was
//! dead-lettered) is routed through the dead-letter exchange and offered to each target queue.
//! When every target has accepted it, it leaves the source: its index entry is removed after
//! the targets' store writes were issued, and the store applies operations in order, so a
//! crash can never lose the source's copy without the targets having theirs.
//!
//! What is not accepted everywhere stays:
//! - routed nowhere (no exchange, nothing bound, or only cycles): tried again when the
//!   queue's policies change (RabbitMQ re-reads the topology then) and by the retry timer;
//! - refused by a target (a full reject-publish queue): offered again to the targets that have
//!   not accepted it, by the retry timer only.
//!
//! The timer is RabbitMQ's `dead_letter_worker_publisher_confirm_timeout`: 180 s by default,
//! warren's `dead_letter_retry_ms`. When the strategy stops applying (a policy changes the
//! strategy, the overflow or the exchange away), RabbitMQ deletes what is waiting; so does
//! warren. After a restart the waiting messages come back as ordinary messages of the queue
//! (redelivered), where RabbitMQ keeps them as dead letters and forwards them again: nothing is
//! lost either way (QUEUE_TYPES.md).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{DeadLetterTarget, Reason, RoutedCopy, route_copy};
use crate::broker::clock;
use crate::broker::message::QueuedMessage;
use crate::broker::publish::stored_message;
use crate::broker::queue::Queue;
use crate::broker::queue::queue::QueueState;
use crate::broker::vhost::VHost;

/// How long a dead letter waits before it is offered again, in ms (RabbitMQ's
/// `dead_letter_worker_publisher_confirm_timeout`, 180 s in 3.10).
static RETRY_MS: AtomicU64 = AtomicU64::new(180_000);

pub fn set_retry_interval(ms: u64) {
    RETRY_MS.store(ms.max(1), Ordering::Relaxed);
}

fn retry_interval() -> u64 {
    RETRY_MS.load(Ordering::Relaxed)
}

/// A quorum queue's dead letters waiting for their targets (part of the queue's state).
#[derive(Default)]
pub struct DeadLetters {
    waiting: VecDeque<Held>,
    /// Taken out by the forwarding pass under way (still counted).
    in_flight: usize,
    in_flight_bytes: u64,
    /// Body bytes of `waiting`.
    bytes: u64,
    /// A forwarding pass is under way (outside the lock): no other starts.
    forwarding: bool,
    /// The strategy stopped applying during the pass: what comes back is dropped.
    discard_in_flight: bool,
    /// Messages that were never offered are waiting.
    fresh: bool,
    /// Messages that were routed nowhere may be offered again now (the policies changed).
    reroute: bool,
    /// When the retry timer is due ([`clock::now_ms`]).
    retry_at: Option<u64>,
}

/// One dead letter held by the source queue.
struct Held {
    message: QueuedMessage,
    reason: Reason,
    /// When it was dead-lettered (seconds since the epoch): its `x-death` time.
    dead_at: u64,
    /// Target queues that accepted it.
    settled: Vec<Arc<str>>,
    /// When it was last offered to a target ([`clock::now_ms`]); `None` while it has been
    /// routed nowhere.
    offered_at: Option<u64>,
    tried: bool,
}

impl DeadLetters {
    /// Dead letters held, and their body bytes.
    pub fn len_and_bytes(&self) -> (u64, u64) {
        (
            self.waiting.len() as u64 + self.in_flight as u64,
            self.bytes + self.in_flight_bytes,
        )
    }

    /// When the queue must act next for its dead letters (the retry timer).
    pub fn deadline(&self) -> Option<u64> {
        self.retry_at.filter(|_| !self.waiting.is_empty())
    }

    /// Whether a forwarding pass has something to do at `now`.
    fn due(&self, now: u64) -> bool {
        !self.forwarding
            && !self.waiting.is_empty()
            && (self.fresh || self.reroute || self.retry_at.is_some_and(|at| at <= now))
    }

    /// Takes what is due out of `waiting`: the fresh ones, those routed nowhere when the
    /// topology may have changed, and on the timer those offered more than an interval ago.
    fn take_due(&mut self, now: u64) -> Vec<Held> {
        let timer = self.retry_at.is_some_and(|at| at <= now);
        let reroute = std::mem::take(&mut self.reroute);
        self.fresh = false;
        if timer {
            self.retry_at = None;
        }
        let interval = retry_interval();
        let mut due = Vec::new();
        let mut kept = VecDeque::with_capacity(self.waiting.len());
        for held in self.waiting.drain(..) {
            let take = !held.tried
                || (held.offered_at.is_none() && (reroute || timer))
                || held
                    .offered_at
                    .is_some_and(|at| timer && at.saturating_add(interval) <= now);
            if take {
                let bytes = held.message.message.body.len() as u64;
                self.bytes = self.bytes.saturating_sub(bytes);
                self.in_flight += 1;
                self.in_flight_bytes += bytes;
                due.push(held);
            } else {
                kept.push_back(held);
            }
        }
        self.waiting = kept;
        due
    }

    fn push(&mut self, held: Held) {
        self.bytes += held.message.message.body.len() as u64;
        self.waiting.push_back(held);
    }

    fn arm_timer(&mut self, now: u64) {
        if !self.waiting.is_empty() && self.retry_at.is_none() {
            self.retry_at = Some(now.saturating_add(retry_interval()));
        }
    }
}

impl Queue {
    /// At-least-once dead letters the queue holds, and their body bytes (the management API's
    /// `messages_dlx` and `message_bytes_dlx`).
    pub fn dead_letters_held(&self) -> (u64, u64) {
        self.state.lock().dead_letters.len_and_bytes()
    }

    /// `m` leaves for `reason`: kept as an at-least-once dead letter (`None`), or handed back
    /// for at-most-once (`Some`). RabbitMQ never holds a `maxlen` one (reject-publish queues
    /// do not drop for length).
    pub(in crate::broker::queue) fn hold_dead_letter(
        &self,
        st: &mut QueueState,
        m: QueuedMessage,
        reason: Reason,
    ) -> Option<QueuedMessage> {
        if !st.settings.at_least_once || reason == Reason::Maxlen {
            return Some(m);
        }
        st.dead_letters.push(Held {
            message: m,
            reason,
            dead_at: super::epoch_seconds(),
            settled: Vec::new(),
            offered_at: None,
            tried: false,
        });
        st.dead_letters.fresh = true;
        None
    }

    /// Whether [`Queue::forward_dead_letters`] has work (asked by `finish` under the lock).
    pub(in crate::broker::queue) fn dead_letters_due(&self, st: &QueueState) -> bool {
        !st.dead_letters.waiting.is_empty() && st.dead_letters.due(clock::now_ms())
    }

    /// The queue's settings changed: if at-least-once no longer applies, what waits is deleted
    /// (as RabbitMQ's `rabbit_fifo_dlx:update_config` does); if it still does, messages routed
    /// nowhere are offered again (RabbitMQ's worker re-reads the topology).
    pub(in crate::broker::queue) fn dead_letter_settings_changed(&self, st: &mut QueueState) {
        let dl = &mut st.dead_letters;
        if st.settings.at_least_once {
            dl.reroute = !dl.waiting.is_empty();
            dl.discard_in_flight = false;
            return;
        }
        let (count, bytes) = dl.len_and_bytes();
        if count == 0 {
            return;
        }
        let dropped: Vec<Held> = dl.waiting.drain(..).collect();
        dl.bytes = 0;
        dl.retry_at = None;
        dl.discard_in_flight = dl.forwarding;
        self.forget_held(dropped.iter());
        tracing::info!(
            "deleted {count} dead-lettered messages ({bytes} bytes) in queue '{}' in vhost '{}': \
             dead-letter-strategy at-least-once no longer applies",
            self.name,
            self.vhost
        );
    }

    fn forget_held<'a>(&self, held: impl Iterator<Item = &'a Held>) {
        for h in held {
            if let Some((p, id)) = self.stores(&h.message) {
                p.store.remove(p.queue_id, h.message.seq, id);
            }
        }
    }

    /// Offers the due dead letters to their targets, outside the lock, until nothing is due.
    pub(in crate::broker::queue) fn forward_dead_letters(self: &Arc<Self>) {
        let Some(vhost) = self.vhost_ref.upgrade() else {
            return;
        };
        loop {
            let (mut batch, target) = {
                let mut st = self.state.lock();
                let now = clock::now_ms();
                if st.deleted || !st.dead_letters.due(now) {
                    return;
                }
                let Some(target) = st.settings.dead_letter.clone() else {
                    return;
                };
                st.dead_letters.forwarding = true;
                (st.dead_letters.take_due(now), target)
            };
            let now = clock::now_ms();
            let done: Vec<bool> = batch
                .iter_mut()
                .map(|held| self.offer(&vhost, &target, held, now))
                .collect();
            let mut st = self.state.lock();
            let dl = &mut st.dead_letters;
            dl.forwarding = false;
            dl.in_flight = 0;
            dl.in_flight_bytes = 0;
            let discard = std::mem::take(&mut dl.discard_in_flight);
            if st.deleted {
                return; // the queue's store entries went with it
            }
            let mut left = 0;
            for (held, done) in batch.drain(..).zip(done) {
                if done || discard {
                    // Its targets have it (their store writes were issued first), or the
                    // strategy no longer applies: the source lets it go.
                    self.forget_held(std::iter::once(&held));
                } else {
                    left += 1;
                    st.dead_letters.push(held);
                }
            }
            if left > 0 || !st.dead_letters.waiting.is_empty() {
                st.dead_letters.arm_timer(clock::now_ms());
            }
            self.schedule_locked(&st);
        }
    }

    /// Offers one dead letter to the targets it routes to that do not have it yet; true when
    /// every one of them has it now.
    fn offer(
        self: &Arc<Self>,
        vhost: &Arc<VHost>,
        target: &DeadLetterTarget,
        held: &mut Held,
        now: u64,
    ) -> bool {
        held.tried = true;
        let Some(routed) = route_copy(
            vhost,
            &self.name,
            target,
            &held.message.message,
            held.reason,
            held.dead_at,
        ) else {
            // No exchange, no route, or its headers do not rewrite: kept.
            held.offered_at = None;
            return false;
        };
        let RoutedCopy {
            exchange,
            routing_key,
            copy,
            mut queues,
        } = routed;
        // Cycles are kept, not dropped, as RabbitMQ 3.10's worker does.
        queues.retain(|q| !copy.is_cycle(&q.name));
        if queues.is_empty() {
            if held.settled.is_empty() {
                held.offered_at = None;
                return false;
            }
            // The routes went away after a target accepted it: that one is enough
            // (RabbitMQ's mandatory-flag reasoning).
            return true;
        }
        let all_routes: Vec<Arc<str>> = queues.iter().map(|q| q.name.clone()).collect();
        queues.retain(|q| !held.settled.contains(&q.name));
        if !queues.is_empty() {
            held.offered_at = Some(now);
            let accepted = publish_each(
                vhost,
                exchange,
                routing_key,
                copy.properties,
                held.message.message.body.clone(),
                &queues,
            );
            for (q, ok) in queues.iter().zip(accepted) {
                if ok {
                    held.settled.push(q.name.clone());
                }
            }
        }
        all_routes.iter().all(|name| held.settled.contains(name))
    }
}

/// Stores the copy once if a target must keep it, then enqueues it in each target; returns
/// which accepted it (a full reject-publish queue refuses). The targets' dead letters in turn
/// form one cascade, as a publish's do.
fn publish_each(
    vhost: &Arc<VHost>,
    exchange: Arc<str>,
    routing_key: warren_protocol::ShortStr,
    properties: warren_protocol::Properties,
    body: bytes::Bytes,
    queues: &[Arc<Queue>],
) -> Vec<bool> {
    let store = vhost.store();
    let (message, _, pin) = stored_message(store, exchange, routing_key, properties, body, queues);
    let cascade = super::CascadeScope::begin();
    let accepted = queues.iter().map(|q| q.publish(message.clone())).collect();
    drop(pin);
    cascade.drain();
    accepted
}
