//! A quorum queue as this node's broker sees it: the [`QueueReplica`] its `Queue` hands
//! publishes, consumers, settlements, gets and purges to. Everything becomes a command
//! proposed to the queue's group through one batcher per queue on this node (one proposal in
//! flight, every command that waited meanwhile in the next entry, retried on a new leader and
//! deduplicated there by the batch's sequence number). Deliveries come back from the state
//! machine as it applies entries ([`LocalConsumers::deliver`]) and go to this node's
//! consumers; a channel that cannot take one now keeps it waiting here until it can.
//!
//! This file must not decide who gets a message: the machine (machine.rs) does, the same on
//! every node.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::batching::{Batching, Waiter, run_batcher};
use super::machine::{Batch, Command, ConsumerKey, Delivery, GET_CONSUMER, Proposer, Reply};
use super::merger::Merger;
use super::state_machine::SharedMachine;
use super::{Payload, Proposal, QuorumRaft};
use crate::broker::consumer::Consumer;
use crate::broker::message::{Message, QueuedMessage};
use crate::broker::queue::Queue;
use crate::broker::replication::{CommitWait, QueueReplica, ReplicaCounts, Settlement};
use crate::cluster::messages::Proposed;
use crate::cluster::peer_link::Peers;

/// A consumer the machine does not know (dropped while this node was cut off) joins again
/// after this long without its checkout being applied.
const REJOIN_AFTER: Duration = Duration::from_secs(2);

/// This node's consumers of one quorum queue, and what waits for them.
pub struct LocalConsumers {
    node: u64,
    incarnation: u64,
    queue: OnceLock<Weak<Queue>>,
    inner: Mutex<LocalInner>,
}

#[derive(Default)]
struct LocalInner {
    consumers: HashMap<u64, LocalConsumer>,
    next_id: u64,
    /// Assigned to a consumer of this node that is gone: to be returned (by the next tick).
    unclaimed: Vec<(ConsumerKey, u64)>,
}

struct LocalConsumer {
    consumer: Arc<Consumer>,
    cancelled: bool,
    /// Assigned to it, not yet taken by its channel.
    waiting: VecDeque<QueuedMessage>,
    /// A thread is writing `waiting` out: others leave it to that one (deliveries stay in
    /// order).
    flushing: bool,
    /// When its checkout was last proposed.
    joined: Instant,
}

impl LocalConsumers {
    pub fn new(node: u64, incarnation: u64) -> Arc<LocalConsumers> {
        Arc::new(LocalConsumers {
            node,
            incarnation,
            queue: OnceLock::new(),
            inner: Mutex::new(LocalInner {
                next_id: GET_CONSUMER + 1,
                ..LocalInner::default()
            }),
        })
    }

    fn key(&self, id: u64) -> ConsumerKey {
        ConsumerKey {
            node: self.node,
            incarnation: self.incarnation,
            id,
        }
    }

    /// Hands what the machine just assigned to this node's consumers to them.
    pub fn deliver(&self, deliveries: Vec<Delivery<Arc<Message>>>) {
        let mut touched = Vec::new();
        {
            let mut inner = self.inner.lock();
            for d in deliveries {
                if d.consumer.node != self.node || d.consumer.incarnation != self.incarnation {
                    continue;
                }
                match inner.consumers.get_mut(&d.consumer.id) {
                    Some(local) if !local.cancelled => {
                        local.waiting.push_back(QueuedMessage {
                            seq: d.id,
                            message: d.message,
                            redelivered: d.delivery_count > 0,
                            expires_at: 0,
                            delivery_count: d.delivery_count,
                        });
                        if !touched.contains(&d.consumer.id) {
                            touched.push(d.consumer.id);
                        }
                    }
                    _ if !d.no_ack => inner.unclaimed.push((d.consumer, d.id)),
                    _ => {}
                }
            }
        }
        for id in touched {
            self.flush(id);
        }
    }

    /// Writes what waits for consumer `id` while its channel takes it. One thread at a time
    /// per consumer: another one finding it busy leaves its messages to it.
    fn flush(&self, id: u64) {
        let Some(queue) = self.queue.get().and_then(Weak::upgrade) else {
            return;
        };
        {
            let mut inner = self.inner.lock();
            match inner.consumers.get_mut(&id) {
                Some(local) if !local.flushing => local.flushing = true,
                _ => return,
            }
        }
        loop {
            let (consumer, message) = {
                let mut inner = self.inner.lock();
                let Some(local) = inner.consumers.get_mut(&id) else {
                    return;
                };
                let next = if local.cancelled || !local.consumer.has_credit() {
                    None
                } else {
                    local.waiting.pop_front()
                };
                let Some(message) = next else {
                    local.flushing = false;
                    return;
                };
                (local.consumer.clone(), message)
            };
            match consumer.channel.try_deliver(&consumer, &queue, message) {
                Ok(()) => consumer.record_delivery(),
                Err(message) => {
                    // Put back, and stop: the channel resumes this consumer when it can.
                    let mut inner = self.inner.lock();
                    if let Some(local) = inner.consumers.get_mut(&id) {
                        local.waiting.push_front(message);
                        local.flushing = false;
                    }
                    return;
                }
            }
        }
    }

    fn id_of(inner: &LocalInner, consumer: &Arc<Consumer>) -> Option<u64> {
        inner
            .consumers
            .iter()
            .find(|(_, l)| Arc::ptr_eq(&l.consumer, consumer))
            .map(|(id, _)| *id)
    }
}

/// One quorum queue's group as this node's broker uses it.
pub struct QueueFront {
    group: u64,
    /// What the status page calls it.
    pub label: String,
    pub raft: QuorumRaft,
    pub shared: SharedMachine,
    pub local: Arc<LocalConsumers>,
    proposals: mpsc::UnboundedSender<(Proposal, Waiter)>,
    stopped: Arc<AtomicBool>,
    commit_timeout: Duration,
    merger: Merger,
    /// The sequence of [`QueueFront::propose_once`]'s batches.
    once_seq: AtomicU64,
    /// This node's consumers from before its restart were dropped (registry.rs proposes it).
    pub cleared_old_self: AtomicBool,
    on_stop: Box<dyn Fn(u64) + Send + Sync>,
}

impl QueueFront {
    /// Starts the queue's batcher on the current runtime.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        group: u64,
        label: String,
        raft: QuorumRaft,
        shared: SharedMachine,
        local: Arc<LocalConsumers>,
        merger: Merger,
        peers: Arc<Peers>,
        commit_timeout: Duration,
        on_stop: Box<dyn Fn(u64) + Send + Sync>,
    ) -> Arc<QueueFront> {
        let (proposals, queue) = mpsc::unbounded_channel();
        let proposer = Proposer {
            node: local.node,
            incarnation: local.incarnation,
        };
        let stopped = Arc::new(AtomicBool::new(false));
        tokio::spawn(run_batcher(
            Batching {
                stopped: stopped.clone(),
                again: proposals.downgrade(),
                raft: raft.clone(),
                merger: merger.clone(),
                peers,
                group,
                proposer,
                commit_timeout,
            },
            queue,
        ));
        Arc::new(QueueFront {
            group,
            label,
            raft,
            shared,
            local,
            proposals,
            stopped,
            commit_timeout,
            merger,
            once_seq: AtomicU64::new(0),
            cleared_old_self: AtomicBool::new(false),
            on_stop,
        })
    }

    fn propose(&self, command: Proposal, waiter: Waiter) {
        if let Err(mpsc::error::SendError((_, waiter))) = self.proposals.send((command, waiter)) {
            let _ = waiter.tell(None);
        }
    }

    /// Proposes `command` and waits for its reply (`None`: not committed in time).
    pub fn propose_and_wait(&self, command: Proposal) -> Option<Reply<Payload>> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.propose(command, Waiter::Reply(tx));
        // Bounded: the batcher keeps trying, but a basic.get or a purge gets its answer (none)
        // once the commit timeout has passed.
        let timeout = self.commit_timeout;
        let wait = || rx.recv_timeout(timeout).ok().flatten();
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }

    /// Proposes `command` once, outside the batcher, on this node only and only while it
    /// leads the group: committed within the commit timeout or dropped (`done` hears which).
    /// For what only the leader may say when it says it: "that node is down". Forwarded to a
    /// new leader after a partition heals, an isolated leader's report would return what the
    /// consumers of nodes that were never down hold.
    pub fn propose_once(
        self: &Arc<Self>,
        command: Proposal,
        done: impl FnOnce(bool) + Send + 'static,
    ) {
        let batch = Batch {
            // A proposer of its own: these batches are not in the batcher's sequence.
            proposer: Proposer {
                node: self.local.node,
                incarnation: self.local.incarnation.wrapping_add(1),
            },
            seq: self.once_seq.fetch_add(1, Ordering::Relaxed) + 1,
            commands: vec![command],
        };
        let front = self.clone();
        tokio::spawn(async move {
            let leading = front.raft.metrics().borrow().current_leader == Some(front.local.node);
            let proposed = match leading {
                true => tokio::time::timeout(front.commit_timeout, front.merger.propose(batch))
                    .await
                    .ok(),
                false => None,
            };
            done(matches!(proposed, Some(Proposed::Applied { .. })));
        });
    }

    /// Proposes `command` without waiting; `done` hears whether it was committed.
    pub fn propose_then(&self, command: Proposal, done: impl FnOnce(bool) + Send + 'static) {
        let wait = CommitWait::new();
        wait.on_complete(done);
        self.propose(command, Waiter::Commit(wait));
    }

    /// The periodic chores (registry.rs calls this twice a second): return what was assigned
    /// to consumers gone from here, and check that this node's consumers are still known to
    /// the machine (a partition may have dropped them), joining again if not.
    pub fn tick(&self) {
        let mut inner = self.local.inner.lock();
        let unclaimed = std::mem::take(&mut inner.unclaimed);
        let mut by_consumer: HashMap<ConsumerKey, Vec<u64>> = HashMap::new();
        for (key, id) in unclaimed {
            by_consumer.entry(key).or_default().push(id);
        }
        for (consumer, ids) in by_consumer {
            self.propose(Command::Return { consumer, ids }, Waiter::Nobody);
        }
        let machine = self.shared.lock();
        let now = Instant::now();
        for (id, local) in inner.consumers.iter_mut() {
            let key = self.local.key(*id);
            if !local.cancelled
                && now.duration_since(local.joined) > REJOIN_AFTER
                && !machine.machine.has_consumer(&key)
            {
                tracing::info!(
                    "cluster: quorum queue group {}: consumer {} joins again",
                    self.group,
                    local.consumer.tag
                );
                local.joined = now;
                self.propose(checkout(key, &local.consumer), Waiter::Nobody);
            }
        }
    }

    pub fn group(&self) -> u64 {
        self.group
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }
}

fn checkout(key: ConsumerKey, consumer: &Consumer) -> Proposal {
    Command::Checkout {
        consumer: key,
        prefetch: if consumer.no_ack {
            0
        } else {
            consumer.prefetch
        },
        no_ack: consumer.no_ack,
        priority: consumer.priority,
    }
}

impl QueueReplica for QueueFront {
    fn group(&self) -> u64 {
        self.group
    }

    fn enqueue(&self, message: &Arc<Message>) -> Arc<CommitWait> {
        let wait = CommitWait::new();
        self.propose(
            Command::Enqueue(Payload::of(message)),
            Waiter::Commit(wait.clone()),
        );
        wait
    }

    fn consume(&self, queue: &Arc<Queue>, consumer: &Arc<Consumer>) {
        let _ = self.local.queue.set(Arc::downgrade(queue));
        let mut inner = self.local.inner.lock();
        let id = inner.next_id;
        inner.next_id += 1;
        inner.consumers.insert(
            id,
            LocalConsumer {
                consumer: consumer.clone(),
                cancelled: false,
                waiting: VecDeque::new(),
                flushing: false,
                joined: Instant::now(),
            },
        );
        // Proposed under the lock: a cancel cannot overtake it.
        self.propose(checkout(self.local.key(id), consumer), Waiter::Nobody);
    }

    fn cancel(&self, consumer: &Arc<Consumer>) {
        let mut inner = self.local.inner.lock();
        let Some(id) = LocalConsumers::id_of(&inner, consumer) else {
            return;
        };
        let key = self.local.key(id);
        if let Some(local) = inner.consumers.get_mut(&id) {
            local.cancelled = true;
            let waiting: Vec<u64> = local.waiting.drain(..).map(|m| m.seq).collect();
            if !waiting.is_empty() && !consumer.no_ack {
                self.propose(
                    Command::Return {
                        consumer: key,
                        ids: waiting,
                    },
                    Waiter::Nobody,
                );
            }
        }
        self.propose(Command::Cancel { consumer: key }, Waiter::Nobody);
    }

    fn resume(&self, consumers: &[Arc<Consumer>]) {
        let ids: Vec<u64> = {
            let inner = self.local.inner.lock();
            consumers
                .iter()
                .filter_map(|c| LocalConsumers::id_of(&inner, c))
                .collect()
        };
        for id in ids {
            self.local.flush(id);
        }
    }

    fn settle(
        &self,
        consumer: Option<&Arc<Consumer>>,
        messages: &[QueuedMessage],
        how: Settlement,
    ) {
        let key = match consumer {
            None => self.local.key(GET_CONSUMER),
            Some(c) => {
                c.settle(messages.len() as u32);
                let inner = self.local.inner.lock();
                match LocalConsumers::id_of(&inner, c) {
                    Some(id) => self.local.key(id),
                    None => return,
                }
            }
        };
        let ids: Vec<u64> = messages.iter().map(|m| m.seq).collect();
        let command = match how {
            Settlement::Ack => Command::Settle { consumer: key, ids },
            Settlement::Discard => Command::Discard { consumer: key, ids },
            Settlement::Return => Command::Return { consumer: key, ids },
        };
        self.propose(command, Waiter::Nobody);
        if let Some(c) = consumer {
            self.resume(std::slice::from_ref(c));
            self.forget_if_done(c);
        }
    }

    fn get(&self, no_ack: bool) -> Option<(QueuedMessage, u32)> {
        let command = Command::Dequeue {
            consumer: self.local.key(GET_CONSUMER),
            no_ack,
        };
        match self.propose_and_wait(command)? {
            Reply::Got(Some((id, count, payload)), left) => Some((
                QueuedMessage {
                    seq: id,
                    message: payload.message(),
                    redelivered: count > 0,
                    expires_at: 0,
                    delivery_count: count,
                },
                left,
            )),
            _ => None,
        }
    }

    fn purge(&self) -> u32 {
        match self.propose_and_wait(Command::Purge) {
            Some(Reply::Purged(n)) => n,
            _ => 0,
        }
    }

    fn counts(&self) -> ReplicaCounts {
        let applied = self.shared.lock();
        ReplicaCounts {
            ready: applied.machine.ready_count(),
            unacked: applied.machine.unacked_count(),
            consumers: applied.machine.consumer_count(),
        }
    }

    fn stop(&self) {
        if !self.stopped.swap(true, Ordering::AcqRel) {
            (self.on_stop)(self.group);
        }
    }
}

impl QueueFront {
    /// A cancelled consumer is forgotten here once the machine has forgotten it (it settled
    /// everything it held).
    fn forget_if_done(&self, consumer: &Arc<Consumer>) {
        let mut inner = self.local.inner.lock();
        let Some(id) = LocalConsumers::id_of(&inner, consumer) else {
            return;
        };
        let cancelled = inner.consumers.get(&id).is_some_and(|l| l.cancelled);
        if cancelled && !self.shared.lock().machine.has_consumer(&self.local.key(id)) {
            inner.consumers.remove(&id);
        }
    }
}
