//! One queue: its ready messages (FIFO by sequence number), its consumers (round-robin), and the
//! count of messages delivered but not yet settled.
//!
//! State sits behind one short `Mutex`; every operation takes it once. Delivery happens under the
//! lock, straight into the consumer's channel (see [`DeliveryTarget`](crate::broker::consumer::DeliveryTarget)), so a publish to a queue
//! with a waiting consumer costs one lock and one write into that consumer's write buffer. The
//! one exception is paging the backlog in from the store (page_in.rs): the lock is released
//! during the read, so callers of [`Queue::dispatch_paging`] must not assume the state stayed
//! put across it. This file must not know about sockets or frames.
//!
//! Some of `impl Queue` lives in sibling files, one concern each: length limits (limits.rs),
//! time (ttl.rs), paging (paging.rs, page_in.rs), basic.get (basic_get.rs) and adding consumers and
//! delivering to them (dispatch.rs). They reach the
//! state through `pub(super)` fields.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::{Condvar, Mutex, MutexGuard};
use warren_protocol::AmqpError;

use super::args::{Overflow, QueueType};
use super::backlog::{Backlog, Drained, PagedRef};
use super::consumers::ConsumerSet;
use super::dead_letter::{self, DeadLetters, Reason};
use super::options::QueueOptions;
use super::paging::Paging;
use super::ready::Ready;
use super::settings::QueueSettings;
use super::stream::{Retention, StreamLog};
use crate::broker::clock;
use crate::broker::consumer::Consumer;
use crate::broker::deadlines::Registered;
use crate::broker::delayed::Schedule;
use crate::broker::message::{Message, QueuedMessage};
use crate::broker::message_counts::MessageCounts;
use crate::broker::names;
use crate::broker::policy::{Applied, QueuePolicyValues};
use crate::broker::replication::{QueueReplica, Settlement};
use crate::broker::vhost::VHost;
use crate::store::Store;

pub struct Queue {
    pub name: Arc<str>,
    pub vhost: Arc<str>,
    pub options: QueueOptions,
    /// Durable queues keep their persistent messages in the store under this id.
    pub persistence: Option<Persistence>,
    /// Where the backlog beyond the queue's threshold goes (paging.rs); `None` without a
    /// store, and for streams.
    pub(super) paging: Option<Paging>,
    /// `x-consumer-timeout`, or the broker's default; `None` = off.
    pub(super) consumer_timeout: Option<u64>,
    /// The vhost dead letters are routed through.
    pub(super) vhost_ref: Weak<VHost>,
    /// Last use, for `x-expires` ([`clock::now_ms`]).
    pub(super) last_used: AtomicU64,
    /// The deadline registered with the vhost's timer, if any (see ttl.rs).
    pub(super) deadline: Registered,
    pub(super) state: Mutex<QueueState>,
    /// Messages enqueued, delivered, got and acknowledged (RabbitMQ's queue `message_stats`),
    /// counted under `state`'s lock, which every one of those operations holds anyway.
    pub counts: MessageCounts,
    /// Signalled when a page-in ends (`QueueState::paging_in` cleared): basic.get waits on it.
    pub(super) paged_in: Condvar,
    /// Messages waiting for their next attempt (`x-retry-delays`, retry.rs).
    pub(super) retries: OnceLock<Arc<Schedule>>,
    /// A quorum queue on a cluster node: its messages and consumers live in its Raft group
    /// (replica.rs).
    pub(super) replica: OnceLock<Arc<dyn QueueReplica>>,
}

/// How deliveries were settled.
enum Settled {
    Acked,
    /// Rejected without requeue (dead-lettered if the queue says so).
    Dropped(Reason),
    /// Gone to wait for a retry (retry.rs).
    Retried,
}

/// Where a durable queue's index lives in the store.
pub struct Persistence {
    pub store: Arc<Store>,
    pub queue_id: u64,
}

/// A message that left for a dead-letter reason, routed once the lock is released.
pub(super) enum Dead {
    Loaded(Arc<Message>),
    /// Its body is read then (page_in.rs), once.
    Paged(PagedRef),
}

pub(super) struct QueueState {
    /// What the queue acts on: its arguments merged with the policies that apply (settings.rs).
    pub(super) settings: QueueSettings,
    /// The policies that apply, as the API shows them.
    pub(super) applied: Applied,
    pub(super) ready: Ready,
    /// Messages after `ready` in FIFO order (per priority level), bodies in the store.
    pub(super) backlog: Backlog,
    /// A page-in is reading the front of the backlog with the lock released: nobody else pages
    /// in until it is back (see page_in.rs).
    pub(super) paging_in: bool,
    pub(super) next_seq: u64,
    pub(super) consumers: ConsumerSet,
    /// Delivered (to consumers or basic.get) and not yet acked, rejected or requeued.
    pub(super) unacked: usize,
    /// Their body bytes (the management API's `message_bytes_unacknowledged`).
    pub(super) unacked_bytes: u64,
    /// Set once any consumer attached: auto-delete applies only after that.
    pub(super) had_consumer: bool,
    pub(super) deleted: bool,
    /// Messages that left for a dead-letter reason, routed once the lock is released.
    pub(super) dead: Vec<(Dead, Reason)>,
    /// A stream's log (stream/); `None` for classic and quorum queues.
    pub(super) stream: Option<Box<StreamLog>>,
    /// A quorum queue's at-least-once dead letters, kept until their targets have them.
    pub(super) dead_letters: DeadLetters,
}

/// What removing a consumer left behind.
#[derive(Debug, PartialEq, Eq)]
pub enum ConsumerRemoved {
    NotFound,
    Removed,
    /// The last consumer of an auto-delete queue went: the caller deletes the queue.
    RemovedLastOfAutoDelete,
}

impl Queue {
    pub fn new(
        name: Arc<str>,
        vhost: Arc<str>,
        options: QueueOptions,
        persistence: Option<Persistence>,
        vhost_ref: Weak<VHost>,
    ) -> Self {
        let args = &options.arguments;
        let consumer_timeout = args
            .consumer_timeout_ms
            .or_else(crate::broker::consumer::default_timeout)
            .filter(|t| *t > 0);
        let state = QueueState {
            settings: QueueSettings::new(args, &QueuePolicyValues::default()),
            applied: Applied::default(),
            ready: Ready::new(args.max_priority),
            backlog: Backlog::new(args.max_priority),
            paging_in: false,
            next_seq: 0,
            consumers: ConsumerSet::new(args.single_active_consumer),
            unacked: 0,
            unacked_bytes: 0,
            had_consumer: false,
            deleted: false,
            dead: Vec::new(),
            stream: (args.queue_type == QueueType::Stream)
                .then(|| Box::new(StreamLog::new(Retention::of(args, &Default::default())))),
            dead_letters: DeadLetters::default(),
        };
        Queue {
            name,
            vhost,
            options,
            persistence,
            paging: None,
            consumer_timeout,
            vhost_ref,
            last_used: AtomicU64::new(clock::now_ms()),
            deadline: Registered::default(),
            state: Mutex::new(state),
            counts: MessageCounts::default(),
            paged_in: Condvar::new(),
            retries: OnceLock::new(),
            replica: OnceLock::new(),
        }
    }

    /// Pages the backlog beyond the threshold to the store (not for streams: their log is
    /// theirs).
    pub fn with_paging(mut self, paging: Paging) -> Self {
        if !self.is_stream() {
            self.paging = Some(paging);
        }
        self
    }

    /// Whether this queue stores `message`: a durable queue with a store keeps a persistent
    /// message, a quorum queue every message (the store holds it when `store_id` is set).
    pub(super) fn stores(&self, message: &QueuedMessage) -> Option<(&Persistence, u64)> {
        let id = message.message.store_id.filter(|_| !self.is_stream())?;
        let persistence = self.persistence.as_ref()?;
        (self.is_quorum() || message.message.is_persistent()).then_some((persistence, id))
    }

    /// A quorum queue: stores every message, whatever its delivery mode.
    pub fn is_quorum(&self) -> bool {
        self.options.arguments.queue_type == super::args::QueueType::Quorum
    }

    /// A stream: an append-only log (stream/).
    pub fn is_stream(&self) -> bool {
        self.options.arguments.queue_type == QueueType::Stream
    }

    /// Whether a message routed here must be stored as a message record: a persistent one in
    /// a durable queue, any one in a quorum queue. (A stream stores its own copy in its log.)
    pub fn must_store(&self, persistent: bool) -> bool {
        self.replica.get().is_none()
            && self.persistence.is_some()
            && !self.is_stream()
            && (persistent || self.is_quorum())
    }

    /// The queue is done with these messages: their index entries go from the store.
    pub(super) fn forget_stored<'a>(&self, messages: impl IntoIterator<Item = &'a QueuedMessage>) {
        if self.persistence.is_none() {
            return;
        }
        for m in messages {
            if let Some((p, id)) = self.stores(m) {
                self.remove_entry(&p.store, p.queue_id, m.seq, id);
            }
        }
    }

    /// A message leaves the queue without being delivered: out of the store, and through the
    /// dead-letter exchange if the queue has one.
    pub(super) fn drop_message(&self, st: &mut QueueState, m: QueuedMessage, reason: Reason) {
        let Some(m) = self.hold_dead_letter(st, m, reason) else {
            return; // kept until its targets have it (dead_letter/at_least_once.rs)
        };
        self.forget_stored([&m]);
        if st.settings.dead_letter.is_some() {
            st.dead.push((Dead::Loaded(m.message), reason));
        }
    }

    /// Registers the next deadline if the operation brought an earlier one, releases the lock,
    /// then routes what left for a dead-letter reason meanwhile (outside the lock: the
    /// dead-letter queue may be this one, or route back to it).
    pub(super) fn finish(self: &Arc<Self>, mut st: MutexGuard<'_, QueueState>) {
        self.schedule_locked(&st);
        let forward = self.dead_letters_due(&st);
        if st.dead.is_empty() && !forward {
            return;
        }
        let dead = std::mem::take(&mut st.dead);
        let target = st.settings.dead_letter.clone();
        drop(st);
        let dead = self.load_dead(dead);
        if let (Some(target), Some(vhost)) = (target, self.vhost_ref.upgrade())
            && !dead.is_empty()
        {
            dead_letter::publish(&vhost, &self.name, &target, dead);
        }
        if forward {
            dead_letter::forward(self);
        }
    }

    /// The head of the in-memory ready list (see [`Queue::page_in`] for the backlog); expired
    /// heads are dropped on the way.
    pub(super) fn pop_ready(&self, st: &mut QueueState) -> Option<QueuedMessage> {
        // Read the clock only for messages that can expire (it showed at 5% of a publish).
        let mut now = None;
        loop {
            if Self::backlog_ahead(st) {
                return None; // a higher priority waits in the backlog: page it in first
            }
            let m = st.ready.pop_front()?;
            if m.expires_at == 0 || !m.is_expired(*now.get_or_insert_with(clock::now_ms)) {
                return Some(m);
            }
            self.drop_message(st, m, Reason::Expired);
        }
    }

    pub fn is_exclusive_to_other(&self, connection_id: u64) -> bool {
        matches!(self.options.exclusive_owner, Some(owner) if owner != connection_id)
    }

    /// 405 for a connection that does not own this exclusive queue.
    pub fn check_access(&self, connection_id: u64) -> Result<(), AmqpError> {
        if self.is_exclusive_to_other(connection_id) {
            return Err(self.locked());
        }
        Ok(())
    }

    /// RabbitMQ's 405 for this exclusive queue, to anyone but its owner or to a redeclare that
    /// disagrees about exclusivity.
    pub fn locked(&self) -> AmqpError {
        AmqpError::resource_locked(format_args!(
            "cannot obtain exclusive access to locked {}. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.",
            names::queue(&self.name, &self.vhost)
        ))
    }

    /// Enqueues a message and delivers what consumers can take. `false` when a full queue with
    /// `x-overflow` reject-publish(-dlx) refused it (the publisher gets a nack).
    pub fn publish(self: &Arc<Self>, message: Arc<Message>) -> bool {
        let mut st = self.state.lock();
        if st.deleted {
            return true;
        }
        if st.stream.is_some() {
            self.stream_publish(&mut st, message);
            self.finish(st);
            return true;
        }
        let overflow = st.settings.overflow;
        if overflow != Overflow::DropHead && self.would_overflow(&st, &message) {
            if overflow == Overflow::RejectPublishDlx && st.settings.dead_letter.is_some() {
                st.dead.push((Dead::Loaded(message), Reason::Maxlen));
                self.finish(st);
            }
            return false;
        }
        MessageCounts::bump(&self.counts.publish, 1);
        let seq = st.next_seq;
        st.next_seq += 1;
        // The lower of the queue's x-message-ttl and the message's expiration wins.
        let ttl = Self::ttl_of(&st, &message);
        let mut queued = QueuedMessage::new(seq, message, false);
        if let Some(ttl) = ttl {
            queued.expires_at = clock::now_ms().saturating_add(ttl);
        }
        // Sent under the queue lock, so the store sees this before any ack of the message.
        let durable_at = self.stores(&queued).map(|(p, id)| {
            let meta = self.entry_meta(&st, &queued);
            p.store.enqueue_meta(p.queue_id, seq, id, meta)
        });
        if ttl == Some(0) {
            // TTL 0: delivered only if a consumer can take it right now, else dropped.
            self.publish_now_or_never(&mut st, queued);
            self.finish(st);
            return true;
        }
        self.push_ready_or_paged(&mut st, queued, durable_at);
        // A waiting consumer gets it first; the limit applies to what is left (as RabbitMQ:
        // even x-max-length 0 still delivers to a consumer that can take the message now).
        self.dispatch_paging(&mut st);
        self.enforce_max_length(&mut st);
        self.finish(st);
        true
    }

    /// These deliveries (of `consumer`, or of basic.get when `None`) were acknowledged.
    pub fn settle(self: &Arc<Self>, consumer: Option<&Arc<Consumer>>, messages: &[QueuedMessage]) {
        self.settle_as(consumer, messages, Settled::Acked);
    }

    /// basic.reject / basic.nack without requeue: settled, and dead-lettered if configured.
    pub fn reject(self: &Arc<Self>, consumer: Option<&Arc<Consumer>>, messages: &[QueuedMessage]) {
        self.settle_as(consumer, messages, Settled::Dropped(Reason::Rejected));
    }

    /// Deliveries that left for a retry (retry.rs): settled, not counted as acknowledged.
    pub(super) fn settle_retried(
        self: &Arc<Self>,
        consumer: Option<&Arc<Consumer>>,
        messages: &[QueuedMessage],
    ) {
        self.settle_as(consumer, messages, Settled::Retried);
    }

    fn settle_as(
        self: &Arc<Self>,
        consumer: Option<&Arc<Consumer>>,
        messages: &[QueuedMessage],
        how: Settled,
    ) {
        if let Some(replica) = self.replica.get() {
            let how = match how {
                Settled::Acked => Settlement::Ack,
                Settled::Dropped(_) | Settled::Retried => Settlement::Discard,
            };
            return replica.settle(consumer, messages, how);
        }
        if self.is_stream() {
            return self.stream_settle(consumer, messages.len(), matches!(how, Settled::Acked));
        }
        let count = messages.len() as u32;
        let mut st = self.state.lock();
        match how {
            Settled::Retried => self.forget_stored(messages),
            Settled::Dropped(reason) => {
                for m in messages {
                    self.drop_message(&mut st, m.clone(), reason);
                }
            }
            Settled::Acked => {
                self.forget_stored(messages);
                MessageCounts::bump(&self.counts.ack, u64::from(count));
            }
        }
        st.unacked = st.unacked.saturating_sub(count as usize);
        st.unacked_bytes = st.unacked_bytes.saturating_sub(body_bytes(messages));
        if let Some(c) = consumer {
            c.settle(count);
            st.consumers.unpark(c);
        }
        self.dispatch_paging(&mut st);
        self.finish(st);
    }

    /// Puts unacked messages back, marked redelivered: in their original order in a classic
    /// queue, at the back in a quorum queue (quorum_returns.rs).
    pub fn requeue(
        self: &Arc<Self>,
        consumer: Option<&Arc<Consumer>>,
        mut messages: Vec<QueuedMessage>,
    ) {
        if let Some(replica) = self.replica.get() {
            return replica.settle(consumer, &messages, Settlement::Return);
        }
        if self.is_stream() {
            return self.stream_settle(consumer, messages.len(), false);
        }
        let mut st = self.state.lock();
        let count = messages.len();
        st.unacked = st.unacked.saturating_sub(count);
        st.unacked_bytes = st.unacked_bytes.saturating_sub(body_bytes(&messages));
        if let Some(c) = consumer {
            c.settle(count as u32);
            st.consumers.unpark(c);
        }
        if st.deleted {
            return;
        }
        for m in &mut messages {
            m.redelivered = true;
        }
        let messages = self.count_returns(&mut st, messages);
        if self.is_quorum() {
            self.requeue_at_back(&mut st, messages);
        } else {
            st.ready.requeue(messages);
        }
        self.dispatch_paging(&mut st);
        if st.settings.overflow == Overflow::DropHead {
            // As RabbitMQ's requeue (maybe_drop_head): a drop-head queue is back within its
            // limits once the requeue is over; reject-publish queues only refuse publishes.
            self.enforce_max_length(&mut st);
        }
        self.finish(st);
    }

    /// Drops every ready message; returns how many.
    pub fn purge(&self) -> u32 {
        if let Some(replica) = self.replica.get() {
            return replica.purge();
        }
        let mut st = self.state.lock();
        let n = st.ready.len() as u64 + st.backlog.len();
        self.forget_stored(st.ready.iter());
        st.ready.clear();
        let st = &mut *st;
        st.backlog.drain(|drained| match drained {
            Drained::InMemory(m, r) => {
                self.forget_stored([&m]);
                if r.spilled {
                    self.forget_paged(&r);
                }
            }
            Drained::Paged(run) => self.forget_run(run),
        });
        self.drop_retries(false);
        n as u32
    }

    /// Marks the queue deleted and empties it; returns the consumers to notify and the number
    /// of ready messages dropped.
    pub fn mark_deleted(&self) -> (Vec<Arc<Consumer>>, u32) {
        let replicated = self.replica.get().map(|replica| {
            let ready = replica.counts().ready;
            replica.stop();
            ready
        });
        let mut st = self.state.lock();
        st.deleted = true;
        self.unschedule();
        let n = Self::ready_count(&st);
        st.ready.clear();
        st.backlog.drain(|_| {});
        st.stream = None;
        if let Some(p) = &self.persistence {
            p.store.drop_queue(p.queue_id);
        }
        if let Some(p) = &self.paging {
            p.store.drop_queue(p.spill_id);
        }
        self.drop_retries(true);
        (st.consumers.take_all(), replicated.unwrap_or(n))
    }

    pub fn is_deleted(&self) -> bool {
        self.state.lock().deleted
    }
}

/// The body bytes of `messages`.
fn body_bytes(messages: &[QueuedMessage]) -> u64 {
    messages.iter().map(|m| m.message.body.len() as u64).sum()
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("name", &self.name)
            .field("vhost", &self.vhost)
            .finish()
    }
}
