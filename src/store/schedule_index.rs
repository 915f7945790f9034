//! Schedules: the due-time index of delayed messages (`schedule_index`), kept in LMDB so that a
//! delayed exchange holds millions of messages with only its near future in memory.
//!
//! Key: schedule id (u64) ‖ due time (u64, ms since the epoch) ‖ message id (u64), big-endian,
//! so a schedule's entries iterate in due order (publish order within one millisecond: ids are
//! allocated in publish order). The value is empty; the message record lives in `messages`
//! with one reference per entry, like a queue's. Message ids are unique, so no two entries
//! share a key.
//!
//! This file owns the key layout, applying the three schedule operations, reading a range back
//! with its records, and what recovery needs (entry counts per schedule, referenced ids). When
//! a message is due, and which schedule id belongs to which exchange, is the broker's business
//! (`broker/delayed/`).

use std::collections::HashMap;
use std::ops::Bound;

use heed::{RoTxn, RwTxn};

use super::apply::add_ref;
use super::schema::u64_value;
use super::{Dbs, MessageRecord, Op, RecordError, Store, StoreError, StoredMessage};

pub const KEY_LEN: usize = 24;

/// Where an entry sits in its schedule: due time first, then message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DueKey {
    pub due_ms: u64,
    pub id: u64,
}

impl DueKey {
    pub const FIRST: DueKey = DueKey { due_ms: 0, id: 0 };
}

/// `schedule_id ‖ due_ms ‖ id`, big-endian.
pub fn schedule_key(schedule_id: u64, key: DueKey) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[..8].copy_from_slice(&schedule_id.to_be_bytes());
    k[8..16].copy_from_slice(&key.due_ms.to_be_bytes());
    k[16..].copy_from_slice(&key.id.to_be_bytes());
    k
}

pub fn parse_schedule_key(key: &[u8]) -> Option<(u64, DueKey)> {
    if key.len() != KEY_LEN {
        return None;
    }
    Some((
        u64_value(&key[..8])?,
        DueKey {
            due_ms: u64_value(&key[8..16])?,
            id: u64_value(&key[16..])?,
        },
    ))
}

pub fn put_entry(dbs: &Dbs, wtxn: &mut RwTxn, schedule_id: u64, key: DueKey) -> heed::Result<()> {
    dbs.schedule_index
        .put(wtxn, &schedule_key(schedule_id, key), &[])?;
    add_ref(dbs, wtxn, key.id, 1)
}

pub fn delete_entry(
    dbs: &Dbs,
    wtxn: &mut RwTxn,
    schedule_id: u64,
    key: DueKey,
) -> heed::Result<()> {
    if dbs
        .schedule_index
        .delete(wtxn, &schedule_key(schedule_id, key))?
    {
        add_ref(dbs, wtxn, key.id, -1)?;
    }
    Ok(())
}

/// Deletes a whole schedule (its exchange was deleted, or it was a previous run's spill).
pub fn drop_schedule(dbs: &Dbs, wtxn: &mut RwTxn, schedule_id: u64) -> heed::Result<()> {
    let mut ids = Vec::new();
    {
        let mut iter = dbs
            .schedule_index
            .prefix_iter_mut(wtxn, &schedule_id.to_be_bytes())?;
        while let Some(entry) = iter.next() {
            let (key, _) = entry?;
            if let Some((_, key)) = parse_schedule_key(key) {
                ids.push(key.id);
            }
            // SAFETY: neither key nor value is used after the deletion.
            unsafe { iter.del_current()? };
        }
    }
    for id in ids {
        add_ref(dbs, wtxn, id, -1)?;
    }
    Ok(())
}

/// What recovery learns from the schedules: entries per schedule id, and every message id they
/// reference (pushed onto `referenced`, once per entry, for the orphan sweep).
pub fn recover(
    dbs: &Dbs,
    rtxn: &RoTxn,
    referenced: &mut Vec<u64>,
    damaged: &mut u64,
) -> heed::Result<HashMap<u64, u64>> {
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for entry in dbs.schedule_index.iter(rtxn)? {
        let (key, _) = entry?;
        let Some((schedule_id, key)) = parse_schedule_key(key) else {
            tracing::error!("skipping a damaged schedule index entry");
            *damaged += 1;
            continue;
        };
        referenced.push(key.id);
        *counts.entry(schedule_id).or_default() += 1;
    }
    Ok(counts)
}

impl Store {
    /// Schedule `schedule_id` holds message `key.id` until `key.due_ms`; with `record` when the
    /// message is not stored yet. `logged` false: neither goes to the write-ahead log (a
    /// transient message, or a non-durable exchange: a crash may lose it, and the start drops
    /// what is left of such schedules). Returns the operation's number.
    pub fn schedule(
        &self,
        schedule_id: u64,
        key: DueKey,
        record: Option<MessageRecord>,
        logged: bool,
    ) -> u64 {
        let wrap = |op: Op| match logged {
            true => op,
            false => Op::Unlogged(Box::new(op)),
        };
        if let Some(record) = record {
            self.send(wrap(Op::PutMessage { id: key.id, record }));
        }
        self.send(wrap(Op::Schedule { schedule_id, key }))
    }

    /// The schedule is done with the entry (delivered at its due time); `logged` as it was
    /// scheduled.
    pub fn unschedule(&self, schedule_id: u64, key: DueKey, logged: bool) {
        let op = Op::Unschedule { schedule_id, key };
        self.send(match logged {
            true => op,
            false => Op::Unlogged(Box::new(op)),
        });
    }

    /// Drops a whole schedule.
    pub fn drop_schedule(&self, schedule_id: u64) {
        self.send(Op::DropSchedule { schedule_id });
    }

    /// Reads a schedule's entries from `from` on, in due order, with their records, until
    /// `max_count` entries or `max_bytes` of records were read (at least one entry if there is
    /// one). Reads LMDB: the caller waits for [`Store::applied_ops`] to cover what it needs.
    /// True when it stopped at a limit (more may follow), false at the schedule's end.
    pub fn read_schedule(
        &self,
        schedule_id: u64,
        from: DueKey,
        max_count: usize,
        max_bytes: usize,
        mut found: impl FnMut(DueKey, Result<StoredMessage, RecordError>),
    ) -> Result<bool, StoreError> {
        let shared = self.lmdb.shared()?;
        let rtxn = shared.read_txn()?;
        let start = schedule_key(schedule_id, from);
        let end = schedule_key(
            schedule_id,
            DueKey {
                due_ms: u64::MAX,
                id: u64::MAX,
            },
        );
        let range = (Bound::Included(&start[..]), Bound::Included(&end[..]));
        let (mut count, mut bytes, mut more) = (0usize, 0usize, false);
        for entry in self.dbs.schedule_index.range(&rtxn, &range)? {
            let (key, _) = entry?;
            let Some((_, key)) = parse_schedule_key(key) else {
                continue;
            };
            let record = match self.dbs.messages.get(&rtxn, &key.id.to_be_bytes())? {
                Some(value) => {
                    bytes += value.len();
                    StoredMessage::decode(value)
                }
                None => Err(RecordError::Malformed("message record missing")),
            };
            count += 1;
            found(key, record);
            if count >= max_count || bytes >= max_bytes {
                more = true;
                break;
            }
        }
        drop(rtxn);
        shared.map_pages().touched(bytes as u64);
        shared.map_pages().release_if_resident();
        Ok(more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_schedule_then_due_time_then_id() {
        let k = |s, due_ms, id| schedule_key(s, DueKey { due_ms, id });
        let mut keys = vec![
            k(2, 0, 0),
            k(1, 5, 1),
            k(1, 5, 0),
            k(1, 1, 9),
            k(1, u64::MAX, 0),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                k(1, 1, 9),
                k(1, 5, 0),
                k(1, 5, 1),
                k(1, u64::MAX, 0),
                k(2, 0, 0)
            ]
        );
        let key = DueKey { due_ms: 7, id: 3 };
        assert_eq!(parse_schedule_key(&schedule_key(9, key)), Some((9, key)));
        assert_eq!(parse_schedule_key(&[0; 16]), None);
    }
}
