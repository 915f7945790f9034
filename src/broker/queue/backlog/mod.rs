//! The part of a queue that does not fit its in-memory budget.
//!
//! Once a queue holds `queue_page_threshold` ready messages in memory, further messages wait
//! here instead of in the ready list, one FIFO per priority level (an ordinary queue has one):
//! as [`Run`]s of what the queue must know without the body (position, store id, size, expiry,
//! delivery count), with the bodies in LMDB, read back when the queue pages them in.
//!
//! Every message here has a store entry: a persistent message of a durable queue (or any
//! message of a quorum queue) its own index entry, written at publish; any other message — a
//! transient one, or one in a non-durable queue — a *spilled* entry under the queue's spill
//! id, written as it enters the backlog and dropped when it leaves, and by the store at start
//! (spill ids have no definition: their entries are swept as those of deleted queues).
//!
//! A message stays *pending* (body still in memory) until the store has applied its entry to
//! LMDB (`Store::applied_ops`), so paging in never races the writer. This file owns the
//! bookkeeping only; reading bodies back is the queue's business (page_in.rs).

mod run;

use std::collections::VecDeque;

pub use run::{PagedRef, Run};

use crate::broker::message::QueuedMessage;

/// What taking from the front hands back.
pub enum Taken {
    /// Body to read from the store.
    Paged(PagedRef),
    /// Still in memory (its store entry was not applied yet); `PagedRef` says which entry.
    InMemory(QueuedMessage, PagedRef),
}

/// What emptying the backlog hands back.
pub enum Drained {
    Paged(Run),
    InMemory(QueuedMessage, PagedRef),
}

/// A message whose store entry may not be applied yet.
struct Pending {
    message: QueuedMessage,
    paged: PagedRef,
    /// The store operation whose commit makes its entry readable.
    durable_at: u64,
}

/// One priority level: settled runs, then pending messages.
#[derive(Default)]
struct Level {
    settled: VecDeque<Run>,
    pending: VecDeque<Pending>,
}

impl Level {
    fn is_empty(&self) -> bool {
        self.settled.is_empty() && self.pending.is_empty()
    }

    fn front(&self) -> Option<PagedRef> {
        match self.settled.front() {
            Some(run) => run.front(),
            None => self.pending.front().map(|p| p.paged),
        }
    }

    fn take_one(&mut self) -> Option<Taken> {
        if let Some(run) = self.settled.front_mut() {
            let taken = run.pop_front();
            if run.is_empty() {
                self.settled.pop_front();
            }
            return taken.map(Taken::Paged);
        }
        let p = self.pending.pop_front()?;
        Some(Taken::InMemory(p.message, p.paged))
    }

    fn push_settled(&mut self, paged: &PagedRef) {
        if let Some(run) = self.settled.back_mut()
            && run.try_push(paged)
        {
            return;
        }
        self.settled.push_back(Run::new(paged));
    }
}

pub struct Backlog {
    /// Index = priority level.
    levels: Vec<Level>,
    len: u64,
    bytes: u64,
    /// Of those, the ones whose bodies are in memory (pending).
    pending: u64,
    pending_bytes: u64,
}

impl Backlog {
    /// `max_priority` 0 for an ordinary queue.
    pub fn new(max_priority: u8) -> Backlog {
        Backlog {
            levels: (0..=max_priority).map(|_| Level::default()).collect(),
            len: 0,
            bytes: 0,
            pending: 0,
            pending_bytes: 0,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Body bytes of every message here.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Messages (and their bytes) whose bodies are only in the store.
    pub fn paged_out(&self) -> (u64, u64) {
        (self.len - self.pending, self.bytes - self.pending_bytes)
    }

    /// Messages (and their bytes) here whose bodies are still in memory.
    pub fn in_memory(&self) -> (u64, u64) {
        (self.pending, self.pending_bytes)
    }

    /// The highest level holding anything.
    pub fn top_level(&self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        self.levels.iter().rposition(|l| !l.is_empty())
    }

    /// The level a message of priority `level` goes to (capped as the ready list caps it).
    fn level_mut(&mut self, level: usize) -> &mut Level {
        let top = self.levels.len() - 1;
        &mut self.levels[level.min(top)]
    }

    /// A recovered message, at the back of its level (before anything new arrives).
    pub fn push_recovered(&mut self, level: usize, paged: &PagedRef) {
        self.len += 1;
        self.bytes += u64::from(paged.size);
        self.level_mut(level).push_settled(paged);
    }

    /// A new message whose store entry (`paged`) becomes readable once operation `durable_at`
    /// is applied; its body is dropped then.
    pub fn push(&mut self, level: usize, message: QueuedMessage, paged: PagedRef, durable_at: u64) {
        self.len += 1;
        self.bytes += u64::from(paged.size);
        self.pending += 1;
        self.pending_bytes += u64::from(paged.size);
        self.level_mut(level).pending.push_back(Pending {
            message,
            paged,
            durable_at,
        });
    }

    /// Drops the bodies of messages whose store entries are applied (`applied_ops`).
    pub fn settle(&mut self, applied_ops: u64) {
        if self.pending == 0 {
            return;
        }
        for level in &mut self.levels {
            while level
                .pending
                .front()
                .is_some_and(|p| p.durable_at <= applied_ops)
            {
                let Some(p) = level.pending.pop_front() else {
                    break;
                };
                self.pending -= 1;
                self.pending_bytes -= u64::from(p.paged.size);
                level.push_settled(&p.paged);
            }
        }
    }

    /// The front message of `level`.
    pub fn front(&self, level: usize) -> Option<PagedRef> {
        self.levels.get(level)?.front()
    }

    /// Takes up to `max` messages from the front of `level` into `out`.
    pub fn take_front(&mut self, level: usize, max: usize, out: &mut Vec<Taken>) {
        while out.len() < max {
            let Some(taken) = self.levels.get_mut(level).and_then(Level::take_one) else {
                break;
            };
            self.count_out(&taken);
            out.push(taken);
        }
    }

    fn count_out(&mut self, taken: &Taken) {
        let size = match taken {
            Taken::Paged(r) => u64::from(r.size),
            Taken::InMemory(_, r) => {
                self.pending -= 1;
                self.pending_bytes -= u64::from(r.size);
                u64::from(r.size)
            }
        };
        self.len -= 1;
        self.bytes -= size;
    }

    /// What a page-in of `level` must read: the paged messages among its first `max`, into
    /// `out`, and the position of the last one. `None` when the front is in memory (pending):
    /// take it with [`Backlog::take_front`]. Looks only: the messages stay (counted,
    /// purgeable) until taken.
    pub fn to_read(&self, level: usize, max: usize, out: &mut Vec<PagedRef>) -> Option<u64> {
        let level = self.levels.get(level)?;
        for run in &level.settled {
            out.extend(run.iter().take(max - out.len()));
            if out.len() == max {
                break;
            }
        }
        out.last().map(|r| r.seq)
    }

    /// Takes the front messages of `level` positioned up to `last_seq` (what is left of a
    /// range chosen by [`Backlog::to_read`] once its read is done).
    pub fn take_front_through(&mut self, level: usize, last_seq: u64, out: &mut Vec<Taken>) {
        while self.front(level).is_some_and(|r| r.seq <= last_seq) {
            let Some(taken) = self.levels.get_mut(level).and_then(Level::take_one) else {
                break;
            };
            self.count_out(&taken);
            out.push(taken);
        }
    }

    /// Empties the backlog (purge, delete), handing every run and pending message to `each`.
    pub fn drain(&mut self, mut each: impl FnMut(Drained)) {
        for level in &mut self.levels {
            for run in level.settled.drain(..) {
                each(Drained::Paged(run));
            }
            for p in level.pending.drain(..) {
                each(Drained::InMemory(p.message, p.paged));
            }
        }
        self.len = 0;
        self.bytes = 0;
        self.pending = 0;
        self.pending_bytes = 0;
    }
}

#[cfg(test)]
mod tests;
