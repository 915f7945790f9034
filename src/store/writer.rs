//! The writer thread: drains every pending operation into one LMDB write transaction, commits
//! it (one fsync), then notifies the listeners waiting on that batch. Reference counts keep a
//! fanned-out message body stored once until the last queue is done with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;

use heed::{Env, RwTxn};

use super::map_pages::MapPages;
use super::schema::{envelope_size, index_key, seal_into};
use super::{CommitListener, Dbs, MessageRecord, Op};

/// Upper bound on operations per transaction, so one huge burst still commits in steps.
const MAX_BATCH: usize = 50_000;

pub fn run(
    env: &'static Env,
    dbs: Dbs,
    ops: Receiver<Op>,
    committed_ops: &AtomicU64,
    map_pages: &MapPages,
) {
    let mut batch: Vec<Op> = Vec::with_capacity(1024);
    let mut waiting: Vec<(Arc<dyn CommitListener>, u64)> = Vec::new();
    loop {
        let Ok(first) = ops.recv() else { return };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let mut shutdown = false;
        let batch_len = batch.len() as u64;
        // Roughly what this batch makes LMDB touch through its map (see map_pages.rs).
        let batch_bytes: u64 = batch
            .iter()
            .map(|op| match op {
                Op::PutMessage { record, .. } => {
                    64 + (record.body.len() + record.properties.len()) as u64
                }
                _ => 64,
            })
            .sum();
        let ok = match env.write_txn() {
            Ok(mut wtxn) => {
                let mut applied = Ok(());
                for op in batch.drain(..) {
                    match op {
                        Op::Notify { listener, token } => waiting.push((listener, token)),
                        Op::Shutdown => shutdown = true,
                        op => {
                            if applied.is_ok() {
                                applied = apply(&dbs, &mut wtxn, op);
                            }
                        }
                    }
                }
                match applied.and_then(|()| wtxn.commit()) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!("store commit failed: {e}");
                        false
                    }
                }
            }
            Err(e) => {
                tracing::error!("store cannot begin a transaction: {e}");
                batch.clear();
                false
            }
        };
        // Advanced even when the batch failed (logged above), so waiters are never stuck.
        committed_ops.fetch_add(batch_len, Ordering::Release);
        map_pages.touched(batch_bytes);
        for (listener, token) in waiting.drain(..) {
            listener.committed(token, ok);
        }
        if shutdown {
            return;
        }
    }
}

fn apply(dbs: &Dbs, wtxn: &mut RwTxn, op: Op) -> heed::Result<()> {
    match op {
        Op::PutMessage { id, record } => put_message(dbs, wtxn, id, &record),
        Op::Enqueue { queue_id, seq, id } => {
            dbs.queue_index
                .put(wtxn, &index_key(queue_id, seq), &id.to_be_bytes())?;
            add_ref(dbs, wtxn, id, 1)
        }
        Op::Remove { queue_id, seq, id } => {
            if dbs.queue_index.delete(wtxn, &index_key(queue_id, seq))? {
                add_ref(dbs, wtxn, id, -1)?;
            }
            Ok(())
        }
        Op::RemoveSegment { queue_id, segment } => {
            for (i, id) in segment.ids.iter().enumerate() {
                let key = index_key(queue_id, segment.first_seq + i as u64);
                if dbs.queue_index.delete(wtxn, &key)? {
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
            Ok(())
        }
        Op::Notify { .. } | Op::Shutdown => Ok(()),
    }
}

fn put_message(dbs: &Dbs, wtxn: &mut RwTxn, id: u64, r: &MessageRecord) -> heed::Result<()> {
    let exchange = r.exchange.as_bytes();
    let (ex_len, rk_len, props_len) = (
        (exchange.len() as u32).to_be_bytes(),
        (r.routing_key.len() as u32).to_be_bytes(),
        (r.properties.len() as u32).to_be_bytes(),
    );
    let parts: [&[u8]; 7] = [
        &ex_len,
        exchange,
        &rk_len,
        r.routing_key.as_bytes(),
        &props_len,
        &r.properties,
        &r.body,
    ];
    let len: usize = parts.iter().map(|p| p.len()).sum();
    // Written straight into the map: the body is copied once, from the read buffer to disk.
    dbs.messages
        .put_reserved(wtxn, &id.to_be_bytes(), envelope_size(len), |space| {
            seal_into(space, &parts)
        })
}

/// Adjusts a message's reference count; at zero the message and its count are deleted.
fn add_ref(dbs: &Dbs, wtxn: &mut RwTxn, id: u64, delta: i64) -> heed::Result<()> {
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
