//! The checkpoint thread: applies batches of operations that are already durable in the
//! write-ahead log to LMDB, one write transaction (one synced commit) per batch, leaving out what
//! cancelled in between (cancel.rs), and records in the same transaction the last log record it
//! covers. It runs beside the writer thread so that confirms keep flowing while LMDB's B-trees
//! are updated — a checkpoint of a fast publisher's 50 ms can take tens of milliseconds.
//!
//! Batches are applied strictly in order. At most [`QUEUED`] wait; the writer blocks on a full
//! queue, or is refused while checkpoints fail (it then nacks). A batch that fails is retried
//! after a back-off and nothing after it is applied before it, so LMDB never skips a record the
//! log still needs. At shutdown a batch that keeps failing is given up (after a few attempts):
//! the log keeps it, and the next start replays it.
//!
//! This file owns the thread and its queue; the log and its syncs are the writer's.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use super::apply::apply;
use super::cancel;
use super::heap_trim::HeapTrim;
use super::lmdb::Lmdb;
use super::retry::{Backoff, SHUTDOWN_ATTEMPTS};
use super::schema::WAL_APPLIED_KEY;
use super::writer::WriterShared;
use super::{Dbs, Op, StoreError};

/// Batches that may wait for the thread.
const QUEUED: usize = 2;

/// Operations applied between two looks at how much of the map is resident.
const RELEASE_EVERY_OPS: usize = 1024;

/// Durable operations for LMDB, in log order.
pub struct Batch {
    pub ops: Vec<Op>,
    /// Numbered operations they account for (notifications included).
    pub numbered: u64,
    /// Roughly what applying them makes LMDB touch through its map (see map_pages.rs).
    pub bytes: u64,
    /// The last log record they come from.
    pub last_seq: u64,
}

#[derive(Default)]
struct Progress {
    queue: VecDeque<Batch>,
    /// The last log record applied to LMDB.
    applied_seq: u64,
    /// A batch is being applied (taken off the queue, not done yet).
    busy: bool,
    /// The batch being applied failed its last attempt.
    failing: bool,
    /// No more batches will come: finish the queue and stop.
    stopping: bool,
}

struct Shared {
    progress: Mutex<Progress>,
    changed: Condvar,
}

pub struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the thread; `applied_seq` is the last log record LMDB holds already.
    pub fn start(
        lmdb: Arc<Lmdb>,
        dbs: Dbs,
        writer: Arc<WriterShared>,
        applied_seq: u64,
    ) -> std::io::Result<Checkpointer> {
        let shared = Arc::new(Shared {
            progress: Mutex::new(Progress {
                applied_seq,
                ..Progress::default()
            }),
            changed: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("warren-checkpoint".into())
            .spawn({
                let shared = shared.clone();
                move || run(&lmdb, dbs, &writer, &shared)
            })?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `batch`, waiting while the queue is full; refused (handed back) while
    /// checkpoints fail and the queue is full.
    pub fn submit(&self, batch: Batch) -> Result<(), Batch> {
        let mut progress = self.shared.progress.lock();
        while progress.queue.len() >= QUEUED {
            if progress.failing {
                return Err(batch);
            }
            self.shared.changed.wait(&mut progress);
        }
        progress.queue.push_back(batch);
        self.shared.changed.notify_all();
        Ok(())
    }

    /// The last log record applied to LMDB.
    pub fn applied_seq(&self) -> u64 {
        self.shared.progress.lock().applied_seq
    }

    /// Whether checkpoints are failing now.
    pub fn failing(&self) -> bool {
        self.shared.progress.lock().failing
    }

    /// Waits until every queued batch is applied; an error as soon as one fails.
    pub fn wait_idle(&self) -> Result<(), StoreError> {
        let mut progress = self.shared.progress.lock();
        loop {
            if progress.failing {
                return Err(StoreError("checkpoints to LMDB are failing".into()));
            }
            if progress.queue.is_empty() && !progress.busy {
                return Ok(());
            }
            self.shared.changed.wait(&mut progress);
        }
    }

    /// Applies what is queued (a failing batch a few more times at most) and stops the thread.
    pub fn finish(&mut self) {
        self.shared.progress.lock().stopping = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(lmdb: &Lmdb, dbs: Dbs, writer: &WriterShared, shared: &Shared) {
    let mut skip = Vec::new();
    let mut heap = HeapTrim::new();
    loop {
        let batch = {
            let mut progress = shared.progress.lock();
            loop {
                if let Some(batch) = progress.queue.pop_front() {
                    progress.busy = true;
                    break batch;
                }
                if progress.stopping {
                    return;
                }
                shared.changed.wait(&mut progress);
            }
        };
        let mut backoff = Backoff::new();
        let mut attempts = 0u32;
        loop {
            match checkpoint(lmdb, dbs, &batch, &mut skip) {
                Ok(()) => {
                    writer
                        .applied_ops
                        .fetch_add(batch.numbered, Ordering::Release);
                    writer.checkpoints.fetch_add(1, Ordering::Relaxed);
                    writer.flow.applied(&batch.ops, batch.bytes);
                    if let Ok(guard) = lmdb.shared() {
                        guard.map_pages().touched(batch.bytes);
                        guard.map_pages().release_if_resident();
                    }
                    heap.maybe_trim();
                    let mut progress = shared.progress.lock();
                    progress.applied_seq = progress.applied_seq.max(batch.last_seq);
                    progress.busy = false;
                    if progress.failing {
                        tracing::warn!("checkpoints to LMDB succeed again");
                        progress.failing = false;
                        writer.checkpoint_failing(false);
                    }
                    shared.changed.notify_all();
                    break;
                }
                Err(e) => {
                    attempts += 1;
                    let stopping = {
                        let mut progress = shared.progress.lock();
                        if !progress.failing {
                            tracing::error!(
                                "checkpoint to LMDB failed: {e}; the operations stay in the \
                                 write-ahead log, retrying; disk alarm raised"
                            );
                            progress.failing = true;
                            writer.checkpoint_failing(true);
                        }
                        shared.changed.notify_all();
                        progress.stopping
                    };
                    if stopping && attempts >= SHUTDOWN_ATTEMPTS {
                        tracing::error!(
                            "giving up the checkpoint at shutdown: {e}; the next start replays \
                             the write-ahead log"
                        );
                        return;
                    }
                    backoff.wait();
                }
            }
        }
    }
}

/// Applies `batch` in one transaction, with the log position it reaches.
fn checkpoint(
    lmdb: &Lmdb,
    dbs: Dbs,
    batch: &Batch,
    skip: &mut Vec<bool>,
) -> Result<(), StoreError> {
    if batch.ops.is_empty() {
        // Only notifications: no record to apply, nothing to commit.
        return Ok(());
    }
    cancel::plan(&batch.ops, skip);
    lmdb.write_with_pages(|wtxn, pages| {
        for (i, (op, _)) in batch
            .ops
            .iter()
            .zip(skip.iter())
            .filter(|(_, skip)| !**skip)
            .enumerate()
        {
            apply(&dbs, wtxn, op)?;
            if i % RELEASE_EVERY_OPS == RELEASE_EVERY_OPS - 1 {
                // Scattered deletes fault in (and map) whole neighbourhoods of pages each.
                pages.release_if_resident();
            }
        }
        dbs.meta
            .put(wtxn, WAL_APPLIED_KEY, &batch.last_seq.to_be_bytes())
    })
}
