//! Start-up recovery: reads the definitions and every durable queue's index back. Message
//! bodies are *not* read here — a queue gets its index as segments of message ids and
//! pages bodies in as it delivers — so a backlog of millions of messages restarts in little
//! time and memory.
//!
//! Every message record's envelope is checked here (a sequential read of the map, released as it
//! goes): a queue that references a damaged record does not load, with one log line, and its
//! data stays in the store untouched. A damaged definition or index entry is skipped, logged.
//!
//! Then records that no index entry references are dropped (orphans.rs), unless an index entry
//! was unreadable (it might have been the reference).

use std::collections::HashMap;

use super::lmdb::Lmdb;
use super::orphans;
use super::schedule_index;
use super::schema::{
    EntryMeta, RecordError, SEEDED_KEY, open, parse_index_key, parse_index_value, u64_value,
};
use super::{Dbs, Definition, StoreError};

/// Index entries with consecutive sequence numbers `first_seq, first_seq + 1, …`, the message
/// ids they hold and what else the entries say of them: 12 bytes a message, more only when
/// some have a priority or an expiry. (Ids are not consecutive: publishers on several
/// connections interleave their id allocation with their turns at the queue.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSegment {
    pub first_seq: u64,
    pub ids: Vec<u64>,
    /// Body sizes (0: an entry of the first format, which did not say).
    pub sizes: Vec<u32>,
    /// Empty while every entry so far has priority 0.
    pub priorities: Vec<u8>,
    /// Expiries in ms since the epoch; empty while none so far expires.
    pub expiries: Vec<u64>,
}

/// Ids per segment: full segments waste no capacity (growth doubles up to exactly this).
pub const SEGMENT_CAPACITY: usize = 16 * 1024;

impl IndexSegment {
    pub fn new(seq: u64, id: u64, meta: &EntryMeta) -> Self {
        let mut segment = IndexSegment {
            first_seq: seq,
            ..Default::default()
        };
        segment.push(id, meta);
        segment
    }

    /// Appends (seq, id) if it continues the segment and the segment has room.
    pub fn extend(&mut self, seq: u64, id: u64, meta: &EntryMeta) -> bool {
        if seq == self.first_seq + self.ids.len() as u64 && self.ids.len() < SEGMENT_CAPACITY {
            self.push(id, meta);
            true
        } else {
            false
        }
    }

    fn push(&mut self, id: u64, meta: &EntryMeta) {
        // The optional columns start with the first entry that needs them, 0 for those before.
        let n = self.ids.len();
        if meta.priority != 0 || !self.priorities.is_empty() {
            self.priorities.resize(n, 0);
            self.priorities.push(meta.priority);
        }
        if meta.expires_epoch_ms != 0 || !self.expiries.is_empty() {
            self.expiries.resize(n, 0);
            self.expiries.push(meta.expires_epoch_ms);
        }
        self.ids.push(id);
        self.sizes.push(meta.size);
    }

    /// What the entry at index `i` says besides its id.
    pub fn meta(&self, i: usize) -> EntryMeta {
        EntryMeta {
            size: self.sizes.get(i).copied().unwrap_or(0),
            priority: self.priorities.get(i).copied().unwrap_or(0),
            expires_epoch_ms: self.expiries.get(i).copied().unwrap_or(0),
        }
    }
}

#[derive(Default)]
pub struct Recovered {
    pub definitions: Vec<Definition>,
    /// Per queue id: its index in FIFO order.
    pub queues: HashMap<u64, Vec<IndexSegment>>,
    /// Per schedule id (see schedule_index.rs): how many delayed messages it holds. Bodies and
    /// entries stay in the store; a delayed exchange reads its near future when it starts.
    pub schedules: HashMap<u64, u64>,
    /// Queues that must not load (a damaged record), with the reason.
    pub failed: HashMap<u64, String>,
    pub max_message_id: u64,
    pub max_queue_id: u64,
    /// The default user and vhost were created once already (see [`super::Store::mark_seeded`]).
    pub seeded: bool,
}

pub fn recover(lmdb: &Lmdb, dbs: &Dbs) -> Result<Recovered, StoreError> {
    let mut recovered = Recovered::default();
    // Every message id the index references, once per reference.
    let mut referenced = Vec::new();
    let mut damaged_index_entries = 0u64;
    read(
        lmdb,
        dbs,
        &mut recovered,
        &mut referenced,
        &mut damaged_index_entries,
    )?;
    if damaged_index_entries > 0 {
        tracing::warn!(
            "{damaged_index_entries} damaged queue index entries: not dropping unreferenced \
             message records this time"
        );
    } else {
        orphans::sweep(lmdb, dbs, referenced)?;
    }
    Ok(recovered)
}

/// Reads definitions and indexes into `recovered` in one read transaction.
fn read(
    lmdb: &Lmdb,
    dbs: &Dbs,
    recovered: &mut Recovered,
    referenced: &mut Vec<u64>,
    damaged_index_entries: &mut u64,
) -> Result<(), StoreError> {
    let shared = lmdb.shared()?;
    let map_pages = shared.map_pages();
    let rtxn = shared.read_txn()?;
    recovered.seeded = dbs.meta.get(&rtxn, SEEDED_KEY)?.is_some();
    for entry in dbs.definitions.iter(&rtxn)? {
        let (_, value) = entry?;
        match Definition::decode(value) {
            Ok(def) => {
                if let Definition::Queue { id, .. } = &def {
                    recovered.max_queue_id = recovered.max_queue_id.max(*id);
                }
                recovered.definitions.push(def);
            }
            Err(e) => tracing::error!("skipping a damaged definition record: {e}"),
        }
    }
    if let Some((key, _)) = dbs.messages.last(&rtxn)? {
        recovered.max_message_id = u64_value(key).unwrap_or(0);
    }
    // Check every message record's envelope (length, CRC) so that a damaged one makes its
    // queue fail to load now, with a clear log line, rather than surface mid-delivery.
    let mut damaged: HashMap<u64, RecordError> = HashMap::new();
    for entry in dbs.messages.iter(&rtxn)? {
        let (key, value) = entry?;
        map_pages.touched(value.len() as u64);
        if let (Err(e), Some(id)) = (open(value), u64_value(key)) {
            damaged.insert(id, e);
        }
    }
    for entry in dbs.queue_index.iter(&rtxn)? {
        let (key, value) = entry?;
        let (Some((queue_id, seq)), Some((id, meta))) =
            (parse_index_key(key), parse_index_value(value))
        else {
            tracing::error!("skipping a damaged queue index entry");
            *damaged_index_entries += 1;
            continue;
        };
        referenced.push(id);
        if let Some(e) = damaged.get(&id) {
            recovered.failed.entry(queue_id).or_insert_with(|| {
                format!("stored message {id} at position {seq} is damaged ({e})")
            });
        }
        let segments = recovered.queues.entry(queue_id).or_default();
        if !segments
            .last_mut()
            .is_some_and(|s| s.extend(seq, id, &meta))
        {
            segments.push(IndexSegment::new(seq, id, &meta));
        }
    }
    recovered.schedules = schedule_index::recover(dbs, &rtxn, referenced, damaged_index_entries)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(priority: u8, expires_epoch_ms: u64) -> EntryMeta {
        EntryMeta {
            size: 3,
            priority,
            expires_epoch_ms,
        }
    }

    #[test]
    fn a_segment_keeps_each_entrys_priority_and_expiry_from_the_first_on() {
        let entries = [meta(7, 0), meta(0, 5), meta(0, 0), meta(2, 9)];
        let mut segment = IndexSegment::new(10, 100, &entries[0]);
        for (i, m) in entries.iter().enumerate().skip(1) {
            assert!(segment.extend(10 + i as u64, 100 + i as u64, m));
        }
        assert!(!segment.extend(20, 1, &meta(0, 0)), "not the next position");
        let got: Vec<EntryMeta> = (0..4).map(|i| segment.meta(i)).collect();
        assert_eq!(got, entries);
        let plain = IndexSegment::new(0, 1, &meta(0, 0));
        assert!(plain.priorities.is_empty() && plain.expiries.is_empty());
    }
}
