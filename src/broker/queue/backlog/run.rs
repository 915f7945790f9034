//! A run of paged messages of one priority level, in FIFO order: what a queue keeps in memory
//! of a message whose body is only in the store. Everything the queue must decide without
//! reading the body is here — position, store id, body size (length limits), expiry (TTL),
//! delivery count (quorum queues) — packed as offsets from the run's first message: 12 bytes
//! a message, 16 with an expiry, 20 with a delivery count.
//!
//! A message that does not fit the packing (an offset out of range, another `redelivered` or
//! `spilled` flag, a full run) starts a new run; this file owns the packing only.

use crate::store::SEGMENT_CAPACITY;

/// A paged message, unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagedRef {
    pub seq: u64,
    /// The message record's id in the store.
    pub id: u64,
    /// Body bytes (`x-max-length-bytes`, the management API's byte counts).
    pub size: u32,
    /// [`crate::broker::clock::now_ms`] at which it expires in this queue; 0 = never.
    pub expires_at: u64,
    pub delivery_count: u32,
    pub redelivered: bool,
    /// Its index entry is under the queue's spill id (a message the queue does not keep across
    /// a restart: transient, or in a non-durable queue) rather than its durable index.
    pub spilled: bool,
}

const NEVER: i32 = i32::MIN;

pub struct Run {
    base_seq: u64,
    base_id: u64,
    /// `seq - base_seq`, increasing.
    seqs: Vec<u32>,
    /// `id - base_id`.
    ids: Vec<i32>,
    sizes: Vec<u32>,
    /// `expires_at - expiry_base`, or [`NEVER`]; empty while no message of the run expires.
    expiries: Vec<i32>,
    expiry_base: u64,
    /// Delivery counts; empty while all are 0.
    counts: Vec<u32>,
    /// Messages taken from the front.
    taken: usize,
    redelivered: bool,
    spilled: bool,
}

impl Run {
    pub fn new(first: &PagedRef) -> Run {
        let mut run = Run {
            base_seq: first.seq,
            base_id: first.id,
            seqs: Vec::new(),
            ids: Vec::new(),
            sizes: Vec::new(),
            expiries: Vec::new(),
            expiry_base: first.expires_at,
            counts: Vec::new(),
            taken: 0,
            redelivered: first.redelivered,
            spilled: first.spilled,
        };
        let pushed = run.try_push(first);
        debug_assert!(pushed);
        run
    }

    /// Appends `r` if it fits this run; false when it must start a new one.
    pub fn try_push(&mut self, r: &PagedRef) -> bool {
        if self.seqs.len() >= SEGMENT_CAPACITY
            || r.redelivered != self.redelivered
            || r.spilled != self.spilled
        {
            return false;
        }
        let Some(seq) = r
            .seq
            .checked_sub(self.base_seq)
            .and_then(|d| u32::try_from(d).ok())
            .filter(|d| self.seqs.last().is_none_or(|last| d > last))
        else {
            return false;
        };
        let Ok(id) = i32::try_from(r.id as i128 - self.base_id as i128) else {
            return false;
        };
        let expiry = match r.expires_at {
            0 => NEVER,
            at => match i32::try_from(at as i128 - self.expiry_base as i128) {
                Ok(NEVER) | Err(_) => return false,
                Ok(d) => d,
            },
        };
        // The optional columns start with the first message that needs them (the ones before
        // never expire, were never delivered).
        let n = self.seqs.len();
        if expiry != NEVER || !self.expiries.is_empty() {
            self.expiries.resize(n, NEVER);
            self.expiries.push(expiry);
        }
        if r.delivery_count != 0 || !self.counts.is_empty() {
            self.counts.resize(n, 0);
            self.counts.push(r.delivery_count);
        }
        self.seqs.push(seq);
        self.ids.push(id);
        self.sizes.push(r.size);
        true
    }

    /// Messages not taken yet.
    pub fn len(&self) -> usize {
        self.seqs.len() - self.taken
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, i: usize) -> Option<PagedRef> {
        let seq = self.base_seq + u64::from(*self.seqs.get(i)?);
        let expires_at = match self.expiries.get(i) {
            None | Some(&NEVER) => 0,
            Some(d) => (self.expiry_base as i128 + *d as i128) as u64,
        };
        Some(PagedRef {
            seq,
            id: (self.base_id as i128 + self.ids[i] as i128) as u64,
            size: self.sizes[i],
            expires_at,
            delivery_count: self.counts.get(i).copied().unwrap_or(0),
            redelivered: self.redelivered,
            spilled: self.spilled,
        })
    }

    pub fn front(&self) -> Option<PagedRef> {
        self.get(self.taken)
    }

    pub fn pop_front(&mut self) -> Option<PagedRef> {
        let front = self.get(self.taken)?;
        self.taken += 1;
        Some(front)
    }

    /// The messages not taken yet, in order.
    pub fn iter(&self) -> impl Iterator<Item = PagedRef> + '_ {
        (self.taken..self.seqs.len()).filter_map(|i| self.get(i))
    }

    /// Whether its index entries are under the queue's spill id.
    pub fn spilled(&self) -> bool {
        self.spilled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(seq: u64, id: u64) -> PagedRef {
        PagedRef {
            seq,
            id,
            size: 100,
            expires_at: 0,
            delivery_count: 0,
            redelivered: false,
            spilled: false,
        }
    }

    #[test]
    fn the_first_message_keeps_its_expiry_and_count() {
        let first = PagedRef {
            expires_at: 9,
            delivery_count: 2,
            ..r(0, 0)
        };
        let mut run = Run::new(&first);
        assert!(run.try_push(&r(1, 1)));
        assert_eq!(run.iter().collect::<Vec<_>>(), vec![first, r(1, 1)]);
    }

    #[test]
    fn packs_and_unpacks_every_field() {
        let first = PagedRef {
            size: 7,
            ..r(10, 1_000)
        };
        let mut run = Run::new(&first);
        let later = [
            PagedRef {
                expires_at: 50_000,
                ..r(13, 990)
            },
            PagedRef {
                delivery_count: 3,
                ..r(20, 1_200)
            },
            PagedRef {
                expires_at: 40_000,
                size: u32::MAX,
                ..r(21, 1_201)
            },
        ];
        for l in &later {
            assert!(run.try_push(l));
        }
        let all: Vec<PagedRef> = run.iter().collect();
        assert_eq!(all, [&[first][..], &later[..]].concat());
        assert_eq!(run.pop_front(), Some(first));
        assert_eq!(run.len(), 3);
        assert_eq!(run.front(), Some(later[0]));
    }

    #[test]
    fn what_does_not_fit_starts_a_new_run() {
        let mut run = Run::new(&r(5, 100));
        assert!(!run.try_push(&r(5, 101)), "not after the last position");
        assert!(
            !run.try_push(&r(6 + u64::from(u32::MAX), 101)),
            "position too far"
        );
        assert!(!run.try_push(&r(6, 100 + (1 << 31))), "id too far");
        assert!(!run.try_push(&PagedRef {
            redelivered: true,
            ..r(6, 101)
        }));
        assert!(!run.try_push(&PagedRef {
            spilled: true,
            ..r(6, 101)
        }));
        assert!(run.try_push(&r(6, 101)));
        for i in 2..SEGMENT_CAPACITY as u64 {
            assert!(run.try_push(&r(5 + i, 100 + i)));
        }
        assert!(!run.try_push(&r(1_000_000, 1)), "full");
        assert_eq!(run.len(), SEGMENT_CAPACITY);
    }
}
