//! Reading a queue's paged messages back from the store, with the queue lock released while
//! the store is read (an LMDB read may fault pages in from disk): paging the backlog in, and
//! the bodies of paged messages that leave for a dead-letter exchange (each read once, in
//! `finish`, after the lock is released).
//!
//! Under the lock, [`Queue::begin_page_in`] drops the expired messages at the front of the
//! level to page in (without reading them), looks at what follows and marks the queue as
//! paging in; the entries stay in the backlog meanwhile, so counts, purges, deletes and
//! x-max-length drops see them as usual. Without the lock, [`Queue::read_page`] reads the
//! bodies. Under the lock again, [`Queue::end_page_in`] takes whatever of that range is still at
//! the front (a purge, delete or drop-head during the read took the rest, and their reads are
//! dropped) and merges it into the ready list by sequence number: messages requeued meanwhile
//! with lower numbers stay ahead, and messages published meanwhile went to the backlog (it was
//! not empty), behind.

use std::sync::Arc;

use parking_lot::MutexGuard;

use super::backlog::{PagedRef, Run, Taken};
use super::dead_letter::Reason;
use super::paging::Head;
use super::queue::{Dead, Queue, QueueState};
use crate::broker::clock;
use crate::broker::durable::decode_stored;
use crate::broker::message::{Message, QueuedMessage};

/// Messages paged in from the store per read transaction.
const PAGE_IN_BATCH: usize = 1000;

/// What [`Queue::begin_page_in`] decided.
pub(super) enum PageIn {
    /// Nothing to page in, or another page-in is under way.
    Nothing,
    /// The front was in memory (or expired): already moved to the ready list (or dropped).
    Done,
    /// These must be read from the store, with the lock released.
    Read(PageRead),
}

/// A range at the front of one backlog level being read.
pub(super) struct PageRead {
    level: usize,
    /// The paged messages of the range, in order.
    refs: Vec<PagedRef>,
    /// The range's last sequence number.
    last_seq: u64,
}

impl Queue {
    /// Refills the ready list from the front of the backlog's head level. The lock is released
    /// while the store is read. False when there was nothing to do (empty backlog, or another
    /// page-in is under way: it dispatches when done).
    pub(super) fn page_in(&self, st: &mut MutexGuard<'_, QueueState>) -> bool {
        match self.begin_page_in(st) {
            PageIn::Nothing => false,
            PageIn::Done => true,
            PageIn::Read(read) => {
                let loaded = MutexGuard::unlocked(st, || self.read_page(&read));
                self.end_page_in(st, read, loaded);
                true
            }
        }
    }

    /// Under the lock: chooses the range to read and marks the queue as paging in, or moves
    /// the front at once when it is in memory.
    pub(super) fn begin_page_in(&self, st: &mut QueueState) -> PageIn {
        let Some(p) = &self.paging else {
            return PageIn::Nothing;
        };
        if st.paging_in || st.backlog.is_empty() {
            return PageIn::Nothing;
        }
        st.backlog.settle(p.store.applied_ops());
        let level = match Self::head(st) {
            Head::Backlog(level) => level,
            // The ready list is ahead: page in the top level behind it.
            Head::Ready | Head::Empty => match st.backlog.top_level() {
                Some(level) => level,
                None => return PageIn::Nothing,
            },
        };
        if self.drop_expired_front(st, level, clock::now_ms()) > 0 {
            return PageIn::Done;
        }
        let mut refs = Vec::new();
        match st.backlog.to_read(level, PAGE_IN_BATCH, &mut refs) {
            Some(last_seq) => {
                st.paging_in = true;
                PageIn::Read(PageRead {
                    level,
                    refs,
                    last_seq,
                })
            }
            None => {
                let mut taken = Vec::new();
                st.backlog.take_front(level, PAGE_IN_BATCH, &mut taken);
                self.put_paged_in(st, taken, &[], Vec::new());
                PageIn::Done
            }
        }
    }

    /// Drops the expired messages at the front of a backlog level, without reading them (a
    /// dead-lettered one is read once, in `finish`). Returns how many went.
    pub(super) fn drop_expired_front(&self, st: &mut QueueState, level: usize, now: u64) -> usize {
        let mut dropped = 0;
        while st
            .backlog
            .front(level)
            .is_some_and(|r| r.expires_at != 0 && r.expires_at < now)
        {
            let mut taken = Vec::with_capacity(1);
            st.backlog.take_front(level, 1, &mut taken);
            let Some(t) = taken.pop() else { break };
            self.drop_taken(st, t, Reason::Expired);
            dropped += 1;
        }
        dropped
    }

    /// Reads the bodies of `refs` (no lock held): one entry per ref, in order, `None` for a
    /// message that could not be read (logged).
    pub(super) fn read_bodies(&self, refs: &[PagedRef]) -> Vec<Option<Arc<Message>>> {
        let Some(store) = self.store_for_paging() else {
            return Vec::new();
        };
        let mut loaded = Vec::with_capacity(refs.len());
        let mut exchange_name = None;
        let mut spilled = refs.iter().map(|r| r.spilled);
        let result = store.read_messages(refs.iter().map(|r| r.id), |id, record| {
            // A spilled message is not the queue's to keep in the store once back in memory.
            let store_id = (spilled.next() == Some(false)).then_some(id);
            loaded.push(decode_stored(id, record, &mut exchange_name, store_id))
        });
        if let Err(e) = result {
            tracing::error!(queue = %self.name, "cannot read messages back from the store: {e}");
        }
        loaded
    }

    /// Reads the range's bodies (no lock held).
    pub(super) fn read_page(&self, read: &PageRead) -> Vec<Option<Arc<Message>>> {
        self.read_bodies(&read.refs)
    }

    /// Under the lock again: what is left of the range goes to the ready list.
    pub(super) fn end_page_in(
        &self,
        st: &mut QueueState,
        read: PageRead,
        loaded: Vec<Option<Arc<Message>>>,
    ) {
        st.paging_in = false;
        self.paged_in.notify_all();
        if st.deleted {
            return;
        }
        let mut taken = Vec::with_capacity(read.refs.len());
        st.backlog
            .take_front_through(read.level, read.last_seq, &mut taken);
        self.put_paged_in(st, taken, &read.refs, loaded);
    }

    /// Puts messages taken from the front of the backlog into the ready list, in sequence
    /// order. `loaded[i]` is the body read for `refs[i]` (a read cut short has fewer).
    fn put_paged_in(
        &self,
        st: &mut QueueState,
        taken: Vec<Taken>,
        refs: &[PagedRef],
        mut loaded: Vec<Option<Arc<Message>>>,
    ) {
        // Usually nothing reached the ready list during the read: straight to its back.
        let mut merge = (!st.ready.is_empty()).then(|| Vec::with_capacity(taken.len()));
        let mut next = 0;
        for t in taken {
            self.left_backlog(&t);
            let queued = match t {
                Taken::InMemory(m, _) => m,
                Taken::Paged(r) => {
                    // Both in sequence order; reads of messages dropped meanwhile are skipped.
                    while refs.get(next).is_some_and(|read| read.seq < r.seq) {
                        next += 1;
                    }
                    let message = match refs.get(next) {
                        Some(read) if read.seq == r.seq && read.id == r.id => {
                            loaded.get_mut(next).and_then(Option::take)
                        }
                        _ => None,
                    };
                    if r.spilled {
                        self.forget_paged(&r);
                    }
                    let Some(message) = message else {
                        tracing::error!(
                            queue = %self.name,
                            "message {} at position {} could not be read back; skipped{}",
                            r.id,
                            r.seq,
                            if r.spilled { "" } else { " (it stays in the store)" }
                        );
                        continue;
                    };
                    let mut queued = QueuedMessage::new(r.seq, message, r.redelivered);
                    queued.delivery_count = r.delivery_count;
                    queued.expires_at = r.expires_at;
                    if r.expires_at == 0
                        && let Some(ttl) = Self::ttl_of(st, &queued.message)
                    {
                        // Recovered without its expiry: the clock restarts now.
                        queued.expires_at = clock::now_ms().saturating_add(ttl);
                    }
                    queued
                }
            };
            match &mut merge {
                Some(batch) => batch.push(queued),
                None => st.ready.push_back(queued),
            }
        }
        if let Some(batch) = merge {
            st.ready.requeue(batch);
        }
    }

    /// Dead letters with their bodies: paged ones read (once, the lock released), then their
    /// store entries dropped. In the order they left the queue.
    pub(super) fn load_dead(&self, dead: Vec<(Dead, Reason)>) -> Vec<(Arc<Message>, Reason)> {
        let refs: Vec<PagedRef> = dead
            .iter()
            .filter_map(|(d, _)| match d {
                Dead::Paged(r) => Some(*r),
                Dead::Loaded(_) => None,
            })
            .collect();
        let mut bodies = if refs.is_empty() {
            Vec::new()
        } else {
            self.read_bodies(&refs)
        }
        .into_iter();
        for r in &refs {
            self.forget_paged(r);
        }
        dead.into_iter()
            .filter_map(|(d, reason)| match d {
                Dead::Loaded(m) => Some((m, reason)),
                Dead::Paged(r) => match bodies.next().flatten() {
                    Some(m) => Some((m, reason)),
                    None => {
                        tracing::error!(
                            queue = %self.name,
                            "dead letter {} at position {} could not be read back; dropped",
                            r.id,
                            r.seq
                        );
                        None
                    }
                },
            })
            .collect()
    }

    /// A run of paged messages leaves the queue undelivered (purge): its store entries go.
    pub(super) fn forget_run(&self, run: Run) {
        let (Some(store), Some(queue_id)) = (self.store_for_paging(), self.index_id(run.spilled()))
        else {
            return;
        };
        let entries = run.iter().map(|r| (r.seq, r.id)).collect();
        match run.spilled() {
            true => store.unspill_entries(queue_id, entries),
            false => store.remove_entries(queue_id, entries),
        }
    }
}

#[cfg(test)]
#[path = "page_in_tests.rs"]
mod tests;
