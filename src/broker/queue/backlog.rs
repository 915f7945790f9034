//! The tail of a durable queue that does not fit its in-memory budget.
//!
//! Once a durable queue holds more ready messages than its paging threshold, further messages
//! wait here instead of in the ready list: persistent ones only as (sequence, store id) — runs
//! of consecutive entries compress to one — with their bodies in LMDB, read back when the queue
//! pages them in; transient ones (which cannot be paged) in memory, in FIFO order with the rest.
//! A persistent message stays *pending* (body still in memory) until the store has committed
//! its index entry, so paging in never races the writer.
//!
//! This file owns the bookkeeping only; reading bodies back is the queue's business.

use std::collections::VecDeque;

use crate::broker::message::QueuedMessage;
use crate::store::IndexRun;

/// One settled entry of the backlog.
pub enum Entry {
    /// Bodies in the store only.
    Paged { run: IndexRun, redelivered: bool },
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

    /// A recovered run of paged messages.
    pub fn push_run(&mut self, run: IndexRun, redelivered: bool) {
        self.len += run.len;
        self.settled.push_back(Entry::Paged { run, redelivered });
    }

    fn push_settled_paged(&mut self, seq: u64, id: u64, redelivered: bool) {
        if let Some(Entry::Paged {
            run,
            redelivered: r,
        }) = self.settled.back_mut()
            && *r == redelivered
            && run.extend(seq, id)
        {
            return;
        }
        self.settled.push_back(Entry::Paged {
            run: IndexRun { seq, id, len: 1 },
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
                Some(Entry::Paged { run, redelivered }) => {
                    let (seq, id, redelivered) = (run.seq, run.id, *redelivered);
                    run.seq += 1;
                    run.id += 1;
                    run.len -= 1;
                    if run.len == 0 {
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

    /// Empties the backlog (purge, delete), handing every entry to `each`.
    pub fn drain(&mut self, mut each: impl FnMut(Entry)) {
        for entry in self.settled.drain(..) {
            each(entry);
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

    fn message(seq: u64, store_id: Option<u64>) -> QueuedMessage {
        let message = Arc::new(Message {
            exchange: Arc::from(""),
            routing_key: Default::default(),
            properties: Default::default(),
            body: Default::default(),
            store_id,
        });
        QueuedMessage {
            seq,
            message,
            redelivered: false,
        }
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
    fn committed_persistent_messages_compress_into_one_run_and_keep_fifo_order() {
        let mut b = Backlog::default();
        for seq in 0..1000 {
            b.push(message(seq, Some(500 + seq)), Some(seq + 1));
        }
        b.push(message(1000, None), None); // transient, behind them
        b.settle(400); // only ops 1..=400 committed
        assert_eq!(b.settled.len(), 1, "400 paged messages are one run");
        assert_eq!(b.pending.len(), 601);
        b.settle(u64::MAX);
        assert_eq!(b.settled.len(), 2, "one run plus the transient message");
        assert_eq!(b.len(), 1001);
        let mut taken = Vec::new();
        b.take_front(998, &mut taken);
        b.take_front(1001, &mut taken);
        let got = seqs(&taken);
        assert_eq!(got.len(), 1001);
        assert!(
            got.iter().enumerate().all(|(i, (seq, _))| *seq == i as u64),
            "FIFO order"
        );
        assert!(got[..1000].iter().all(|(_, paged)| *paged) && !got[1000].1);
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
}
