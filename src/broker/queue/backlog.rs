//! The tail of a durable queue that does not fit its in-memory budget.
//!
//! Once a durable queue holds more ready messages than its paging threshold, further messages
//! wait here instead of in the ready list: persistent ones only as their store ids (8 bytes a
//! message, in segments of consecutive sequence numbers) with bodies in LMDB, read back when the
//! queue pages them in; transient ones (which cannot be paged) in memory, in FIFO order with
//! the rest. A persistent message stays *pending* (body still in memory) until the store has
//! committed its index entry, so paging in never races the writer.
//!
//! This file owns the bookkeeping only; reading bodies back is the queue's business.

use std::collections::VecDeque;

use crate::broker::message::QueuedMessage;
use crate::store::IndexSegment;

/// One settled entry of the backlog.
pub enum Entry {
    /// Bodies in the store only; `segment.ids[taken..]` are still queued.
    Paged {
        segment: IndexSegment,
        taken: usize,
        redelivered: bool,
    },
    /// A transient message: kept in memory, in order.
    Held(QueuedMessage),
}

/// What [`Backlog::take_front`] hands back.
pub enum Taken {
    /// Body to read from the store.
    Paged {
        seq: u64,
        id: u64,
        redelivered: bool,
    },
    /// Already in memory.
    InMemory(QueuedMessage),
}

#[derive(Default)]
pub struct Backlog {
    settled: VecDeque<Entry>,
    /// Newest entries, in order after `settled`: persistent messages whose index entry the store
    /// has not committed yet (with the store operation number that makes them durable), and
    /// transient messages that arrived behind them (`op` 0).
    pending: VecDeque<(QueuedMessage, u64, bool)>,
    len: u64,
}

impl Backlog {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A recovered segment of paged messages.
    pub fn push_segment(&mut self, segment: IndexSegment, redelivered: bool) {
        self.len += segment.ids.len() as u64;
        self.settled.push_back(Entry::Paged {
            segment,
            taken: 0,
            redelivered,
        });
    }

    fn push_settled_paged(&mut self, seq: u64, id: u64, redelivered: bool) {
        if let Some(Entry::Paged {
            segment,
            redelivered: r,
            ..
        }) = self.settled.back_mut()
            && *r == redelivered
            && segment.extend(seq, id)
        {
            return;
        }
        self.settled.push_back(Entry::Paged {
            segment: IndexSegment::new(seq, id),
            taken: 0,
            redelivered,
        });
    }

    /// A new message: persistent ones (`durable_at` = the store operation that makes their
    /// index entry durable) are paged once that commits; transient ones stay in memory.
    pub fn push(&mut self, message: QueuedMessage, durable_at: Option<u64>) {
        self.len += 1;
        self.pending
            .push_back((message, durable_at.unwrap_or(0), durable_at.is_some()));
    }

    /// Moves entries whose store writes are committed out of `pending`, dropping their bodies.
    pub fn settle(&mut self, committed_ops: u64) {
        while let Some((_, op, _)) = self.pending.front() {
            if *op > committed_ops {
                break;
            }
            let Some((message, _, persistent)) = self.pending.pop_front() else {
                break;
            };
            match (persistent, message.message.store_id) {
                (true, Some(id)) => self.push_settled_paged(message.seq, id, message.redelivered),
                _ => self.settled.push_back(Entry::Held(message)),
            }
        }
    }

    /// Takes up to `max` messages from the front.
    pub fn take_front(&mut self, max: usize, out: &mut Vec<Taken>) {
        while out.len() < max {
            match self.settled.front_mut() {
                Some(Entry::Paged {
                    segment,
                    taken,
                    redelivered,
                }) => {
                    let (seq, id) = (segment.first_seq + *taken as u64, segment.ids[*taken]);
                    let redelivered = *redelivered;
                    *taken += 1;
                    if *taken == segment.ids.len() {
                        self.settled.pop_front();
                    }
                    out.push(Taken::Paged {
                        seq,
                        id,
                        redelivered,
                    });
                }
                Some(Entry::Held(_)) => {
                    if let Some(Entry::Held(m)) = self.settled.pop_front() {
                        out.push(Taken::InMemory(m));
                    }
                }
                None => match self.pending.pop_front() {
                    Some((m, _, _)) => out.push(Taken::InMemory(m)),
                    None => break,
                },
            }
            self.len -= 1;
        }
    }

    /// Empties the backlog (purge, delete), handing every entry to `each`; paged segments come
    /// without the part already taken.
    pub fn drain(&mut self, mut each: impl FnMut(Entry)) {
        for entry in self.settled.drain(..) {
            match entry {
                Entry::Paged {
                    mut segment,
                    taken,
                    redelivered,
                } => {
                    segment.first_seq += taken as u64;
                    segment.ids.drain(..taken);
                    each(Entry::Paged {
                        segment,
                        taken: 0,
                        redelivered,
                    });
                }
                held => each(held),
            }
        }
        for (m, _, _) in self.pending.drain(..) {
            each(Entry::Held(m));
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::broker::message::Message;
    use crate::store::SEGMENT_CAPACITY;

    fn message(seq: u64, store_id: Option<u64>) -> QueuedMessage {
        let message = Arc::new(Message {
            exchange: Arc::from(""),
            routing_key: Default::default(),
            properties: Default::default(),
            body: Default::default(),
            store_id,
        });
        QueuedMessage::new(seq, message, false)
    }

    fn seqs(taken: &[Taken]) -> Vec<(u64, bool)> {
        taken
            .iter()
            .map(|t| match t {
                Taken::Paged { seq, .. } => (*seq, true),
                Taken::InMemory(m) => (m.seq, false),
            })
            .collect()
    }

    #[test]
    fn committed_persistent_messages_pack_into_segments_and_keep_fifo_order() {
        let mut b = Backlog::default();
        let n = SEGMENT_CAPACITY as u64 + 100;
        for seq in 0..n {
            // Interleaved ids, as with several publishers.
            b.push(message(seq, Some(1000 + seq * 3)), Some(seq + 1));
        }
        b.push(message(n, None), None); // transient, behind them
        b.settle(400); // only ops 1..=400 committed
        assert_eq!(b.settled.len(), 1, "400 paged messages are one segment");
        b.settle(u64::MAX);
        assert_eq!(
            b.settled.len(),
            3,
            "two segments plus the transient message"
        );
        assert_eq!(b.len(), n + 1);
        let mut taken = Vec::new();
        b.take_front(998, &mut taken);
        b.take_front(n as usize + 1, &mut taken);
        let got = seqs(&taken);
        assert_eq!(got.len() as u64, n + 1);
        assert!(
            got.iter().enumerate().all(|(i, (seq, _))| *seq == i as u64),
            "FIFO order"
        );
        assert!(got[..n as usize].iter().all(|(_, paged)| *paged) && !got[n as usize].1);
        match &taken[5] {
            Taken::Paged { id, .. } => assert_eq!(*id, 1000 + 15),
            _ => panic!(),
        }
        assert!(b.is_empty());
    }

    #[test]
    fn uncommitted_messages_come_back_from_memory() {
        let mut b = Backlog::default();
        b.push(message(7, Some(1)), Some(99));
        b.settle(5);
        let mut taken = Vec::new();
        b.take_front(10, &mut taken);
        assert_eq!(seqs(&taken), vec![(7, false)]);
    }

    #[test]
    fn drain_hands_back_only_what_was_not_taken() {
        let mut b = Backlog::default();
        for seq in 0..10 {
            b.push(message(seq, Some(seq)), Some(1));
        }
        b.settle(1);
        let mut taken = Vec::new();
        b.take_front(4, &mut taken);
        let mut rest = Vec::new();
        b.drain(|e| {
            if let Entry::Paged { segment, .. } = e {
                rest.push(segment)
            }
        });
        assert_eq!(
            rest,
            vec![IndexSegment {
                first_seq: 4,
                ids: (4..10).collect()
            }]
        );
    }
}
