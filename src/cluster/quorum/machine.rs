//! A quorum queue as a deterministic state machine (RabbitMQ's `rabbit_fifo`, reduced): every
//! member of the queue's Raft group applies the same commands in the same order and so holds
//! the same messages, the same consumers and the same assignment of messages to consumers. The
//! node a consumer is connected to delivers what this machine assigned to it (front.rs); no
//! member forwards deliveries to another.
//!
//! Pure: no clock, no I/O, no randomness, nothing but the commands decides what happens. Generic
//! over the message `M` (the broker's `Arc<Message>` in the cluster, plain numbers in tests).
//! What a command does:
//!
//! - `Enqueue`: the message gets the next id and goes to the back of the ready list.
//! - `Checkout`: a consumer with a prefetch (0 = unlimited); ready messages are assigned to
//!   consumers with credit, round-robin, after every command.
//! - `Settle` / `Discard`: the consumer is done with those ids; they leave the queue.
//! - `Return`: back to the ready list's end (as RabbitMQ's quorum queues requeue), with one
//!   more delivery.
//! - `Cancel`: the consumer gets nothing more; what it holds stays with it until settled or
//!   returned (AMQP lets a client ack after basic.cancel).
//! - `Dequeue`: basic.get, for a node's get-consumer (one per node and incarnation).
//! - `NodeDown`: the consumers of a node (but those of its current incarnation, if given) are
//!   gone: what they held returns to the ready list, redelivered.
//!
//! Proposals come in batches tagged with their proposer and a sequence number; a batch seen
//! before (a proposer retrying after a leader change that had committed it) is skipped, so a
//! retried publish is not enqueued twice.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

/// A consumer as the machine knows it: its node, the node's incarnation (a restart gets a new
/// one) and an id the node chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConsumerKey {
    pub node: u64,
    pub incarnation: u64,
    pub id: u64,
}

/// The id of a node incarnation's basic.get consumer.
pub const GET_CONSUMER: u64 = 0;

/// The size a length limit counts (a message's body bytes).
pub trait Weigh {
    fn bytes(&self) -> u64;
}

/// What the queue's arguments (and the policies applying when it was declared) limit, set by
/// a `Configure` command (the first its members propose).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// `x-max-length`: ready messages at most.
    pub max_length: Option<u64>,
    /// `x-max-length-bytes`: ready body bytes at most.
    pub max_bytes: Option<u64>,
    /// `x-overflow` reject-publish: a publish over the limit is refused (else the oldest
    /// ready messages go).
    pub reject_publish: bool,
    /// `x-delivery-limit`: a message returned more often leaves the queue.
    pub delivery_limit: Option<u64>,
    /// `x-single-active-consumer`: only the first consumer (in checkout order) gets messages.
    pub single_active: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Command<M> {
    Enqueue(M),
    Configure(Limits),
    Checkout {
        consumer: ConsumerKey,
        prefetch: u32,
        no_ack: bool,
        /// `x-priority`: consumers of the highest priority with credit are served first.
        priority: i32,
    },
    Cancel {
        consumer: ConsumerKey,
    },
    Settle {
        consumer: ConsumerKey,
        ids: Vec<u64>,
    },
    Return {
        consumer: ConsumerKey,
        ids: Vec<u64>,
    },
    Discard {
        consumer: ConsumerKey,
        ids: Vec<u64>,
    },
    Dequeue {
        consumer: ConsumerKey,
        no_ack: bool,
    },
    Purge,
    NodeDown {
        node: u64,
        /// This incarnation's consumers stay (0: none do).
        keep_incarnation: u64,
    },
}

/// Who proposed a batch, and its place in that proposer's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Proposer {
    pub node: u64,
    pub incarnation: u64,
}

/// One Raft entry of a quorum queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Batch<M> {
    pub proposer: Proposer,
    pub seq: u64,
    pub commands: Vec<Command<M>>,
}

/// What a command answers its proposer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply<M> {
    Done,
    /// A publish refused: the queue is full and rejects publishes.
    Rejected,
    /// basic.get: the message with its id and delivery count, and how many stay ready.
    Got(Option<(u64, u32, M)>, u32),
    Purged(u32),
}

impl<M> Reply<M> {
    pub fn map<N>(self, f: impl FnOnce(M) -> N) -> Reply<N> {
        match self {
            Reply::Done => Reply::Done,
            Reply::Rejected => Reply::Rejected,
            Reply::Got(got, left) => Reply::Got(got.map(|(id, n, m)| (id, n, f(m))), left),
            Reply::Purged(n) => Reply::Purged(n),
        }
    }
}

impl<M> Command<M> {
    /// The same command with its message (an enqueue's) in another form.
    pub fn map<N>(self, f: impl FnOnce(M) -> N) -> Command<N> {
        match self {
            Command::Enqueue(m) => Command::Enqueue(f(m)),
            Command::Configure(limits) => Command::Configure(limits),
            Command::Checkout {
                consumer,
                prefetch,
                no_ack,
                priority,
            } => Command::Checkout {
                consumer,
                prefetch,
                no_ack,
                priority,
            },
            Command::Cancel { consumer } => Command::Cancel { consumer },
            Command::Settle { consumer, ids } => Command::Settle { consumer, ids },
            Command::Return { consumer, ids } => Command::Return { consumer, ids },
            Command::Discard { consumer, ids } => Command::Discard { consumer, ids },
            Command::Dequeue { consumer, no_ack } => Command::Dequeue { consumer, no_ack },
            Command::Purge => Command::Purge,
            Command::NodeDown {
                node,
                keep_incarnation,
            } => Command::NodeDown {
                node,
                keep_incarnation,
            },
        }
    }
}

/// A message handed to a consumer by the last command.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery<M> {
    pub consumer: ConsumerKey,
    pub id: u64,
    /// Earlier deliveries of this message (0: never delivered before).
    pub delivery_count: u32,
    /// The consumer does not ack: the message has already left the queue.
    pub no_ack: bool,
    pub message: M,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Held<M> {
    pub message: M,
    pub delivery_count: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ConsumerState {
    prefetch: u32,
    no_ack: bool,
    priority: i32,
    cancelled: bool,
    checked_out: BTreeSet<u64>,
}

impl ConsumerState {
    fn has_credit(&self) -> bool {
        !self.cancelled && (self.prefetch == 0 || self.checked_out.len() < self.prefetch as usize)
    }
}

/// The queue's state, the same on every member that applied the same entries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueMachine<M> {
    next_id: u64,
    messages: HashMap<u64, Held<M>>,
    ready: VecDeque<u64>,
    consumers: BTreeMap<ConsumerKey, ConsumerState>,
    /// Consumers in turn order (round-robin).
    rotation: VecDeque<ConsumerKey>,
    /// The last batch applied from each proposer.
    last_batch: HashMap<Proposer, u64>,
    limits: Limits,
    /// Body bytes of the ready messages.
    ready_bytes: u64,
}

impl<M> Default for QueueMachine<M> {
    fn default() -> Self {
        QueueMachine {
            next_id: 1,
            messages: HashMap::new(),
            ready: VecDeque::new(),
            consumers: BTreeMap::new(),
            rotation: VecDeque::new(),
            last_batch: HashMap::new(),
            limits: Limits::default(),
            ready_bytes: 0,
        }
    }
}

impl<M: Clone + Weigh> QueueMachine<M> {
    /// Applies a batch and says what each command answers; deliveries it made go to `out`. A
    /// batch applied before is skipped (its replies are lost: the proposer hears `Done`).
    pub fn apply(&mut self, batch: Batch<M>, out: &mut Vec<Delivery<M>>) -> Vec<Reply<M>> {
        let seen = self.last_batch.get(&batch.proposer).copied();
        if seen.is_some_and(|last| batch.seq <= last) {
            return vec![Reply::Done; batch.commands.len()];
        }
        self.last_batch.insert(batch.proposer, batch.seq);
        let replies = batch
            .commands
            .into_iter()
            .map(|c| self.command(c))
            .collect();
        self.assign(out);
        replies
    }

    fn command(&mut self, command: Command<M>) -> Reply<M> {
        match command {
            Command::Enqueue(message) => {
                let size = message.bytes();
                if self.limits.reject_publish && self.would_overflow(size) {
                    return Reply::Rejected;
                }
                let id = self.next_id;
                self.next_id += 1;
                self.messages.insert(
                    id,
                    Held {
                        message,
                        delivery_count: 0,
                    },
                );
                self.push_ready(id);
                if !self.limits.reject_publish {
                    self.drop_head_over_limits();
                }
            }
            Command::Configure(limits) => self.limits = limits,
            Command::Checkout {
                consumer,
                prefetch,
                no_ack,
                priority,
            } => {
                let state = self.consumers.entry(consumer).or_default();
                state.prefetch = prefetch;
                state.no_ack = no_ack;
                state.priority = priority;
                state.cancelled = false;
                if !self.rotation.contains(&consumer) {
                    self.rotation.push_back(consumer);
                }
                // Assigned below, after the whole batch.
            }
            Command::Cancel { consumer } => {
                self.rotation.retain(|c| *c != consumer);
                if let Some(state) = self.consumers.get_mut(&consumer) {
                    state.cancelled = true;
                    if state.checked_out.is_empty() {
                        self.consumers.remove(&consumer);
                    }
                }
            }
            Command::Settle { consumer, ids } | Command::Discard { consumer, ids } => {
                for id in self.take_checked_out(consumer, &ids) {
                    self.messages.remove(&id);
                }
            }
            Command::Return { consumer, ids } => {
                for id in self.take_checked_out(consumer, &ids) {
                    self.requeue(id);
                }
            }
            Command::Dequeue { consumer, no_ack } => {
                let Some(id) = self.pop_ready() else {
                    return Reply::Got(None, 0);
                };
                let remaining = self.ready.len() as u32;
                let held = if no_ack {
                    self.messages.remove(&id)
                } else {
                    let state = self.consumers.entry(consumer).or_default();
                    state.cancelled = true; // never in the rotation
                    state.checked_out.insert(id);
                    self.messages.get(&id).cloned()
                };
                let got = held.map(|h| (id, h.delivery_count, h.message));
                return Reply::Got(got, remaining);
            }
            Command::Purge => {
                let n = self.ready.len() as u32;
                for id in self.ready.drain(..) {
                    self.messages.remove(&id);
                }
                self.ready_bytes = 0;
                return Reply::Purged(n);
            }
            Command::NodeDown {
                node,
                keep_incarnation,
            } => {
                let gone: Vec<ConsumerKey> = self
                    .consumers
                    .keys()
                    .filter(|k| k.node == node && k.incarnation != keep_incarnation)
                    .copied()
                    .collect();
                for key in gone {
                    self.rotation.retain(|c| *c != key);
                    if let Some(state) = self.consumers.remove(&key) {
                        for id in state.checked_out {
                            self.requeue(id);
                        }
                    }
                }
            }
        }
        Reply::Done
    }

    /// Removes `ids` from what `consumer` holds; returns those it held. A consumer cancelled
    /// and holding nothing more is forgotten.
    fn take_checked_out(&mut self, consumer: ConsumerKey, ids: &[u64]) -> Vec<u64> {
        let Some(state) = self.consumers.get_mut(&consumer) else {
            return Vec::new();
        };
        let taken: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| state.checked_out.remove(id))
            .collect();
        if state.cancelled && state.checked_out.is_empty() {
            self.consumers.remove(&consumer);
        }
        taken
    }

    /// A message back from a consumer: one more delivery, then at the back, or out if that is
    /// more than the delivery limit.
    fn requeue(&mut self, id: u64) {
        let Some(held) = self.messages.get_mut(&id) else {
            return;
        };
        held.delivery_count = held.delivery_count.saturating_add(1);
        let count = u64::from(held.delivery_count);
        if self
            .limits
            .delivery_limit
            .is_some_and(|limit| count > limit)
        {
            self.messages.remove(&id);
        } else {
            self.push_ready(id);
        }
    }

    fn push_ready(&mut self, id: u64) {
        if let Some(held) = self.messages.get(&id) {
            self.ready_bytes += held.message.bytes();
            self.ready.push_back(id);
        }
    }

    fn pop_ready(&mut self) -> Option<u64> {
        let id = self.ready.pop_front()?;
        if let Some(held) = self.messages.get(&id) {
            self.ready_bytes = self.ready_bytes.saturating_sub(held.message.bytes());
        }
        Some(id)
    }

    /// Whether one more ready message of `size` bytes would pass a limit.
    fn would_overflow(&self, size: u64) -> bool {
        self.limits
            .max_length
            .is_some_and(|max| self.ready.len() as u64 >= max)
            || self
                .limits
                .max_bytes
                .is_some_and(|max| self.ready_bytes + size > max)
    }

    /// drop-head: the oldest ready messages go while a limit is passed.
    fn drop_head_over_limits(&mut self) {
        let over = |m: &Self| {
            m.limits
                .max_length
                .is_some_and(|max| m.ready.len() as u64 > max)
                || m.limits.max_bytes.is_some_and(|max| m.ready_bytes > max)
        };
        while over(self) {
            match self.pop_ready() {
                Some(id) => {
                    self.messages.remove(&id);
                }
                None => return,
            }
        }
    }

    /// Hands ready messages to consumers with credit: the highest priority first, in turn
    /// among equals.
    fn assign(&mut self, out: &mut Vec<Delivery<M>>) {
        while !self.ready.is_empty() {
            let with_credit = |i: &usize| {
                self.consumers
                    .get(&self.rotation[*i])
                    .filter(|c| c.has_credit())
                    .map(|c| c.priority)
            };
            let Some(top) = (0..self.rotation.len())
                .filter_map(|i| with_credit(&i))
                .max()
            else {
                return;
            };
            let Some(turn) = (0..self.rotation.len()).find(|i| with_credit(i) == Some(top)) else {
                return;
            };
            // A single active consumer: the first in checkout order, or nobody.
            if self.limits.single_active && turn != 0 {
                return;
            }
            let key = self.rotation[turn];
            if !self.limits.single_active {
                self.rotation.remove(turn);
                self.rotation.push_back(key);
            }
            let Some(id) = self.pop_ready() else {
                return;
            };
            let Some(state) = self.consumers.get_mut(&key) else {
                continue;
            };
            let no_ack = state.no_ack;
            let held = if no_ack {
                self.messages.remove(&id)
            } else {
                state.checked_out.insert(id);
                self.messages.get(&id).cloned()
            };
            if let Some(held) = held {
                out.push(Delivery {
                    consumer: key,
                    id,
                    delivery_count: held.delivery_count,
                    no_ack,
                    message: held.message,
                });
            }
        }
    }

    /// The message `id`, while the queue holds it.
    pub fn message(&self, id: u64) -> Option<&M> {
        self.messages.get(&id).map(|h| &h.message)
    }

    pub fn ready_count(&self) -> u32 {
        self.ready.len() as u32
    }

    /// Messages assigned to consumers and not yet settled.
    pub fn unacked_count(&self) -> u32 {
        (self.messages.len() - self.ready.len()) as u32
    }

    /// Consumers taking deliveries (not basic.get's, not cancelled ones).
    pub fn consumer_count(&self) -> u32 {
        self.rotation.len() as u32
    }

    /// Whether the machine knows `consumer` (it may have been dropped by a `NodeDown`).
    pub fn has_consumer(&self, consumer: &ConsumerKey) -> bool {
        self.consumers.contains_key(consumer)
    }

    /// The same state with messages of another form (for snapshots).
    pub fn map<N>(&self, f: impl Fn(&M) -> N) -> QueueMachine<N> {
        QueueMachine {
            next_id: self.next_id,
            messages: self
                .messages
                .iter()
                .map(|(id, h)| {
                    (
                        *id,
                        Held {
                            message: f(&h.message),
                            delivery_count: h.delivery_count,
                        },
                    )
                })
                .collect(),
            ready: self.ready.clone(),
            consumers: self.consumers.clone(),
            rotation: self.rotation.clone(),
            last_batch: self.last_batch.clone(),
            limits: self.limits.clone(),
            ready_bytes: self.ready_bytes,
        }
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
