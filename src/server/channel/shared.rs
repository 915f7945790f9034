//! The part of a channel that queues reach from other tasks: delivery tags, the unacked list,
//! the channel-wide prefetch window, flow, and the channel's consumers.
//!
//! Lock order: a queue's lock may be held when this channel's lock is taken (deliveries), and
//! this channel's lock may be held when the outbox lock is taken (frames are written under the
//! channel lock so delivery tags reach the wire in order). Never the other way round: settling
//! acks takes entries out under this lock, releases it, then calls the queues.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use amq_protocol::protocol::AMQPClass;
use bytes::BytesMut;
use parking_lot::Mutex;
use warren_protocol::{AmqpError, encode};

use crate::broker::consumer::Consumer;
use crate::broker::message::QueuedMessage;
use crate::broker::message_counts::MessageCounts;
use crate::broker::publish::CommitListener;
use crate::broker::queue::Queue;
use crate::server::connection::ConnectionShared;

mod delivery;

use super::confirms::ConfirmTracker;
use super::content;
use warren_protocol::method;

/// The commit token that means "reply tx.commit-ok" rather than a confirm sequence number.
pub const TX_COMMIT_TOKEN: u64 = u64::MAX;

/// A delivery awaiting ack, reject or nack.
pub struct Unacked {
    pub tag: u64,
    pub queue: Arc<Queue>,
    pub message: QueuedMessage,
    /// `None` for basic.get deliveries.
    pub consumer: Option<Arc<Consumer>>,
    /// When the consumer acknowledgement timeout runs out ([`clock::now_ms`]); 0 = never.
    pub ack_deadline: u64,
}

pub struct ConsumerEntry {
    pub queue: Arc<Queue>,
    pub consumer: Arc<Consumer>,
}

/// A channel's consumers, each with its queue.
pub(super) type ConsumersWithQueues = Vec<(Arc<Queue>, Arc<Consumer>)>;

pub struct ChannelShared {
    pub id: u16,
    connection: Arc<ConnectionShared>,
    state: Mutex<DeliveryState>,
    confirms: Mutex<ConfirmTracker>,
    /// Settings the management API shows (about.rs).
    pub settings: super::about::ChannelSettings,
    /// This channel's message counters (RabbitMQ's channel `message_stats`; folded into the
    /// connection's when the channel closes). Each has one writer at a time: this channel's
    /// task, or the delivery lock (`state`) for deliveries, or the `confirms` lock.
    pub counts: Arc<MessageCounts>,
    /// A tx.commit's writes failed to commit: the connection task closes this channel (541).
    commit_failed: AtomicBool,
}

struct DeliveryState {
    next_tag: u64,
    /// Ordered by tag (tags only grow).
    unacked: VecDeque<Unacked>,
    /// basic.qos global=true; 0 = unlimited.
    global_prefetch: u32,
    /// Consumer deliveries awaiting ack (what the global window counts).
    global_unacked: u32,
    flow_active: bool,
    closed: bool,
    consumers: HashMap<String, ConsumerEntry>,
    /// The consumer tag of this channel's direct reply-to consumer.
    reply_consumer: Option<String>,
    /// While this channel deletes a queue: tags of consumers the deletion cancelled, whose
    /// basic.cancel must follow the queue.delete-ok (RabbitMQ's order; py-amqp fails a
    /// queue_delete that meets a cancel first).
    deferred_cancels: Option<Vec<String>>,
}

/// What to do with settled deliveries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Acked: gone.
    Remove,
    /// Rejected or nacked without requeue: gone, dead-lettered if the queue says so.
    Reject,
    /// Back to the queue, marked redelivered.
    Requeue,
    /// Rejected or nacked with requeue: back to the queue, or after the queue's next retry
    /// delay (`x-retry-delays`).
    Retry,
}

impl ChannelShared {
    pub fn new(id: u16, connection: Arc<ConnectionShared>) -> Self {
        ChannelShared {
            id,
            connection,
            state: Mutex::new(DeliveryState {
                next_tag: 1,
                unacked: VecDeque::new(),
                global_prefetch: 0,
                global_unacked: 0,
                flow_active: true,
                closed: false,
                consumers: HashMap::new(),
                reply_consumer: None,
                deferred_cancels: None,
            }),
            confirms: Mutex::new(ConfirmTracker::default()),
            settings: Default::default(),
            counts: Arc::default(),
            commit_failed: AtomicBool::new(false),
        }
    }

    /// True once, after a tx.commit of this channel failed to reach the disk.
    pub fn take_commit_failure(&self) -> bool {
        self.commit_failed.swap(false, Ordering::AcqRel)
    }

    pub fn set_reply_consumer(&self, tag: Option<String>) {
        self.state.lock().reply_consumer = tag;
    }

    pub fn reply_consumer(&self) -> Option<String> {
        self.state.lock().reply_consumer.clone()
    }

    /// A confirm-mode publish: its sequence number, pending until settled.
    pub fn register_confirm(&self) -> u64 {
        self.confirms.lock().register()
    }

    /// Settles a confirm; it is sent at the next [`ChannelShared::flush_confirms`].
    pub fn settle_confirm(&self, seq: u64, ok: bool) {
        let mut confirms = self.confirms.lock();
        confirms.settle(seq, ok);
        // Not once the channel is gone: its counts may already be folded into the connection's.
        if ok && !confirms.is_closed() {
            MessageCounts::bump(&self.counts.confirm, 1);
        }
    }

    /// Counts a message that passed the broker's checks and what routing made of it.
    pub fn count_received(&self) {
        MessageCounts::bump(&self.counts.publish, 1);
    }

    pub fn count_routed(&self, outcome: &crate::broker::publish::PublishOutcome) {
        let counts = &self.counts;
        let counter = match (outcome.routed, &outcome.returned) {
            (0, Some(_)) => &counts.return_unroutable,
            (0, None) => &counts.drop_unroutable,
            _ => &counts.routed,
        };
        MessageCounts::bump(counter, 1);
    }

    /// basic.get found the queue empty.
    pub fn count_get_empty(&self) {
        MessageCounts::bump(&self.counts.get_empty, 1);
    }

    /// Sends settled confirms (once per batch of frames, and after each store commit).
    pub fn flush_confirms(&self) {
        self.send_settled_confirms(false);
    }

    /// `now`: the caller is off the runtime and may write to the socket itself
    /// ([`super::super::outbox::Outbox::push_now`]).
    fn send_settled_confirms(&self, now: bool) {
        let mut confirms = self.confirms.lock();
        let mut pending = BytesMut::new();
        if confirms.flush(self.id, &mut pending) {
            let write = |out: &mut BytesMut| out.extend_from_slice(&pending);
            if now {
                self.connection.outbox.push_now(write);
            } else {
                self.connection.outbox.push(write);
            }
        }
    }

    /// The channel is closing: sends what is settled, then nothing more on this channel id,
    /// whatever the store commits later (under the same lock, so no confirm can slip past).
    pub fn close_confirms(&self) {
        self.flush_confirms();
        self.confirms.lock().close();
    }

    fn frame_max(&self) -> u32 {
        self.connection.frame_max.load(Ordering::Relaxed)
    }

    /// basic.get: assigns a tag, records the delivery unless `no_ack`, writes get-ok + content.
    pub fn deliver_get(
        &self,
        queue: &Arc<Queue>,
        message: QueuedMessage,
        no_ack: bool,
        remaining: u32,
    ) {
        let mut st = self.state.lock();
        self.counts.bump_delivery(true, no_ack, message.redelivered);
        let tag = st.next_tag;
        st.next_tag += 1;
        let m = &message.message;
        let frame_max = self.frame_max();
        self.connection.outbox.push_frames(|out| {
            encode::get_ok(
                out,
                self.id,
                tag,
                message.redelivered,
                &m.exchange,
                &m.routing_key,
                remaining,
            );
            content::write(out, self.id, queue, &message, frame_max);
        });
        if !no_ack {
            st.unacked.push_back(Unacked {
                tag,
                queue: queue.clone(),
                message,
                consumer: None,
                ack_deadline: 0,
            });
        }
    }

    /// Takes the deliveries an ack/nack/reject names: `tag` alone, or every tag up to it with
    /// `multiple` (`0` + multiple = all). 406 for a tag that is not outstanding.
    pub fn take_settled(&self, tag: u64, multiple: bool) -> Result<Vec<Unacked>, AmqpError> {
        let mut st = self.state.lock();
        let taken: Vec<Unacked> = if multiple {
            if tag != 0 && st.unacked.binary_search_by_key(&tag, |u| u.tag).is_err() {
                return Err(unknown_tag(tag));
            }
            let upto = if tag == 0 {
                st.unacked.len()
            } else {
                st.unacked.partition_point(|u| u.tag <= tag)
            };
            st.unacked.drain(..upto).collect()
        } else {
            let pos = st
                .unacked
                .binary_search_by_key(&tag, |u| u.tag)
                .map_err(|_| unknown_tag(tag))?;
            st.unacked.remove(pos).into_iter().collect()
        };
        let from_consumers = taken.iter().filter(|u| u.consumer.is_some()).count() as u32;
        st.global_unacked = st.global_unacked.saturating_sub(from_consumers);
        Ok(taken)
    }

    /// The consumer acknowledgement timeout (in ms) of the oldest outstanding consumer delivery,
    /// if it has run out.
    pub fn ack_timed_out(&self, now: u64) -> Option<u64> {
        let st = self.state.lock();
        let oldest = st.unacked.iter().find(|u| u.ack_deadline != 0)?;
        (oldest.ack_deadline < now).then(|| oldest.queue.consumer_timeout().unwrap_or(0))
    }

    /// Whether an outstanding delivery has an acknowledgement deadline.
    pub fn has_ack_deadlines(&self) -> bool {
        self.state
            .lock()
            .unacked
            .iter()
            .any(|u| u.ack_deadline != 0)
    }

    /// Every outstanding delivery (channel closing, basic.recover).
    pub fn take_all_unacked(&self) -> Vec<Unacked> {
        let mut st = self.state.lock();
        st.global_unacked = 0;
        st.unacked.drain(..).collect()
    }

    /// Settles deliveries taken out of the unacked list, one queue call per queue and
    /// consumer (as RabbitMQ groups a channel's settlements by queue): a channel closing with
    /// deliveries from many queues interleaved requeues each queue's once, not one by one.
    /// Then lets consumers use the freed window.
    pub fn settle(&self, entries: Vec<Unacked>, how: Settlement) {
        if matches!(how, Settlement::Remove) {
            MessageCounts::bump(&self.counts.ack, entries.len() as u64);
        }
        for group in by_queue_and_consumer(entries) {
            let (queue, consumer) = (&group.queue, group.consumer.as_ref());
            match how {
                Settlement::Remove => queue.settle(consumer, &group.messages),
                Settlement::Reject => queue.reject(consumer, &group.messages),
                Settlement::Requeue => queue.requeue(consumer, group.messages),
                Settlement::Retry => queue.retry(consumer, group.messages),
            }
        }
        if self.state.lock().global_prefetch > 0 {
            self.resume_deliveries();
        }
    }

    /// Puts deliveries back into the unacked list (tx.rollback undoing its acks).
    pub fn restore_unacked(&self, entries: Vec<Unacked>) {
        let mut st = self.state.lock();
        let from_consumers = entries.iter().filter(|u| u.consumer.is_some()).count() as u32;
        st.global_unacked += from_consumers;
        if entries.iter().any(|u| u.ack_deadline != 0) {
            self.connection.arm_ack_deadlines();
        }
        let mut all: Vec<Unacked> = st.unacked.drain(..).chain(entries).collect();
        all.sort_by_key(|u| u.tag);
        st.unacked = all.into();
    }

    /// Unacked deliveries, the global prefetch, and each consumer with its queue (about.rs).
    pub(super) fn delivery_snapshot(&self) -> (u32, u32, ConsumersWithQueues) {
        let st = self.state.lock();
        let consumers = st
            .consumers
            .values()
            .map(|e| (e.queue.clone(), e.consumer.clone()))
            .collect();
        (st.unacked.len() as u32, st.global_prefetch, consumers)
    }

    /// Whether basic.qos set a channel-wide (global) prefetch.
    pub fn has_global_prefetch(&self) -> bool {
        self.state.lock().global_prefetch > 0
    }

    pub fn set_global_prefetch(&self, count: u32) {
        self.state.lock().global_prefetch = count;
        self.resume_deliveries();
    }

    pub fn set_flow(&self, active: bool) {
        self.state.lock().flow_active = active;
        if active {
            self.resume_deliveries();
        }
    }

    /// Registers a consumer tag; 530 NOT_ALLOWED if the tag is in use on this channel.
    pub fn add_consumer(
        &self,
        queue: Arc<Queue>,
        consumer: Arc<Consumer>,
    ) -> Result<(), AmqpError> {
        let mut st = self.state.lock();
        if st.consumers.contains_key(&consumer.tag) {
            return Err(AmqpError::not_allowed(format_args!(
                "attempt to reuse consumer tag '{}'",
                consumer.tag
            )));
        }
        st.consumers
            .insert(consumer.tag.clone(), ConsumerEntry { queue, consumer });
        Ok(())
    }

    pub fn remove_consumer(&self, tag: &str) -> Option<ConsumerEntry> {
        self.state.lock().consumers.remove(tag)
    }

    /// Stops deliveries for good and returns the consumers to detach.
    pub fn close(&self) -> Vec<ConsumerEntry> {
        let mut st = self.state.lock();
        st.closed = true;
        st.consumers.drain().map(|(_, e)| e).collect()
    }

    /// Puts this channel's consumers back into their queues' rotation (flow, the channel-wide
    /// prefetch or the outbox let them take more) and has each queue deliver what it can: one
    /// call per queue, so that its consumers here keep their turn order.
    pub fn resume_deliveries(&self) {
        let mut by_queue: Vec<(Arc<Queue>, Vec<Arc<Consumer>>)> = Vec::new();
        for entry in self.state.lock().consumers.values() {
            match by_queue
                .iter_mut()
                .find(|(q, _)| Arc::ptr_eq(q, &entry.queue))
            {
                Some((_, consumers)) => consumers.push(entry.consumer.clone()),
                None => by_queue.push((entry.queue.clone(), vec![entry.consumer.clone()])),
            }
        }
        for (queue, consumers) in by_queue {
            queue.resume(&consumers);
        }
    }

    fn write(&self, class: AMQPClass) {
        let id = self.id;
        self.connection
            .outbox
            .push(|out| encode::method(out, id, &class));
    }
}

fn unknown_tag(tag: u64) -> AmqpError {
    AmqpError::precondition(format_args!("unknown delivery tag {tag}")).on_method(method::BASIC_ACK)
}

impl CommitListener for ChannelShared {
    fn committed(&self, token: u64, ok: bool) {
        if token == TX_COMMIT_TOKEN {
            // Held while writing: a channel closing meanwhile gets no commit-ok after close-ok.
            let confirms = self.confirms.lock();
            if confirms.is_closed() {
                return;
            }
            if ok {
                self.write(AMQPClass::Tx(
                    amq_protocol::protocol::tx::AMQPMethod::CommitOk(
                        amq_protocol::protocol::tx::CommitOk {},
                    ),
                ));
            } else {
                // Never commit-ok, and not silence either (the client would wait forever): the
                // connection task closes the channel with 541 (see Connection::run).
                tracing::error!(
                    channel = self.id,
                    "tx.commit did not reach the disk; closing the channel"
                );
                self.commit_failed.store(true, Ordering::Release);
                self.connection.commit_failures.notify_one();
            }
            return;
        }
        self.settle_confirm(token, ok);
    }

    fn released(&self) {
        // On the store's writer thread: straight to the socket when it can (outbox.rs).
        self.send_settled_confirms(true);
    }
}

impl crate::broker::consumer::ReplyTarget for ChannelShared {
    fn deliver_reply(&self, m: &crate::broker::message::Message) {
        let mut st = self.state.lock();
        let Some(tag) = st.reply_consumer.clone() else {
            return;
        };
        if st.closed {
            return;
        }
        let delivery_tag = st.next_tag;
        st.next_tag += 1;
        let frame_max = self.frame_max();
        self.connection.outbox.push(|out| {
            encode::deliver(
                out,
                self.id,
                &tag,
                delivery_tag,
                false,
                &m.exchange,
                &m.routing_key,
            );
            encode::content(out, self.id, m.properties.raw(), &m.body, frame_max);
        });
    }
}

/// Deliveries of one queue to one consumer (or to basic.get: `None`), in delivery order.
struct SettleGroup {
    queue: Arc<Queue>,
    consumer: Option<Arc<Consumer>>,
    messages: Vec<QueuedMessage>,
}

/// `entries` grouped by queue and consumer, groups in the order they first appear.
fn by_queue_and_consumer(entries: Vec<Unacked>) -> Vec<SettleGroup> {
    let identity = |queue: &Arc<Queue>, consumer: &Option<Arc<Consumer>>| {
        (
            Arc::as_ptr(queue) as usize,
            consumer.as_ref().map_or(0, |c| Arc::as_ptr(c) as usize),
        )
    };
    let mut groups: Vec<SettleGroup> = Vec::new();
    // Searched linearly while there are few groups (a single ack allocates no map).
    let mut index: HashMap<(usize, usize), usize> = HashMap::new();
    for entry in entries {
        let key = identity(&entry.queue, &entry.consumer);
        let found = if groups.len() <= 8 {
            groups
                .iter()
                .rposition(|g| identity(&g.queue, &g.consumer) == key)
        } else {
            if index.is_empty() {
                for (i, g) in groups.iter().enumerate() {
                    index.insert(identity(&g.queue, &g.consumer), i);
                }
            }
            index.get(&key).copied()
        };
        let at = match found {
            Some(at) => at,
            None => {
                groups.push(SettleGroup {
                    queue: entry.queue.clone(),
                    consumer: entry.consumer.clone(),
                    messages: Vec::new(),
                });
                if !index.is_empty() {
                    index.insert(key, groups.len() - 1);
                }
                groups.len() - 1
            }
        };
        groups[at].messages.push(entry.message);
    }
    groups
}
