//! The consumers of one queue and the order in which they are offered messages: the highest
//! `x-priority` first, round-robin among consumers of the same priority, a lower priority only
//! when every higher one is out of credit — or, for an `x-single-active-consumer` queue, only
//! the earliest consumer still attached.

use std::sync::Arc;

use crate::broker::consumer::Consumer;
use crate::broker::message::QueuedMessage;
use crate::broker::queue::Queue;

#[derive(Default)]
pub struct ConsumerSet {
    /// Highest priority first; arrival order within a priority (and for single-active queues,
    /// arrival order only).
    list: Vec<Arc<Consumer>>,
    /// Round-robin position per priority.
    next: Vec<(i32, usize)>,
    single_active: bool,
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
        self.list.insert(at, consumer);
    }

    /// Removes a consumer; false if it was not here. The round-robin turn of its priority
    /// stays with the consumer that was next (the others move up one place), and a priority
    /// left without consumers forgets its turn, so churning consumers with ever new priorities
    /// leaves nothing behind.
    pub fn remove(&mut self, tag: &str, connection_id: u64) -> bool {
        let mut removed = false;
        while let Some(at) = self
            .list
            .iter()
            .position(|c| c.tag == tag && c.connection_id == connection_id)
        {
            let priority = self.list[at].priority;
            let group_start = self
                .list
                .iter()
                .position(|c| c.priority == priority)
                .unwrap_or(at);
            self.list.remove(at);
            removed = true;
            let left = self.list.iter().filter(|c| c.priority == priority).count();
            if let Some(slot) = self.next.iter().position(|(p, _)| *p == priority) {
                if left == 0 {
                    self.next.swap_remove(slot);
                } else if at - group_start < self.next[slot].1 {
                    self.next[slot].1 -= 1;
                }
            }
        }
        removed
    }

    /// How many priorities keep a round-robin turn (tests: nothing is left after churn).
    #[cfg(test)]
    pub fn turns_kept(&self) -> usize {
        self.next.len()
    }

    pub fn take_all(&mut self) -> Vec<Arc<Consumer>> {
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
        let mut start = 0;
        while start < self.list.len() {
            let priority = self.list[start].priority;
            let end = self.list[start..]
                .iter()
                .position(|c| c.priority != priority)
                .map_or(self.list.len(), |n| start + n);
            let size = end - start;
            let slot = match self.next.iter().position(|(p, _)| *p == priority) {
                Some(i) => i,
                None => {
                    self.next.push((priority, 0));
                    self.next.len() - 1
                }
            };
            let first = self.next[slot].1 % size;
            for k in 0..size {
                let i = start + (first + k) % size;
                match offer(&self.list[i], queue, message) {
                    Ok(()) => {
                        self.next[slot].1 = (first + k + 1) % size;
                        return Ok(self.list[i].no_ack);
                    }
                    Err(back) => message = back,
                }
            }
            start = end;
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
