//! The tail of a durable queue that does not fit its in-memory budget.
//!
//! Once a durable queue holds more ready messages than its paging threshold, further messages
//! wait here instead of in the ready list: persistent ones only as their store ids (8 bytes a
//! message, in segments of consecutive sequence numbers) with bodies in LMDB, read back when the
//! queue pages them in; transient ones (which cannot be paged) in memory, in FIFO order with
//! the rest. A persistent message stays *pending* (body still in memory) until the store has
//! applied its index entry to LMDB (`Store::applied_ops`), so paging in never races the writer.
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
    pending: VecDeque<Pending>,
    len: u64,
}

/// A message in the backlog whose place in the store may not be committed yet.
struct Pending {
    message: QueuedMessage,
    /// The store operation whose commit makes its index entry durable (0: nothing to wait for).
    durable_at: u64,
    /// Stored (paged once committed) rather than held in memory.
    persistent: bool,
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
        self.pending.push_back(Pending {
            message,
            durable_at: durable_at.unwrap_or(0),
            persistent: durable_at.is_some(),
        });
    }

    /// Moves entries whose store writes are committed out of `pending`, dropping their bodies.
    pub fn settle(&mut self, committed_ops: u64) {
        while let Some(front) = self.pending.front() {
            if front.durable_at > committed_ops {
                break;
            }
            let Some(Pending {
                message,
                persistent,
                ..
            }) = self.pending.pop_front()
            else {
                break;
            };
            match (persistent, message.message.store_id) {
                (true, Some(id)) => self.push_settled_paged(message.seq, id, message.redelivered),
                _ => self.settled.push_back(Entry::Held(message)),
            }
        }
    }

    /// Takes messages from the front until `out` holds `max`.
    pub fn take_front(&mut self, max: usize, out: &mut Vec<Taken>) {
        while out.len() < max {
            let Some(taken) = self.take_one() else { break };
            out.push(taken);
        }
    }

    /// Takes the messages at the front numbered up to `last_seq` (what is left of a range
    /// chosen by [`Backlog::to_read`] once its read is done).
    pub fn take_front_through(&mut self, last_seq: u64, out: &mut Vec<Taken>) {
        while let Some(seq) = self.front_seq().filter(|seq| *seq <= last_seq) {
            let Some(Entry::Paged {
                segment,
                taken,
                redelivered,
            }) = self.settled.front_mut()
            else {
                let Some(taken) = self.take_one() else { break };
                out.push(taken);
                continue;
            };
            // A run of one segment at once (a page-in takes up to a thousand of them).
            let n = (segment.ids.len() - *taken).min((last_seq - seq + 1) as usize);
            let redelivered = *redelivered;
            out.extend((0..n).map(|i| Taken::Paged {
                seq: seq + i as u64,
                id: segment.ids[*taken + i],
                redelivered,
            }));
            *taken += n;
            if *taken == segment.ids.len() {
                self.settled.pop_front();
            }
            self.len -= n as u64;
        }
    }

    /// What a page-in must read from the store: the (sequence number, store id) of the paged
    /// messages among the first `max` settled entries, into `out`, and the sequence number of
    /// the last entry looked at. `None` when none of them is paged: the front is in memory.
    /// Looks only: the entries stay (counted, purgeable) until taken.
    pub fn to_read(&self, max: usize, out: &mut Vec<(u64, u64)>) -> Option<u64> {
        let mut looked = 0;
        let mut last_seq = None;
        for entry in &self.settled {
            if looked == max {
                break;
            }
            match entry {
                Entry::Paged { segment, taken, .. } => {
                    for (i, id) in segment.ids.iter().enumerate().skip(*taken) {
                        if looked == max {
                            break;
                        }
                        let seq = segment.first_seq + i as u64;
                        out.push((seq, *id));
                        last_seq = Some(seq);
                        looked += 1;
                    }
                }
                Entry::Held(m) => {
                    last_seq = Some(m.seq);
                    looked += 1;
                }
            }
        }
        last_seq.filter(|_| !out.is_empty())
    }

    /// The sequence number of the front message.
    fn front_seq(&self) -> Option<u64> {
        match self.settled.front() {
            Some(Entry::Paged { segment, taken, .. }) => Some(segment.first_seq + *taken as u64),
            Some(Entry::Held(m)) => Some(m.seq),
            None => self.pending.front().map(|p| p.message.seq),
        }
    }

    fn take_one(&mut self) -> Option<Taken> {
        let taken = match self.settled.front_mut() {
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
                Taken::Paged {
                    seq,
                    id,
                    redelivered,
                }
            }
            Some(Entry::Held(_)) => match self.settled.pop_front() {
                Some(Entry::Held(m)) => Taken::InMemory(m),
                _ => return None,
            },
            None => Taken::InMemory(self.pending.pop_front()?.message),
        };
        self.len -= 1;
        Some(taken)
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
        for pending in self.pending.drain(..) {
            each(Entry::Held(pending.message));
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
    fn to_read_looks_at_settled_entries_only_and_take_through_takes_what_is_left_of_them() {
        let mut b = Backlog::default();
        for seq in 0..6 {
            b.push(message(seq, Some(100 + seq)), Some(1));
        }
        b.push(message(6, None), None); // transient, held in order
        b.push(message(7, Some(107)), Some(1));
        b.push(message(8, Some(108)), Some(2)); // not committed yet
        b.settle(1);
        let mut ids = Vec::new();
        assert_eq!(b.to_read(4, &mut ids), Some(3));
        assert_eq!(ids, vec![(0, 100), (1, 101), (2, 102), (3, 103)]);
        ids.clear();
        assert_eq!(
            b.to_read(100, &mut ids),
            Some(7),
            "stops before the pending entry"
        );
        assert_eq!(ids.len(), 7);
        assert_eq!(b.len(), 9, "looking takes nothing");
        // Meanwhile the head went (x-max-length drop-head) and more arrived behind.
        let mut taken = Vec::new();
        b.take_front(2, &mut taken);
        b.push(message(9, Some(109)), Some(1));
        b.settle(2);
        taken.clear();
        b.take_front_through(7, &mut taken);
        assert_eq!(
            seqs(&taken),
            vec![
                (2, true),
                (3, true),
                (4, true),
                (5, true),
                (6, false),
                (7, true)
            ]
        );
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn nothing_to_read_when_the_front_is_in_memory() {
        let mut b = Backlog::default();
        b.push(message(0, None), None);
        b.push(message(1, Some(1)), Some(5));
        b.settle(4);
        assert_eq!(b.to_read(10, &mut Vec::new()), None);
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
