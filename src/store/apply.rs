//! Applying store operations to LMDB inside a write transaction: the writer's checkpoints and
//! the replay of the write-ahead log at start-up both come here. Reference counts keep a
//! fanned-out message body stored once until the last queue is done with it.
//! Each operation is applied exactly once: a checkpoint records the last write-ahead record it
//! applied in the same transaction, and replay starts after it.

use heed::RwTxn;

use super::schema::{envelope_size, index_key, index_value, seal_into};
use super::{Dbs, MessageRecord, Op};
use super::{schedule_index, stream_log};

pub fn apply(dbs: &Dbs, wtxn: &mut RwTxn, op: &Op) -> heed::Result<()> {
    match *op {
        Op::PutMessage { id, ref record } => put_message(dbs, wtxn, id, record),
        Op::Enqueue {
            queue_id,
            seq,
            id,
            ref meta,
        } => {
            dbs.queue_index
                .put(wtxn, &index_key(queue_id, seq), &index_value(id, meta))?;
            add_ref(dbs, wtxn, id, 1)
        }
        Op::Remove {
            queue_id, seq, id, ..
        } => {
            if dbs.queue_index.delete(wtxn, &index_key(queue_id, seq))? {
                add_ref(dbs, wtxn, id, -1)?;
            }
            Ok(())
        }
        Op::RemoveSegment {
            queue_id,
            ref segment,
        } => {
            for (i, id) in segment.ids.iter().enumerate() {
                let key = index_key(queue_id, segment.first_seq + i as u64);
                if dbs.queue_index.delete(wtxn, &key)? {
                    add_ref(dbs, wtxn, *id, -1)?;
                }
            }
            Ok(())
        }
        Op::RemoveEntries {
            queue_id,
            ref entries,
        } => {
            for (seq, id) in entries {
                if dbs.queue_index.delete(wtxn, &index_key(queue_id, *seq))? {
                    add_ref(dbs, wtxn, *id, -1)?;
                }
            }
            Ok(())
        }
        Op::DropQueue { queue_id } => {
            let mut ids = Vec::new();
            {
                let mut iter = dbs
                    .queue_index
                    .prefix_iter_mut(wtxn, &queue_id.to_be_bytes())?;
                while let Some(entry) = iter.next() {
                    let (_, value) = entry?;
                    if let Some(id) = super::schema::u64_value(value) {
                        ids.push(id);
                    }
                    // SAFETY: neither key nor value is used after the deletion.
                    unsafe { iter.del_current()? };
                }
            }
            for id in ids {
                add_ref(dbs, wtxn, id, -1)?;
            }
            stream_log::drop_stream(dbs, wtxn, queue_id)
        }
        Op::StreamAppend {
            stream_id,
            offset,
            timestamp,
            ref record,
        } => stream_log::put_entry(dbs, wtxn, stream_id, offset, timestamp, record),
        Op::StreamSegment {
            stream_id,
            ref segment,
        } => stream_log::put_segment(dbs, wtxn, stream_id, segment),
        Op::StreamTrim { stream_id, before } => stream_log::trim(dbs, wtxn, stream_id, before),
        Op::Schedule { schedule_id, key } => schedule_index::put_entry(dbs, wtxn, schedule_id, key),
        Op::Unschedule { schedule_id, key } => {
            schedule_index::delete_entry(dbs, wtxn, schedule_id, key)
        }
        Op::DropSchedule { schedule_id } => schedule_index::drop_schedule(dbs, wtxn, schedule_id),
        Op::Unlogged(ref op) => apply(dbs, wtxn, op),
        Op::Notify { .. } | Op::Shutdown => Ok(()),
    }
}

fn put_message(dbs: &Dbs, wtxn: &mut RwTxn, id: u64, r: &MessageRecord) -> heed::Result<()> {
    put_record(dbs.messages, wtxn, &id.to_be_bytes(), &[], r)
}

/// Writes `prefix` then a message record (exchange, routing key, properties, each with its
/// length, then the body) in one envelope under `key` — straight into the map: the body is
/// copied once, from the read buffer to disk.
pub(super) fn put_record(
    db: super::Db,
    wtxn: &mut RwTxn,
    key: &[u8],
    prefix: &[u8],
    r: &MessageRecord,
) -> heed::Result<()> {
    let exchange = r.exchange.as_bytes();
    let (ex_len, rk_len, props_len) = (
        (exchange.len() as u32).to_be_bytes(),
        (r.routing_key.len() as u32).to_be_bytes(),
        (r.properties.len() as u32).to_be_bytes(),
    );
    let parts: [&[u8]; 8] = [
        prefix,
        &ex_len,
        exchange,
        &rk_len,
        r.routing_key.as_bytes(),
        &props_len,
        &r.properties,
        &r.body,
    ];
    let len: usize = parts.iter().map(|p| p.len()).sum();
    db.put_reserved(wtxn, key, envelope_size(len), |space| {
        seal_into(space, &parts)
    })
}

/// Adjusts a message's reference count; at zero the message and its count are deleted.
pub(super) fn add_ref(dbs: &Dbs, wtxn: &mut RwTxn, id: u64, delta: i64) -> heed::Result<()> {
    let key = id.to_be_bytes();
    let current = dbs
        .refcounts
        .get(wtxn, &key)?
        .and_then(super::schema::u64_value)
        .unwrap_or(0) as i64;
    let next = current + delta;
    if next <= 0 {
        dbs.refcounts.delete(wtxn, &key)?;
        dbs.messages.delete(wtxn, &key)?;
    } else {
        dbs.refcounts
            .put(wtxn, &key, &(next as u64).to_be_bytes())?;
    }
    Ok(())
}
