//! The writer thread: drains every pending operation into one LMDB write transaction, commits
//! it (one fsync), then notifies the listeners waiting on that batch. Reference counts keep a
//! fanned-out message body stored once until the last queue is done with it.
//!
//! A batch that fails to commit is not lost and does not count as committed: its listeners
//! are told `ok = false` (publishers get basic.nack), its data operations are kept and tried
//! again — in their order, followed by what arrived since — after a short back-off, and
//! [`WriterShared::committed_ops`] only moves once a commit succeeds. While commits fail the
//! store reports itself failing ([`WriterShared::failing`]), which raises the disk alarm.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use heed::RwTxn;
use tokio::sync::watch;

use super::lmdb::Lmdb;
use super::schema::{envelope_size, index_key, seal_into};
use super::{CommitListener, Dbs, MessageRecord, Op, StoreError};

/// Upper bound on new operations taken into one transaction, so one huge burst still commits
/// in steps (operations kept from a failed attempt come on top).
const MAX_BATCH: usize = 50_000;
/// First wait before retrying a failed commit; doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Attempts at the final commit when shutting down on a failing store.
const SHUTDOWN_ATTEMPTS: u32 = 5;

/// What the writer shares with the [`Store`](super::Store).
pub struct WriterShared {
    /// Every operation numbered up to this is durable (committed).
    pub committed_ops: AtomicU64,
    /// True from a failed commit until the next successful one.
    pub failing: watch::Sender<bool>,
    /// Test hook: this many coming commits fail as if the disk had refused them.
    pub injected_failures: AtomicU64,
}

impl WriterShared {
    pub fn new() -> Self {
        WriterShared {
            committed_ops: AtomicU64::new(0),
            failing: watch::Sender::new(false),
            injected_failures: AtomicU64::new(0),
        }
    }

    /// Consumes one injected failure, if any is armed (one relaxed load when none is).
    fn take_injected_failure(&self) -> bool {
        self.injected_failures.load(Ordering::Relaxed) != 0
            && self
                .injected_failures
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
    }
}

/// Operations taken from the queue and not committed yet.
#[derive(Default)]
struct Pending {
    /// Data operations, in the order they were sent.
    data: Vec<Op>,
    /// Listeners to tell about the next commit attempt.
    waiting: Vec<(Arc<dyn CommitListener>, u64)>,
    /// How many numbered operations (data, notifications, shutdown) this holds.
    numbered: u64,
    shutdown: bool,
}

impl Pending {
    fn take(&mut self, op: Op) {
        self.numbered += 1;
        match op {
            Op::Notify { listener, token } => self.waiting.push((listener, token)),
            Op::Shutdown => self.shutdown = true,
            op => self.data.push(op),
        }
    }

    fn is_empty(&self) -> bool {
        self.numbered == 0
    }

    fn notify(&mut self, ok: bool) {
        for (listener, token) in self.waiting.drain(..) {
            listener.committed(token, ok);
        }
    }

    /// Roughly what committing this makes LMDB touch through its map (see map_pages.rs).
    fn bytes(&self) -> u64 {
        self.data
            .iter()
            .map(|op| match op {
                Op::PutMessage { record, .. } => {
                    64 + (record.body.len() + record.properties.len()) as u64
                }
                _ => 64,
            })
            .sum()
    }
}

pub fn run(lmdb: &Lmdb, dbs: Dbs, ops: Receiver<Op>, shared: &WriterShared) {
    let mut pending = Pending::default();
    let mut backoff = FIRST_BACKOFF;
    let mut failed_attempts = 0u32;
    loop {
        // Wait for work only when nothing is left over from a failed attempt.
        if pending.is_empty() {
            let Ok(first) = ops.recv() else { return };
            pending.take(first);
        }
        for _ in 0..MAX_BATCH {
            match ops.try_recv() {
                Ok(op) => pending.take(op),
                Err(_) => break,
            }
        }
        match commit(lmdb, &dbs, &pending.data, shared) {
            Ok(()) => {
                shared
                    .committed_ops
                    .fetch_add(pending.numbered, Ordering::Release);
                if let Ok(guard) = lmdb.shared() {
                    guard.map_pages().touched(pending.bytes());
                }
                pending.data.clear();
                pending.numbered = 0;
                pending.notify(true);
                if failed_attempts > 0 {
                    tracing::warn!(
                        "store commits again after {failed_attempts} failed attempts; \
                         clearing the disk alarm"
                    );
                    shared.failing.send_replace(false);
                    failed_attempts = 0;
                    backoff = FIRST_BACKOFF;
                }
                if pending.shutdown {
                    return;
                }
            }
            Err(e) => {
                failed_attempts += 1;
                if failed_attempts == 1 {
                    tracing::error!(
                        "store commit failed: {e}; {} operations kept for retry, waiting \
                         confirms nacked, disk alarm raised",
                        pending.data.len()
                    );
                    // Before the nacks go out: whoever sees a nack can already see the alarm.
                    shared.failing.send_replace(true);
                } else {
                    tracing::warn!(
                        "store commit failed again (attempt {failed_attempts}): {e}; {} \
                         operations kept",
                        pending.data.len()
                    );
                }
                pending.notify(false);
                if pending.shutdown && failed_attempts >= SHUTDOWN_ATTEMPTS {
                    tracing::error!(
                        "shutting down with {} operations the store could not commit",
                        pending.data.len()
                    );
                    return;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Applies `data` in one write transaction and commits it (growing the map if it is full).
fn commit(lmdb: &Lmdb, dbs: &Dbs, data: &[Op], shared: &WriterShared) -> Result<(), StoreError> {
    lmdb.write(|wtxn| {
        for op in data {
            apply(dbs, wtxn, op)?;
        }
        if shared.take_injected_failure() {
            // Dropping the transaction aborts it: nothing of this attempt reaches the disk.
            return Err(heed::Error::Io(std::io::Error::other(
                "injected commit failure (test hook)",
            )));
        }
        Ok(())
    })
}

fn apply(dbs: &Dbs, wtxn: &mut RwTxn, op: &Op) -> heed::Result<()> {
    match *op {
        Op::PutMessage { id, ref record } => put_message(dbs, wtxn, id, record),
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
