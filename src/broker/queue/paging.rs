//! Where a queue's messages wait: the in-memory ready list up to the queue's paging threshold,
//! the paged backlog (backlog/) beyond it, for every classic and quorum queue of a broker with
//! a store — durable or not, whatever its arguments. Streams keep their own log instead.
//!
//! This file decides which of the two a message goes to, writes the spilled store entry of a
//! message the queue does not otherwise store, finds the queue's head across both (the highest
//! priority level first, in memory before paged within a level), and drops paged messages
//! without reading their bodies unless they are dead-lettered (then `finish` reads each once,
//! with the lock released: dead_letter/paged.rs). Paging in is page_in.rs's.

use std::sync::Arc;

use super::backlog::{PagedRef, Taken};
use super::dead_letter::Reason;
use super::queue::{Dead, Queue, QueueState};
use super::stream::epoch_ms;
use crate::broker::clock;
use crate::broker::message::QueuedMessage;
use crate::store::{EntryMeta, IndexSegment, MessageRecord, Store};

/// A queue's handle on the store for paging.
pub struct Paging {
    pub store: Arc<Store>,
    /// Index entries of messages the queue does not keep across a restart (transient ones, or
    /// any in a non-durable queue) while they are paged out. No definition names this id, so
    /// the store drops its entries at start.
    pub spill_id: u64,
    /// Ready messages kept in memory; beyond this, new messages go to the backlog.
    pub threshold: usize,
}

impl Paging {
    pub fn new(store: Arc<Store>, threshold: usize) -> Paging {
        let spill_id = store.next_queue_id();
        Paging {
            store,
            spill_id,
            threshold,
        }
    }
}

/// Where the queue's next message comes from.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Head {
    Ready,
    /// The front of this backlog level (to page in, or drop).
    Backlog(usize),
    Empty,
}

impl Queue {
    /// Puts a message at the back of the queue: in memory while the queue is within its
    /// threshold, else in the backlog. `durable_at`: the store operation that wrote the
    /// queue's own index entry for it, if it has one.
    pub(super) fn push_ready_or_paged(
        &self,
        st: &mut QueueState,
        queued: QueuedMessage,
        durable_at: Option<u64>,
    ) {
        let Some(p) = self.paging.as_ref().filter(|p| {
            st.settings.pages && (!st.backlog.is_empty() || st.ready.len() >= p.threshold)
        }) else {
            st.ready.push_back(queued);
            return;
        };
        st.backlog.settle(p.store.applied_ops());
        let m = &queued.message;
        let (id, durable_at, spilled) = match (durable_at, m.store_id) {
            (Some(at), Some(id)) => (id, at, false),
            // Stored once already (for another queue): another reference to that record.
            (_, Some(id)) => (id, p.store.spill(p.spill_id, queued.seq, id, None), true),
            (_, None) => {
                let id = p.store.next_message_id();
                let record = MessageRecord {
                    exchange: m.exchange.clone(),
                    routing_key: m.routing_key.clone(),
                    properties: m.properties.raw().clone(),
                    body: m.body.clone(),
                };
                (
                    id,
                    p.store.spill(p.spill_id, queued.seq, id, Some(record)),
                    true,
                )
            }
        };
        let paged = PagedRef {
            seq: queued.seq,
            id,
            size: u32::try_from(m.body.len()).unwrap_or(u32::MAX),
            expires_at: queued.expires_at,
            delivery_count: queued.delivery_count,
            redelivered: queued.redelivered,
            spilled,
        };
        let level = st.ready.level_of(&queued);
        st.backlog.push(level, queued, paged, durable_at);
    }

    /// What the queue's index entry for `m` says besides its id: enough for a restarted queue
    /// to put it at its priority level and expire it without reading it.
    pub(super) fn entry_meta(&self, st: &QueueState, m: &QueuedMessage) -> EntryMeta {
        let expires_epoch_ms = match m.expires_at {
            0 => 0,
            at => epoch_ms().saturating_add(at.saturating_sub(clock::now_ms())),
        };
        EntryMeta {
            size: u32::try_from(m.message.body.len()).unwrap_or(u32::MAX),
            priority: st.ready.level_of(m) as u8,
            expires_epoch_ms,
        }
    }

    /// The queue is done with a paged message's store entry.
    pub(super) fn forget_paged(&self, r: &PagedRef) {
        let (Some(queue_id), Some(store)) = (self.index_id(r.spilled), self.store_for_paging())
        else {
            return;
        };
        match r.spilled {
            true => store.unspill(queue_id, r.seq, r.id),
            false => self.remove_entry(store, queue_id, r.seq, r.id),
        }
    }

    /// Removes a delivered or dropped message's index entry. A priority queue's deliveries
    /// follow the levels, not the store's order: its removes are scattered over the database,
    /// each dirtying a page of its own, and weigh that in the store's flow.
    pub(super) fn remove_entry(&self, store: &Store, queue_id: u64, seq: u64, id: u64) {
        match self.options.arguments.max_priority {
            0 => store.remove(queue_id, seq, id),
            _ => store.remove_scattered(queue_id, seq, id),
        }
    }

    /// The index id a paged message's entry is under.
    pub(super) fn index_id(&self, spilled: bool) -> Option<u64> {
        match spilled {
            true => self.paging.as_ref().map(|p| p.spill_id),
            false => self.persistence.as_ref().map(|p| p.queue_id),
        }
    }

    pub(super) fn store_for_paging(&self) -> Option<&Arc<Store>> {
        self.paging.as_ref().map(|p| &p.store)
    }

    /// A message taken from the backlog leaves it: a pending one's spilled entry goes (it is
    /// in memory now, or gone).
    pub(super) fn left_backlog(&self, taken: &Taken) {
        if let Taken::InMemory(_, r) = taken
            && r.spilled
        {
            self.forget_paged(r);
        }
    }

    /// A paged message leaves without being delivered: dead-lettered (its body read once,
    /// after the lock is released) or just forgotten.
    pub(super) fn drop_paged(&self, st: &mut QueueState, r: PagedRef, reason: Reason) {
        if st.settings.dead_letter.is_some() {
            st.dead.push((Dead::Paged(r), reason));
        } else {
            self.forget_paged(&r);
        }
    }

    /// Drops a message taken from the backlog for `reason`.
    pub(super) fn drop_taken(&self, st: &mut QueueState, taken: Taken, reason: Reason) {
        self.left_backlog(&taken);
        match taken {
            Taken::Paged(r) => self.drop_paged(st, r, reason),
            Taken::InMemory(m, _) => self.drop_message(st, m, reason),
        }
    }

    /// Where the next message comes from: the highest priority level holding anything, from
    /// memory before the backlog within a level.
    pub(super) fn head(st: &QueueState) -> Head {
        match (st.ready.top_level(), st.backlog.top_level()) {
            (Some(r), Some(b)) if b > r => Head::Backlog(b),
            (Some(_), _) => Head::Ready,
            (None, Some(b)) => Head::Backlog(b),
            (None, None) => Head::Empty,
        }
    }

    /// A higher priority level than the ready list's waits in the backlog: page it in first.
    pub(super) fn backlog_ahead(st: &QueueState) -> bool {
        !st.backlog.is_empty() && matches!(Self::head(st), Head::Backlog(_))
    }

    /// Takes the head message off the queue, in memory or paged, to drop it.
    pub(super) fn drop_head(&self, st: &mut QueueState, reason: Reason) -> bool {
        match Self::head(st) {
            Head::Ready => match st.ready.pop_front() {
                Some(m) => self.drop_message(st, m, reason),
                None => return false,
            },
            Head::Backlog(level) => {
                let mut taken = Vec::with_capacity(1);
                st.backlog.take_front(level, 1, &mut taken);
                let Some(t) = taken.pop() else { return false };
                self.drop_taken(st, t, reason);
            }
            Head::Empty => return false,
        }
        true
    }

    /// The head message's expiry (0: never), wherever it is.
    pub(super) fn head_expires_at(st: &QueueState) -> u64 {
        match Self::head(st) {
            Head::Ready => st.ready.front().map_or(0, |m| m.expires_at),
            Head::Backlog(level) => st.backlog.front(level).map_or(0, |r| r.expires_at),
            Head::Empty => 0,
        }
    }

    /// Messages in memory and paged out, with their body bytes (the management API's
    /// `messages_ram`, `messages_paged_out`, `message_bytes_ram`, `message_bytes_paged_out`).
    pub fn memory_split(&self) -> MemorySplit {
        let mut st = self.state.lock();
        if let Some(p) = &self.paging {
            // Bodies the store has meanwhile applied are dropped now, not at the next publish.
            st.backlog.settle(p.store.applied_ops());
        }
        let (pending, pending_bytes) = st.backlog.in_memory();
        let (paged, paged_bytes) = st.backlog.paged_out();
        MemorySplit {
            unacked_bytes: st.unacked_bytes,
            ram: st.ready.len() as u64 + pending,
            ram_bytes: st.ready.bytes() + pending_bytes,
            paged_out: paged,
            paged_out_bytes: paged_bytes,
        }
    }
}

impl Queue {
    /// Puts a recovered index (FIFO order) back as paged messages, marked redelivered: they
    /// may have been delivered before the restart. Each goes to its priority level with its
    /// size and expiry, as its index entry says; bodies are read when delivered.
    pub fn restore(&self, segments: Vec<IndexSegment>) {
        let mut st = self.state.lock();
        let (now, now_epoch) = (clock::now_ms(), super::stream::epoch_ms());
        for segment in segments {
            st.next_seq = st
                .next_seq
                .max(segment.first_seq + segment.ids.len() as u64);
            for (i, id) in segment.ids.iter().enumerate() {
                let meta = segment.meta(i);
                let expires_at = match meta.expires_epoch_ms {
                    0 => 0,
                    // On this broker's clock; one already past expires at once.
                    at => now.saturating_add(at.saturating_sub(now_epoch)).max(1),
                };
                let level = st.ready.level_for(meta.priority);
                st.backlog.push_recovered(
                    level,
                    &PagedRef {
                        seq: segment.first_seq + i as u64,
                        id: *id,
                        size: meta.size,
                        expires_at,
                        delivery_count: 0,
                        redelivered: true,
                        spilled: false,
                    },
                );
            }
        }
    }
}

/// See [`Queue::memory_split`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MemorySplit {
    /// Body bytes delivered and not yet acknowledged.
    pub unacked_bytes: u64,
    pub ram: u64,
    pub ram_bytes: u64,
    pub paged_out: u64,
    pub paged_out_bytes: u64,
}
