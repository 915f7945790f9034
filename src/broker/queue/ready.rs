//! A queue's in-memory ready list: FIFO by sequence number within each priority level, the
//! highest level first (`x-max-priority`; an ordinary queue has one level). Requeued messages
//! go back to their original place in their level.

use std::collections::VecDeque;

use crate::broker::message::QueuedMessage;

pub struct Ready {
    /// Index = priority; delivery takes from the highest non-empty level.
    levels: Vec<VecDeque<QueuedMessage>>,
    len: usize,
    /// Body bytes of the messages held (`x-max-length-bytes`).
    bytes: u64,
}

impl Ready {
    /// `max_priority` 0 for an ordinary queue.
    pub fn new(max_priority: u8) -> Self {
        Ready {
            levels: (0..=max_priority).map(|_| VecDeque::new()).collect(),
            len: 0,
            bytes: 0,
        }
    }

    /// The level a message goes to: its priority property, capped at the queue's maximum
    /// (RabbitMQ treats priorities above the maximum as the maximum, none as 0).
    pub fn level_of(&self, m: &QueuedMessage) -> usize {
        if self.levels.len() == 1 {
            return 0;
        }
        self.level_for(m.message.properties.priority().unwrap_or(0))
    }

    /// The level of a message with priority `priority`.
    pub fn level_for(&self, priority: u8) -> usize {
        (priority as usize).min(self.levels.len() - 1)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn push_back(&mut self, m: QueuedMessage) {
        let level = self.level_of(&m);
        self.bytes += m.message.body.len() as u64;
        self.levels[level].push_back(m);
        self.len += 1;
    }

    /// Puts back a message just taken by [`Ready::pop_front`] (no consumer could take it).
    pub fn push_front(&mut self, m: QueuedMessage) {
        let level = self.level_of(&m);
        self.bytes += m.message.body.len() as u64;
        self.levels[level].push_front(m);
        self.len += 1;
    }

    /// The highest level holding a message.
    pub fn top_level(&self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        self.levels.iter().rposition(|l| !l.is_empty())
    }

    pub fn front(&self) -> Option<&QueuedMessage> {
        self.levels.iter().rev().find_map(|l| l.front())
    }

    pub fn pop_front(&mut self) -> Option<QueuedMessage> {
        let m = self.levels.iter_mut().rev().find_map(|l| l.pop_front())?;
        self.len -= 1;
        self.bytes -= m.message.body.len() as u64;
        Some(m)
    }

    /// Puts messages back in sequence order within their levels: requeued ones, and ones paged
    /// in from the store (which may meet requeued ones older than them).
    pub fn requeue(&mut self, messages: Vec<QueuedMessage>) {
        let mut by_level: Vec<Vec<QueuedMessage>> =
            (0..self.levels.len()).map(|_| Vec::new()).collect();
        for m in messages {
            let level = self.level_of(&m);
            by_level[level].push(m);
        }
        for (level, mut msgs) in by_level.into_iter().enumerate() {
            if msgs.is_empty() {
                continue;
            }
            self.len += msgs.len();
            self.bytes += msgs
                .iter()
                .map(|m| m.message.body.len() as u64)
                .sum::<u64>();
            msgs.sort_by_key(|m| m.seq);
            let deque = &mut self.levels[level];
            if deque
                .front()
                .is_none_or(|head| msgs.last().is_some_and(|last| last.seq < head.seq))
            {
                // Usual case: everything requeued is older than the level's head.
                for m in msgs.into_iter().rev() {
                    deque.push_front(m);
                }
            } else {
                *deque = merge_by_seq(std::mem::take(deque), msgs);
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &QueuedMessage> {
        self.levels.iter().rev().flat_map(|l| l.iter())
    }

    pub fn clear(&mut self) {
        self.levels.iter_mut().for_each(VecDeque::clear);
        self.len = 0;
        self.bytes = 0;
    }
}

/// Two runs sorted by `seq` merged into one, in one pass.
fn merge_by_seq(
    held: VecDeque<QueuedMessage>,
    requeued: Vec<QueuedMessage>,
) -> VecDeque<QueuedMessage> {
    let mut merged = VecDeque::with_capacity(held.len() + requeued.len());
    let (mut held, mut requeued) = (held.into_iter().peekable(), requeued.into_iter().peekable());
    loop {
        let take_requeued = match (held.peek(), requeued.peek()) {
            (Some(h), Some(r)) => r.seq < h.seq,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (None, None) => return merged,
        };
        let next = if take_requeued {
            requeued.next()
        } else {
            held.next()
        };
        merged.extend(next);
    }
}
