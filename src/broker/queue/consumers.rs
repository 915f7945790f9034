//! The consumers of one queue and the order in which they are offered messages: the highest
//! `x-priority` first, round-robin among consumers of the same priority, a lower priority only
//! when every higher one is out of credit — or, for an `x-single-active-consumer` queue, only
//! the earliest consumer still attached.
//!
//! Each priority keeps a ring of the consumers that may take a message, in turn order (as
//! RabbitMQ's `rabbit_queue_consumers` keeps its active ones). A consumer that refuses an offer
//! (prefetch window full, channel blocked, not yet announced) is parked: out of the ring until
//! [`ConsumerSet::unpark`] puts it back at the end. A delivery therefore costs the same with one
//! consumer or a thousand. Whoever frees a parked consumer's credit must unpark it: the queue's
//! settle paths for the consumer-level window, [`crate::broker::queue::Queue::resume`] for
//! everything a channel decides (flow, channel-wide prefetch, a full outbox), and
//! [`ConsumerSet::unpark_all`] when nobody knows which consumer changed.
//!
//! This file must not deliver anything itself: it only picks the consumer and calls its channel.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::broker::consumer::Consumer;
use crate::broker::message::QueuedMessage;
use crate::broker::queue::Queue;

#[derive(Default)]
pub struct ConsumerSet {
    /// Highest priority first; arrival order within a priority (and for single-active queues,
    /// arrival order only).
    list: Vec<Arc<Consumer>>,
    /// One ring per priority present in `list`, highest first.
    turns: Vec<Turns>,
    /// How many parkings so far: a parked consumer's `parked` is its place in this count, so
    /// that consumers unparked together keep the turn order they had.
    parkings: u64,
    single_active: bool,
}

/// The consumers of one priority that are not parked, next to be offered first.
struct Turns {
    priority: i32,
    ready: VecDeque<Arc<Consumer>>,
}

impl ConsumerSet {
    pub fn new(single_active: bool) -> Self {
        ConsumerSet {
            single_active,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Consumer>> {
        self.list.iter()
    }

    pub fn add(&mut self, consumer: Arc<Consumer>) {
        let at = if self.single_active {
            self.list.len()
        } else {
            self.list
                .iter()
                .position(|c| c.priority < consumer.priority)
                .unwrap_or(self.list.len())
        };
        self.list.insert(at, consumer.clone());
        consumer.parked.store(0, Ordering::Relaxed);
        self.turns_of(consumer.priority).ready.push_back(consumer);
    }

    /// The ring of `priority`, made (in its place by priority) if it has none yet.
    fn turns_of(&mut self, priority: i32) -> &mut Turns {
        let at = match self.turns.iter().position(|t| t.priority <= priority) {
            Some(at) if self.turns[at].priority == priority => at,
            found => {
                let at = found.unwrap_or(self.turns.len());
                let ready = VecDeque::new();
                self.turns.insert(at, Turns { priority, ready });
                at
            }
        };
        &mut self.turns[at]
    }

    /// Removes a consumer; false if it was not here. The others keep their turns, and a
    /// priority left without consumers loses its ring, so churning consumers with ever new
    /// priorities leaves nothing behind.
    pub fn remove(&mut self, tag: &str, connection_id: u64) -> bool {
        let is_it = |c: &Arc<Consumer>| c.tag == tag && c.connection_id == connection_id;
        let before = self.list.len();
        self.list.retain(|c| {
            let leaving = is_it(c);
            if leaving {
                // So that a late unpark (its settle racing its cancel) cannot bring it back.
                c.parked.store(0, Ordering::Relaxed);
            }
            !leaving
        });
        if self.list.len() == before {
            return false;
        }
        for turns in &mut self.turns {
            turns.ready.retain(|c| !is_it(c));
        }
        let list = &self.list;
        self.turns
            .retain(|t| list.iter().any(|c| c.priority == t.priority));
        true
    }

    /// Puts a parked consumer back at the end of its priority's ring (nothing if it is not
    /// parked). Only this set parks a consumer, and a consumer leaving it is unparked, so a
    /// parked consumer is always one of this set's.
    pub fn unpark(&mut self, consumer: &Arc<Consumer>) {
        self.unpark_each(std::slice::from_ref(consumer));
    }

    /// Unparks every consumer.
    pub fn unpark_all(&mut self) {
        let list = self.list.clone();
        self.unpark_each(&list);
    }

    /// Unparks those of `consumers` that are parked, in the order they were parked (which is
    /// the turn order they had).
    pub fn unpark_each(&mut self, consumers: &[Arc<Consumer>]) {
        let mut parked: Vec<(u64, &Arc<Consumer>)> = consumers
            .iter()
            .map(|c| (c.parked.swap(0, Ordering::Relaxed), c))
            .filter(|(at, _)| *at != 0)
            .collect();
        parked.sort_unstable_by_key(|(at, _)| *at);
        for (_, consumer) in parked {
            let priority = consumer.priority;
            self.turns_of(priority).ready.push_back(consumer.clone());
        }
    }

    /// How many priorities keep a ring (tests: nothing is left after churn).
    #[cfg(test)]
    pub fn turns_kept(&self) -> usize {
        self.turns.len()
    }

    pub fn take_all(&mut self) -> Vec<Arc<Consumer>> {
        self.turns.clear();
        for c in &self.list {
            c.parked.store(0, Ordering::Relaxed);
        }
        std::mem::take(&mut self.list)
    }

    /// Offers `message` to the consumers in delivery order until one takes it: `Ok(no_ack)` of
    /// the consumer that did, or the message back if none can take it now.
    pub fn deliver(
        &mut self,
        queue: &Arc<Queue>,
        mut message: QueuedMessage,
    ) -> Result<bool, QueuedMessage> {
        if self.single_active {
            return match self.list.first() {
                Some(c) => offer(c, queue, message).map(|()| c.no_ack),
                None => Err(message),
            };
        }
        for turns in &mut self.turns {
            while let Some(consumer) = turns.ready.pop_front() {
                match offer(&consumer, queue, message) {
                    Ok(()) => {
                        let no_ack = consumer.no_ack;
                        turns.ready.push_back(consumer);
                        return Ok(no_ack);
                    }
                    Err(back) => {
                        message = back;
                        self.parkings += 1;
                        consumer.parked.store(self.parkings, Ordering::Relaxed);
                    }
                }
            }
        }
        Err(message)
    }
}

/// One consumer's turn: within its prefetch window and accepted by its channel.
fn offer(
    consumer: &Arc<Consumer>,
    queue: &Arc<Queue>,
    message: QueuedMessage,
) -> Result<(), QueuedMessage> {
    if !consumer.has_credit() {
        return Err(message);
    }
    consumer.record_delivery();
    consumer
        .channel
        .try_deliver(consumer, queue, message)
        .inspect_err(|_| consumer.settle(1))
}
