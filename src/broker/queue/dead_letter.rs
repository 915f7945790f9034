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

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use warren_protocol::{Properties, ShortStr};

use crate::broker::message::{LazyHeaders, Message};
use crate::broker::publish::enqueue;
use crate::broker::sender_selected::{sender_selected, without_header};
use crate::broker::vhost::{RouteScratch, VHost};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Rejected,
    Expired,
    Maxlen,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rejected => "rejected",
            Reason::Expired => "expired",
            Reason::Maxlen => "maxlen",
        }
    }
}

/// A queue's `x-dead-letter-exchange` and `x-dead-letter-routing-key` (read by args.rs).
#[derive(Debug, Clone)]
pub struct DeadLetterTarget {
    pub exchange: String,
    pub routing_key: Option<String>,
}

fn text(t: &FieldTable, key: &str) -> Option<String> {
    match t.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}

fn long_str(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// Key for a header we set; our keys are short constants, so this cannot fail.
fn key(s: &'static str) -> ShortString {
    ShortString::from(s)
}

/// The dead-lettered copy's headers and what the cycle rule needs: its history, newest first,
/// as (queue, whether that death was a client's rejection).
struct History {
    headers: FieldTable,
    visits: Vec<(String, bool)>,
}

impl History {
    /// Coming back to `queue` is a cycle to break unless a client rejected the message since
    /// its last visit there: every entry from the newest up to and including that queue's.
    fn is_cycle(&self, queue: &str) -> bool {
        match self.visits.iter().position(|(q, _)| q == queue) {
            None => false,
            Some(last_visit) => self.visits[..=last_visit]
                .iter()
                .all(|(_, rejected)| !rejected),
        }
    }
}

fn with_death(
    message: &Message,
    headers: Option<FieldTable>,
    queue: &str,
    reason: Reason,
) -> History {
    let mut headers = headers.unwrap_or_default();
    let mut deaths: Vec<FieldTable> = match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a
            .as_slice()
            .iter()
            .filter_map(|v| match v {
                AMQPValue::FieldTable(t) => Some(t.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let same = |t: &FieldTable| {
        text(t, "queue").as_deref() == Some(queue)
            && text(t, "reason").as_deref() == Some(reason.as_str())
    };
    let entry = match deaths.iter().position(same) {
        Some(i) => {
            let mut t = deaths.remove(i);
            let count = match t.inner().get("count") {
                Some(v) => crate::broker::field_display::as_i64(v).unwrap_or(0),
                None => 0,
            };
            t.insert(key("count"), AMQPValue::LongLongInt(count + 1));
            t
        }
        None => {
            let mut t = FieldTable::default();
            t.insert(key("count"), AMQPValue::LongLongInt(1));
            t.insert(key("reason"), long_str(reason.as_str()));
            t.insert(key("queue"), long_str(queue));
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            t.insert(key("time"), AMQPValue::Timestamp(now));
            t.insert(key("exchange"), long_str(&message.exchange));
            // The original routing key, then any sender-selected ones from the CC header.
            let mut keys = vec![long_str(&message.routing_key)];
            if let Some(AMQPValue::FieldArray(cc)) = headers.inner().get("CC") {
                keys.extend(cc.as_slice().iter().cloned());
            }
            let keys = FieldArray::from(keys);
            t.insert(key("routing-keys"), AMQPValue::FieldArray(keys));
            if let Some(expiration) = message.properties.expiration() {
                t.insert(key("original-expiration"), long_str(expiration));
            }
            t
        }
    };
    deaths.insert(0, entry);
    let visits = deaths
        .iter()
        .filter_map(|t| {
            let rejected = text(t, "reason").as_deref() == Some("rejected");
            Some((text(t, "queue")?, rejected))
        })
        .collect();
    if !headers.inner().contains_key("x-first-death-reason") {
        headers.insert(key("x-first-death-reason"), long_str(reason.as_str()));
        headers.insert(key("x-first-death-queue"), long_str(queue));
        headers.insert(key("x-first-death-exchange"), long_str(&message.exchange));
    }
    let deaths = deaths
        .into_iter()
        .map(AMQPValue::FieldTable)
        .collect::<Vec<_>>();
    headers.insert(
        key("x-death"),
        AMQPValue::FieldArray(FieldArray::from(deaths)),
    );
    History { headers, visits }
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
}

/// Ends the cascade even if publishing panics, so the next one starts afresh.
struct Draining;

impl Drop for Draining {
    fn drop(&mut self) {
        COLLECTING.set(COLLECTING.get().saturating_sub(1));
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
        if outermost && WORKLIST.with(|w| w.borrow().is_some()) {
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
    while let Some(batch) =
        WORKLIST.with(|w| w.borrow_mut().as_mut().and_then(|w| w.pending.pop_front()))
    {
        publish_batch(&batch.vhost, &batch.queue, &batch.target, batch.dead);
    }
}

/// Routes and enqueues one queue's dead letters (which may add to the worklist); every
/// delivery counts against the cascade's budget.
fn publish_batch(
    vhost: &Arc<VHost>,
    queue: &str,
    target: &DeadLetterTarget,
    dead: Vec<(Arc<Message>, Reason)>,
) {
    let Some(exchange) = vhost.exchange(&target.exchange) else {
        // RabbitMQ drops dead letters for a missing dead-letter exchange.
        return;
    };
    let store = vhost.store();
    let (mut out, mut scratch) = (Vec::new(), RouteScratch::default());
    for (message, reason) in dead {
        let mut basic = message.properties.to_basic();
        let mut history = with_death(&message, basic.headers().clone(), queue, reason);
        let mut headers = std::mem::take(&mut history.headers);
        // RabbitMQ routes a dead letter by all of the message's routing keys (its own and its
        // CC keys), unless x-dead-letter-routing-key replaces them all, and then drops the CC
        // header (rabbit_dead_letter:make_msg).
        let cc_keys = match &target.routing_key {
            Some(_) => {
                headers = without_header(&headers, "CC");
                Vec::new()
            }
            None => sender_selected(Some(&headers))
                .ok()
                .flatten()
                .map(|selected| selected.keys)
                .unwrap_or_default(),
        };
        basic = basic.with_headers(headers);
        let mut props = basic.clone();
        if props.expiration().is_some() {
            // The copy must not expire again on the way: rebuild without the property.
            props = rebuild_without_expiration(&basic);
        }
        let properties = Properties::from_basic(&props);
        let routing_key = match &target.routing_key {
            Some(rk) => ShortStr::from_bytes(bytes::Bytes::from(rk.clone().into_bytes())),
            None => Some(message.routing_key.clone()),
        };
        let Some(routing_key) = routing_key else {
            continue;
        };
        let mut keys: Vec<&str> = Vec::with_capacity(1 + cc_keys.len());
        keys.push(&routing_key);
        keys.extend(cc_keys.iter().map(String::as_str));
        let mut lazy_headers = LazyHeaders::new(&properties);
        vhost.route_keys(&exchange, &keys, &mut lazy_headers, &mut out, &mut scratch);
        out.retain(|q| !history.is_cycle(&q.name));
        if out.is_empty() {
            continue;
        }
        if !charge_cascade(out.len()) {
            out.clear();
            continue;
        }
        DeadLetterTally::add(1, properties.raw().len(), out.len());
        let _ = enqueue(
            store,
            exchange.name.clone(),
            routing_key,
            properties,
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

/// amq-protocol's properties have no "unset" for a field: copy every other one over.
fn rebuild_without_expiration(
    p: &amq_protocol::protocol::BasicProperties,
) -> amq_protocol::protocol::BasicProperties {
    let mut out = amq_protocol::protocol::BasicProperties::default();
    if let Some(v) = p.content_type() {
        out = out.with_content_type(v.clone());
    }
    if let Some(v) = p.content_encoding() {
        out = out.with_content_encoding(v.clone());
    }
    if let Some(v) = p.headers() {
        out = out.with_headers(v.clone());
    }
    if let Some(v) = p.delivery_mode() {
        out = out.with_delivery_mode(*v);
    }
    if let Some(v) = p.priority() {
        out = out.with_priority(*v);
    }
    if let Some(v) = p.correlation_id() {
        out = out.with_correlation_id(v.clone());
    }
    if let Some(v) = p.reply_to() {
        out = out.with_reply_to(v.clone());
    }
    if let Some(v) = p.message_id() {
        out = out.with_message_id(v.clone());
    }
    if let Some(v) = p.timestamp() {
        out = out.with_timestamp(*v);
    }
    if let Some(v) = p.kind() {
        out = out.with_type(v.clone());
    }
    if let Some(v) = p.user_id() {
        out = out.with_user_id(v.clone());
    }
    if let Some(v) = p.app_id() {
        out = out.with_app_id(v.clone());
    }
    if let Some(v) = p.cluster_id() {
        out = out.with_cluster_id(v.clone());
    }
    out
}
