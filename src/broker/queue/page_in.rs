//! Paging a durable queue's backlog back into memory, with the queue lock released while the
//! store is read (an LMDB read may fault pages in from disk).
//!
//! Under the lock, [`Queue::begin_page_in`] looks at the front of the backlog and marks the
//! queue as paging in; the entries stay in the backlog meanwhile, so counts, purges, deletes and
//! x-max-length drops see them as usual. Without the lock, [`Queue::read_page`] reads the
//! bodies. Under the lock again, [`Queue::end_page_in`] takes whatever of that range is still at
//! the front (a purge, delete or drop-head during the read took the rest, and their reads are
//! dropped) and merges it into the ready list by sequence number: messages requeued meanwhile
//! with lower numbers stay ahead, and messages published meanwhile went to the backlog (it was
//! not empty), behind.

use std::sync::Arc;

use parking_lot::MutexGuard;

use super::backlog::Taken;
use super::queue::{Queue, QueueState};
use crate::broker::clock;
use crate::broker::durable::message_from_store;
use crate::broker::message::{Message, QueuedMessage};

/// Messages paged in from the store per read transaction.
const PAGE_IN_BATCH: usize = 1000;

/// What [`Queue::begin_page_in`] decided.
pub(super) enum PageIn {
    /// Nothing to page in, or another page-in is under way.
    Nothing,
    /// The front was in memory: already moved to the ready list.
    Done,
    /// These must be read from the store, with the lock released.
    Read(PageRead),
}

/// A range at the front of the backlog being read.
pub(super) struct PageRead {
    /// (sequence number, store id) of the paged messages in the range, in order.
    ids: Vec<(u64, u64)>,
    /// The range's last sequence number.
    last_seq: u64,
}

impl Queue {
    /// Refills the ready list from the front of the backlog. The lock is released while the
    /// store is read. False when there was nothing to do (empty backlog, or another page-in is
    /// under way: it dispatches when done).
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
        let Some(p) = &self.persistence else {
            return PageIn::Nothing;
        };
        if st.paging_in || st.backlog.is_empty() {
            return PageIn::Nothing;
        }
        st.backlog.settle(p.store.applied_ops());
        let mut ids = Vec::new();
        match st.backlog.to_read(PAGE_IN_BATCH, &mut ids) {
            Some(last_seq) => {
                st.paging_in = true;
                PageIn::Read(PageRead { ids, last_seq })
            }
            None => {
                let mut taken = Vec::new();
                st.backlog.take_front(PAGE_IN_BATCH, &mut taken);
                self.put_paged_in(st, taken, &[], Vec::new());
                PageIn::Done
            }
        }
    }

    /// Reads the range's bodies (no lock held): one entry per id of `read`, in order, `None`
    /// for a message that could not be read (logged).
    pub(super) fn read_page(&self, read: &PageRead) -> Vec<Option<Arc<Message>>> {
        let Some(p) = &self.persistence else {
            return Vec::new();
        };
        let mut loaded = Vec::with_capacity(read.ids.len());
        let mut exchange_name = None;
        let ids = read.ids.iter().map(|(_, id)| *id);
        let result = p.store.read_messages(ids, |id, record| {
            loaded.push(message_from_store(id, record, &mut exchange_name))
        });
        if let Err(e) = result {
            tracing::error!(queue = %self.name, "cannot read messages back from the store: {e}");
        }
        loaded
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
        let mut taken = Vec::with_capacity(read.ids.len());
        st.backlog.take_front_through(read.last_seq, &mut taken);
        self.put_paged_in(st, taken, &read.ids, loaded);
    }

    /// Puts messages taken from the front of the backlog into the ready list, in sequence
    /// order. `loaded[i]` is the body read for `ids[i]` (a read cut short has fewer).
    fn put_paged_in(
        &self,
        st: &mut QueueState,
        taken: Vec<Taken>,
        ids: &[(u64, u64)],
        mut loaded: Vec<Option<Arc<Message>>>,
    ) {
        // Usually nothing reached the ready list during the read: straight to its back.
        let mut merge = (!st.ready.is_empty()).then(|| Vec::with_capacity(taken.len()));
        let mut next = 0;
        for t in taken {
            let queued = match t {
                Taken::InMemory(m) => m,
                Taken::Paged {
                    seq,
                    id,
                    redelivered,
                } => {
                    // Both in sequence order; reads of messages dropped meanwhile are skipped.
                    while ids.get(next).is_some_and(|(s, _)| *s < seq) {
                        next += 1;
                    }
                    let message = match ids.get(next) {
                        Some(key) if *key == (seq, id) => {
                            loaded.get_mut(next).and_then(Option::take)
                        }
                        _ => None,
                    };
                    let Some(message) = message else {
                        tracing::error!(
                            queue = %self.name,
                            "message {id} at position {seq} could not be read back; skipped (it stays in the store)"
                        );
                        continue;
                    };
                    // Only messages without a TTL are paged while the broker runs, so a paged
                    // message with one was recovered: its clock restarts now.
                    let mut queued = QueuedMessage::new(seq, message, redelivered);
                    if let Some(ttl) = Self::ttl_of(st, &queued.message) {
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
}

#[cfg(test)]
#[path = "page_in_tests.rs"]
mod tests;
