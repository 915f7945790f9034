//! Dead-lettering, as RabbitMQ does it: a message rejected without requeue, expired, or dropped
//! for a length limit leaves its queue through `x-dead-letter-exchange` (with
//! `x-dead-letter-routing-key`, or its own routing key), carrying an `x-death` history:
//! one table per (queue, reason) — reason, queue, time, exchange, routing-keys, count, and
//! original-expiration when it had one — newest first, the matching entry's count incremented
//! and moved to the front; plus `x-first-death-reason/queue/exchange` set once. The copy loses
//! its `expiration`. A message that would come back to a queue already in its history is
//! dropped for that queue unless a client rejected it since its last visit there (RabbitMQ's
//! cycle rule, `rabbit_dead_letter:is_cycle`).
//!
//! Dead letters can make more dead letters (a full dead-letter queue dead-letters in turn), to
//! any depth a client configures: they are handled in a loop on a per-thread worklist, never by
//! recursion.
//!
//! This file owns the cascade: budgets, the worklist and routing the copies. The copy itself
//! (the history rewritten in the message's property bytes) is history.rs's; a quorum queue's
//! `at-least-once` strategy, which keeps dead letters until their targets accept them, is
//! at_least_once.rs's (its forwarding passes run in the same loop, never recursively).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use warren_protocol::ShortStr;

use crate::broker::message::{LazyHeaders, Message};
use crate::broker::publish::enqueue;
use crate::broker::queue::Queue;
use crate::broker::vhost::{RouteScratch, VHost};

mod at_least_once;
mod history;

pub use at_least_once::{DeadLetters, set_retry_interval};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Rejected,
    Expired,
    Maxlen,
    /// A quorum queue's message came back more often than its delivery limit.
    DeliveryLimit,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rejected => "rejected",
            Reason::Expired => "expired",
            Reason::Maxlen => "maxlen",
            Reason::DeliveryLimit => "delivery_limit",
        }
    }
}

/// A queue's `x-dead-letter-exchange` and `x-dead-letter-routing-key` (read by args.rs).
#[derive(Debug, Clone)]
pub struct DeadLetterTarget {
    pub exchange: String,
    pub routing_key: Option<String>,
}

/// Dead letters of one queue, waiting to be published.
struct Batch {
    vhost: Arc<VHost>,
    queue: Arc<str>,
    target: DeadLetterTarget,
    dead: Vec<(Arc<Message>, Reason)>,
}

/// Queue deliveries that the dead letters of one cascade may make: [`CASCADE_BASE`], plus
/// [`CASCADE_PER_MESSAGE`] for each dead letter that started it (one that a publish, a reject
/// or an expiry made, not another dead letter). A DLQ that overflows into a parking queue
/// costs one or two per message; queues that overflow into each other by fanout multiply
/// copies until the cycle rule stops each path (factorially many with a dozen queues; RabbitMQ
/// works through them all, asynchronously), and every copy is held by the queues it reaches.
/// Past the budget the rest are dropped, with a warning. Deliveries, not dead letters, are
/// counted: one dead letter fanned out to many queues is that many messages held.
const CASCADE_BASE: usize = 256;
const CASCADE_PER_MESSAGE: usize = 32;

/// What dead-lettering has made on one thread so far: copies a client's topology asked for,
/// each cascade within its budget. The connection fuzz target allows memory for them (a
/// client may legitimately make the broker hold them); nothing in the broker reads this.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterTally {
    /// Dead-letter messages made (one per dead letter routed anywhere).
    pub messages: usize,
    /// Their encoded properties (the `x-death` history is most of it).
    pub property_bytes: usize,
    /// Queue deliveries of them (a message fanned out to three queues is three).
    pub deliveries: usize,
}

impl DeadLetterTally {
    /// Dead-lettering made on this thread since `earlier`.
    pub fn since(earlier: DeadLetterTally) -> DeadLetterTally {
        let now = TALLY.get();
        DeadLetterTally {
            messages: now.messages.saturating_sub(earlier.messages),
            property_bytes: now.property_bytes.saturating_sub(earlier.property_bytes),
            deliveries: now.deliveries.saturating_sub(earlier.deliveries),
        }
    }

    /// Everything dead-lettering has made on this thread.
    pub fn on_this_thread() -> DeadLetterTally {
        TALLY.get()
    }

    fn add(messages: usize, property_bytes: usize, deliveries: usize) {
        let t = TALLY.get();
        TALLY.set(DeadLetterTally {
            messages: t.messages.saturating_add(messages),
            property_bytes: t.property_bytes.saturating_add(property_bytes),
            deliveries: t.deliveries.saturating_add(deliveries),
        });
    }
}

thread_local! {
    static TALLY: Cell<DeadLetterTally> = const {
        Cell::new(DeadLetterTally { messages: 0, property_bytes: 0, deliveries: 0 })
    };
}

/// The dead letters of one cascade, waiting to be routed.
struct Worklist {
    pending: VecDeque<Batch>,
    /// Queue deliveries that dead letters made so far, and how many may.
    cascaded: usize,
    budget: usize,
    /// Dead letters dropped past the budget.
    dropped: usize,
    /// Routing has begun: dead letters added from now on were caused by dead letters.
    draining: bool,
}

thread_local! {
    /// `Some` while a cascade is collected or drained on this thread.
    static WORKLIST: RefCell<Option<Worklist>> = const { RefCell::new(None) };
    /// Queues whose at-least-once dead letters are due, forwarded by the drain loop.
    static FORWARDS: RefCell<Vec<Arc<Queue>>> = const { RefCell::new(Vec::new()) };
}

/// Ends the cascade even if publishing panics, so the next one starts afresh.
struct Draining;

impl Drop for Draining {
    fn drop(&mut self) {
        COLLECTING.set(COLLECTING.get().saturating_sub(1));
        FORWARDS.with(|f| f.borrow_mut().clear());
        let ended = WORKLIST.with(|w| w.borrow_mut().take());
        if let Some(w) = ended
            && w.dropped > 0
        {
            tracing::warn!(
                "dead-letter cascade stopped after {} deliveries of dead letters; {} dropped \
                 (queues that overflow into each other?)",
                w.cascaded,
                w.dropped
            );
        }
    }
}

/// One publish's cascade: the dead letters its queues make while it is enqueued (every full
/// queue it reaches may make one) are collected and drained under one budget by
/// [`CascadeScope::drain`], not as a cascade per queue. Inside another scope or a drain (a
/// dead letter being enqueued), the outer one takes them. Opening a scope costs two
/// thread-local counter updates: the worklist itself is made only when a dead letter comes.
#[must_use]
pub struct CascadeScope {
    outermost: bool,
}

thread_local! {
    /// Open scopes and drains on this thread: while above zero, dead letters are collected.
    static COLLECTING: Cell<u32> = const { Cell::new(0) };
}

impl CascadeScope {
    pub fn begin() -> CascadeScope {
        let depth = COLLECTING.get();
        COLLECTING.set(depth + 1);
        CascadeScope {
            outermost: depth == 0,
        }
    }

    /// Routes what was collected, and whatever dead letters that makes in turn.
    pub fn drain(self) {
        let outermost = self.outermost;
        // Closed here, not by Drop (which is for a scope left by a panic).
        std::mem::forget(self);
        COLLECTING.set(COLLECTING.get() - 1);
        if outermost && (WORKLIST.with(|w| w.borrow().is_some()) || forwards_waiting()) {
            drain_worklist();
        }
    }
}

impl Drop for CascadeScope {
    /// Not drained (a panic while enqueueing): close the scope and, if it was the outermost,
    /// forget the cascade rather than leave it open.
    fn drop(&mut self) {
        COLLECTING.set(COLLECTING.get().saturating_sub(1));
        if self.outermost {
            WORKLIST.with(|w| w.borrow_mut().take());
        }
    }
}

impl Worklist {
    fn new() -> Self {
        Worklist {
            pending: VecDeque::new(),
            cascaded: 0,
            budget: CASCADE_BASE,
            dropped: 0,
            draining: false,
        }
    }
}

/// Sends `dead` (messages leaving `queue` for a reason) through the dead-letter exchange, and
/// then whatever dead letters that makes in turn. While a [`CascadeScope`] or a drain is open
/// on this thread it only adds to the worklist.
pub fn publish(
    vhost: &Arc<VHost>,
    queue: &Arc<str>,
    target: &DeadLetterTarget,
    dead: Vec<(Arc<Message>, Reason)>,
) {
    let batch = Batch {
        vhost: vhost.clone(),
        queue: queue.clone(),
        target: target.clone(),
        dead,
    };
    WORKLIST.with(|w| {
        let mut w = w.borrow_mut();
        let w = w.get_or_insert_with(Worklist::new);
        if !w.draining {
            // Dead letters that start the cascade widen its budget.
            w.budget = w
                .budget
                .saturating_add(batch.dead.len().saturating_mul(CASCADE_PER_MESSAGE));
        }
        w.pending.push_back(batch);
    });
    if COLLECTING.get() == 0 {
        drain_worklist();
    }
}

/// Drains the worklist until no dead letter is left, then ends the cascade. Counts as an open
/// scope meanwhile, so enqueueing a dead letter never starts a drain of its own.
fn drain_worklist() {
    let _draining = Draining;
    COLLECTING.set(COLLECTING.get() + 1);
    WORKLIST.with(|w| {
        if let Some(w) = w.borrow_mut().as_mut() {
            w.draining = true;
        }
    });
    loop {
        if let Some(batch) =
            WORKLIST.with(|w| w.borrow_mut().as_mut().and_then(|w| w.pending.pop_front()))
        {
            publish_batch(&batch.vhost, &batch.queue, &batch.target, batch.dead);
            continue;
        }
        match FORWARDS.with(|f| f.borrow_mut().pop()) {
            Some(queue) => queue.forward_dead_letters(),
            None => break,
        }
    }
}

fn forwards_waiting() -> bool {
    FORWARDS.with(|f| !f.borrow().is_empty())
}

/// Forwards `queue`'s due at-least-once dead letters: now, or by the cascade open on this
/// thread once it drains (so forwarding into queues that dead-letter in turn never recurses).
pub fn forward(queue: &Arc<Queue>) {
    FORWARDS.with(|f| f.borrow_mut().push(queue.clone()));
    if COLLECTING.get() == 0 {
        drain_worklist();
    }
}

/// Now, in seconds since the epoch (an `x-death` time).
fn epoch_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A dead letter's copy, routed: what to enqueue it with and where.
struct RoutedCopy {
    exchange: Arc<str>,
    routing_key: ShortStr,
    copy: history::DeadLetterCopy,
    queues: Vec<Arc<Queue>>,
}

/// Makes the copy of `message` leaving `queue` for `reason` (dead-lettered at `now`, in
/// seconds) and routes it through the dead-letter exchange. `None` when the exchange is
/// missing, the headers do not rewrite, or nothing is bound for it; cycles are left in
/// `queues` for the caller to judge.
fn route_copy(
    vhost: &Arc<VHost>,
    queue: &str,
    target: &DeadLetterTarget,
    message: &Message,
    reason: Reason,
    now: u64,
) -> Option<RoutedCopy> {
    let exchange = vhost.exchange(&target.exchange)?;
    let routing_key_replaced = target.routing_key.is_some();
    let Some(copy) = history::dead_letter_copy(message, queue, reason, routing_key_replaced, now)
    else {
        tracing::debug!("dead letter from {queue} dropped: its headers do not rewrite");
        return None;
    };
    // RabbitMQ routes a dead letter by all of the message's routing keys (its own and its CC
    // keys), unless x-dead-letter-routing-key replaces them all, and then drops the CC header
    // (rabbit_dead_letter:make_msg).
    let routing_key = match &target.routing_key {
        Some(rk) => ShortStr::from_bytes(bytes::Bytes::from(rk.clone().into_bytes()))?,
        None => message.routing_key.clone(),
    };
    let mut keys: Vec<&str> = Vec::with_capacity(1 + copy.sender_selected.len());
    keys.push(&routing_key);
    keys.extend(copy.sender_selected.iter().map(String::as_str));
    let mut lazy_headers = LazyHeaders::new(&copy.properties);
    let (mut queues, mut scratch) = (Vec::new(), RouteScratch::default());
    vhost.route_keys(
        &exchange,
        &keys,
        &mut lazy_headers,
        &mut queues,
        &mut scratch,
    );
    drop(lazy_headers);
    if queues.is_empty() {
        return None;
    }
    Some(RoutedCopy {
        exchange: exchange.name.clone(),
        routing_key,
        copy,
        queues,
    })
}

/// Routes and enqueues one queue's dead letters (which may add to the worklist); every
/// delivery counts against the cascade's budget.
fn publish_batch(
    vhost: &Arc<VHost>,
    queue: &str,
    target: &DeadLetterTarget,
    dead: Vec<(Arc<Message>, Reason)>,
) {
    if vhost.exchange(&target.exchange).is_none() {
        // RabbitMQ drops dead letters for a missing dead-letter exchange.
        return;
    }
    let store = vhost.store();
    let now = epoch_seconds();
    for (message, reason) in dead {
        let Some(RoutedCopy {
            exchange,
            routing_key,
            copy,
            queues: mut out,
        }) = route_copy(vhost, queue, target, &message, reason, now)
        else {
            continue;
        };
        out.retain(|q| !copy.is_cycle(&q.name));
        if out.is_empty() {
            continue;
        }
        if !charge_cascade(out.len()) {
            out.clear();
            continue;
        }
        DeadLetterTally::add(1, copy.properties.raw().len(), out.len());
        let _ = enqueue(
            store,
            exchange,
            routing_key,
            copy.properties,
            message.body.clone(),
            &mut out,
        );
    }
}

/// Counts `deliveries` against the drain's budget; false (and the dead letter counted as
/// dropped) once it is spent.
fn charge_cascade(deliveries: usize) -> bool {
    WORKLIST.with(|w| {
        let mut w = w.borrow_mut();
        let Some(w) = w.as_mut() else { return true };
        if w.cascaded.saturating_add(deliveries) > w.budget {
            w.dropped += 1;
            return false;
        }
        w.cascaded += deliveries;
        true
    })
}
