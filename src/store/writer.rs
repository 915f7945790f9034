//! The writer thread: takes every pending operation as one batch, appends it to the
//! write-ahead log (wal/), syncs the log once when anybody waits for the batch (a publisher
//! confirm, a tx.commit) and then tells them. Every `CHECKPOINT_EVERY` (or `CHECKPOINT_BYTES`)
//! the operations written since go to the checkpoint thread (checkpoint.rs), which applies them
//! to LMDB; the log's segments it has covered are recycled or deleted here.
//!
//! A batch that fails to reach the disk is not lost and does not count as durable: its
//! listeners are told `ok = false` (publishers get basic.nack), its data operations are kept
//! and tried again — in their order, followed by what arrived since — after a short back-off,
//! and [`WriterShared::committed_ops`] only moves once they are durable. Before the retry,
//! everything the log held is checkpointed into LMDB and the log starts over in a new file, so
//! nothing durable depends on a file that once failed. While writes or checkpoints fail the
//! store reports itself failing ([`WriterShared::failing`]), which raises the disk alarm.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::checkpoint::{Batch, Checkpointer};
use super::op_queue::{OpQueue, Woken};
use super::retry::{Backoff, SHUTDOWN_ATTEMPTS};
use super::wal::Wal;
use super::{CommitListener, Op, StoreError};

/// Upper bound on new operations taken into one batch, so one huge burst still goes to the
/// log in steps (operations kept from a failed attempt come on top).
const MAX_BATCH: usize = 50_000;
/// A checkpoint runs this long after the oldest batch LMDB has not seen yet…
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// …or once this many bytes wait for one, whichever comes first. A checkpoint's transaction
/// holds its dirty pages in memory (about 1.5 times these bytes), and LMDB keeps the most it
/// ever needed: 16 MB rather than 32 MB took D1's peak from 243 to 195 MB, with P2, P5, P6 and P7
/// unchanged (bench/ab).
const CHECKPOINT_BYTES: u64 = 16 << 20;

/// What the writer shares with the [`Store`](super::Store).
pub struct WriterShared {
    /// Every operation numbered up to this is durable (in the synced log, or in LMDB).
    pub committed_ops: AtomicU64,
    /// Every operation numbered up to this is in LMDB (readable through a read transaction).
    pub applied_ops: AtomicU64,
    /// True from a failed write or checkpoint until the next successful one.
    pub failing: watch::Sender<bool>,
    log_failing: AtomicBool,
    checkpoints_failing: AtomicBool,
    /// Test hook: this many coming batches fail as if the disk had refused them.
    pub injected_failures: AtomicU64,
    /// How many times the log was synced (a test counts them against confirms).
    pub log_syncs: Arc<AtomicU64>,
    /// How many checkpoints committed to LMDB.
    pub checkpoints: AtomicU64,
    /// Bytes sent and not yet applied: publishers wait past a limit (flow.rs).
    pub flow: Arc<super::flow::StoreFlow>,
}

impl WriterShared {
    pub fn new() -> Self {
        WriterShared {
            committed_ops: AtomicU64::new(0),
            applied_ops: AtomicU64::new(0),
            failing: watch::Sender::new(false),
            log_failing: AtomicBool::new(false),
            checkpoints_failing: AtomicBool::new(false),
            injected_failures: AtomicU64::new(0),
            log_syncs: Arc::new(AtomicU64::new(0)),
            checkpoints: AtomicU64::new(0),
            flow: Default::default(),
        }
    }

    /// Log writes fail (`true`) or work again.
    fn log_failing(&self, failing: bool) {
        self.log_failing.store(failing, Ordering::Relaxed);
        self.refresh_failing();
    }

    /// Checkpoints fail (`true`) or work again.
    pub fn checkpoint_failing(&self, failing: bool) {
        self.checkpoints_failing.store(failing, Ordering::Relaxed);
        self.refresh_failing();
    }

    fn refresh_failing(&self) {
        let failing = self.log_failing.load(Ordering::Relaxed)
            || self.checkpoints_failing.load(Ordering::Relaxed);
        self.failing.send_if_modified(|current| {
            let changed = *current != failing;
            *current = failing;
            changed
        });
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

/// Operations taken from the queue and not durable yet.
#[derive(Default)]
struct Pending {
    /// Data operations, in the order they were sent.
    data: Vec<Op>,
    /// Listeners to tell about the next attempt.
    waiting: Vec<(Arc<dyn CommitListener>, u64)>,
    /// How many numbered operations (data, notifications, shutdown) this holds.
    numbered: u64,
    shutdown: bool,
    /// When the oldest of them arrived: written to the log by `CHECKPOINT_EVERY` later even if
    /// nobody waits for them.
    since: Option<Instant>,
}

impl Pending {
    fn take(&mut self, op: Op) {
        self.numbered += 1;
        self.since.get_or_insert_with(Instant::now);
        match op {
            Op::Notify { listener, token } => self.waiting.push((listener, token)),
            Op::Shutdown => self.shutdown = true,
            op => self.data.push(op),
        }
    }

    fn is_empty(&self) -> bool {
        self.numbered == 0
    }

    fn deadline(&self) -> Option<Instant> {
        self.since.map(|since| since + CHECKPOINT_EVERY)
    }

    fn notify(&mut self, ok: bool) {
        // Grouped by listener (a stable sort: each one's tokens stay in order), so that each
        // hears `released` once, after its last token.
        self.waiting
            .sort_by_key(|(listener, _)| Arc::as_ptr(listener).cast::<()>() as usize);
        for (i, (listener, token)) in self.waiting.iter().enumerate() {
            listener.committed(*token, ok);
            let last_of_listener = self
                .waiting
                .get(i + 1)
                .is_none_or(|(next, _)| !Arc::ptr_eq(next, listener));
            if last_of_listener {
                listener.released();
            }
        }
        self.waiting.clear();
    }
}

/// Operations written to the log that LMDB has not seen yet.
#[derive(Default)]
struct Unapplied {
    ops: Vec<Op>,
    /// Numbered operations they account for (notifications included).
    numbered: u64,
    /// Roughly what applying them makes LMDB touch through its map (see map_pages.rs); their
    /// weight in the store's flow (flow.rs).
    bytes: u64,
    /// What their checkpoint's transaction will hold in memory (flow.rs `checkpoint_weight`).
    checkpoint_bytes: u64,
    /// When the oldest of them was written; a checkpoint is due `CHECKPOINT_EVERY` later.
    since: Option<Instant>,
}

impl Unapplied {
    fn take(&mut self, pending: &mut Pending) {
        self.bytes += pending.data.iter().map(super::flow::weight).sum::<u64>();
        self.checkpoint_bytes += pending
            .data
            .iter()
            .map(super::flow::checkpoint_weight)
            .sum::<u64>();
        self.ops.append(&mut pending.data);
        self.numbered += pending.numbered;
        pending.numbered = 0;
        pending.since = None;
        self.since.get_or_insert_with(Instant::now);
    }

    fn deadline(&self) -> Option<Instant> {
        self.since.map(|since| since + CHECKPOINT_EVERY)
    }

    /// Takes back a batch the checkpoint thread refused.
    fn restore(&mut self, batch: Batch) {
        self.checkpoint_bytes = batch.ops.iter().map(super::flow::checkpoint_weight).sum();
        self.ops = batch.ops;
        self.numbered = batch.numbered;
        self.bytes = batch.bytes;
        self.since = Some(Instant::now());
    }

    fn due(&self) -> bool {
        self.checkpoint_bytes >= CHECKPOINT_BYTES
            || self.deadline().is_some_and(|d| d <= Instant::now())
    }
}

struct Writer {
    wal: Wal,
    shared: Arc<WriterShared>,
    checkpointer: Checkpointer,
    unapplied: Unapplied,
    /// Numbered operations written to the log but not synced yet (durable at the next sync).
    unsynced: u64,
    /// A write or sync failed: the log starts over (after a checkpoint) before the next record.
    wal_broken: bool,
    /// Which of a batch's operations its record leaves out (see [`plan_log`]).
    log_skip: Vec<bool>,
}

pub fn run(queue: &OpQueue, shared: Arc<WriterShared>, wal: Wal, checkpointer: Checkpointer) {
    let mut writer = Writer {
        wal,
        shared,
        checkpointer,
        unapplied: Unapplied::default(),
        unsynced: 0,
        wal_broken: false,
        log_skip: Vec::new(),
    };
    writer.run(queue);
    writer.checkpointer.finish();
}

impl Writer {
    fn run(&mut self, queue: &OpQueue) {
        let mut pending = Pending::default();
        let mut incoming = Vec::new();
        let mut backoff = Backoff::new();
        let mut failed_attempts = 0u32;
        loop {
            // Sleep until somebody waits for durability or a deadline: data nobody waits for
            // yet joins the next record. After a failed attempt, retry at once.
            let deadline = if failed_attempts > 0 {
                Some(Instant::now())
            } else {
                [self.unapplied.deadline(), pending.deadline()]
                    .into_iter()
                    .flatten()
                    .min()
            };
            let woken = queue.take(&mut incoming, deadline);
            for op in incoming.drain(..) {
                pending.take(op);
            }
            self.wal.applied_through(self.checkpointer.applied_seq());
            let write_now = failed_attempts > 0
                || woken == Woken::Deadline
                || !pending.waiting.is_empty()
                || pending.shutdown
                || pending.data.len() >= MAX_BATCH;
            // (An empty retry still runs: it resets the log and clears the alarm.)
            if !write_now || (pending.is_empty() && failed_attempts == 0) {
                if woken == Woken::Deadline {
                    self.hand_over();
                }
                continue;
            }
            match self.make_durable(&mut pending) {
                Ok(()) => {
                    pending.notify(true);
                    if failed_attempts > 0 {
                        tracing::warn!(
                            "store writes again after {failed_attempts} failed attempts; \
                             clearing the disk alarm"
                        );
                        failed_attempts = 0;
                        backoff.reset();
                        self.shared.log_failing(false);
                    }
                    if pending.shutdown {
                        self.hand_over();
                        return;
                    }
                    if woken == Woken::Deadline || self.unapplied.due() {
                        self.hand_over();
                    }
                }
                Err(e) => {
                    failed_attempts += 1;
                    self.wal_broken = true;
                    if failed_attempts == 1 {
                        tracing::error!(
                            "store write failed: {e}; {} operations kept for retry, waiting \
                             confirms nacked, disk alarm raised",
                            pending.data.len()
                        );
                    } else {
                        tracing::warn!(
                            "store write failed again (attempt {failed_attempts}): {e}; {} \
                             operations kept",
                            pending.data.len()
                        );
                    }
                    // Before the nacks go out: whoever sees a nack can already see the alarm.
                    self.shared.log_failing(true);
                    pending.notify(false);
                    if pending.shutdown && failed_attempts >= SHUTDOWN_ATTEMPTS {
                        tracing::error!(
                            "shutting down with {} operations the store could not write",
                            pending.data.len()
                        );
                        return;
                    }
                    backoff.wait();
                }
            }
        }
    }

    /// Writes `pending`'s data to the log and syncs it if anybody waits; on success the batch
    /// moves to the unapplied operations and counts as durable once synced.
    fn make_durable(&mut self, pending: &mut Pending) -> Result<(), StoreError> {
        if self.wal_broken {
            self.restart_log()?;
        }
        if self.checkpointer.failing() && self.unapplied.checkpoint_bytes >= CHECKPOINT_BYTES {
            return Err(StoreError(
                "checkpoints to LMDB are failing; not taking more into memory".into(),
            ));
        }
        if self.shared.take_injected_failure() {
            return Err(StoreError(
                "injected write failure (test hook): nothing of this attempt reaches the disk"
                    .into(),
            ));
        }
        plan_log(&pending.data, &mut self.log_skip);
        let logged = pending
            .data
            .iter()
            .zip(&self.log_skip)
            .filter(|(_, skip)| !**skip)
            .map(|(op, _)| op);
        if logged.clone().next().is_some() {
            self.wal
                .write(logged)
                .map_err(|e| StoreError(format!("write-ahead log: {e}")))?;
        }
        let numbered = pending.numbered;
        self.unapplied.take(pending);
        self.unsynced += numbered;
        if pending.waiting.is_empty() && !pending.shutdown {
            return Ok(());
        }
        self.sync()
    }

    /// Syncs the log if anything was written since the last sync; everything written so far
    /// is durable then.
    fn sync(&mut self) -> Result<(), StoreError> {
        if self.wal.has_unsynced() {
            self.wal
                .sync()
                .map_err(|e| StoreError(format!("write-ahead log sync: {e}")))?;
        }
        self.shared
            .committed_ops
            .fetch_add(std::mem::take(&mut self.unsynced), Ordering::Release);
        Ok(())
    }

    /// Hands what the log holds beyond LMDB to the checkpoint thread (synced first, so that
    /// everything handed over is durable). On failure it stays here for the next try.
    fn hand_over(&mut self) {
        if self.unapplied.numbered == 0 {
            return;
        }
        if let Err(e) = self.sync() {
            tracing::error!("{e}; the log starts over at the next write");
            self.wal_broken = true;
            self.shared.log_failing(true);
            return;
        }
        if let Err(refused) = self.submit() {
            self.unapplied.restore(refused);
        }
    }

    fn submit(&mut self) -> Result<(), Batch> {
        let unapplied = std::mem::take(&mut self.unapplied);
        self.checkpointer.submit(Batch {
            ops: unapplied.ops,
            numbered: unapplied.numbered,
            bytes: unapplied.bytes,
            last_seq: self.wal.last_seq(),
        })
    }

    /// After a failed write or sync: everything written goes to LMDB (whose commit makes it
    /// durable), then every log file goes and the next record starts a new one.
    fn restart_log(&mut self) -> Result<(), StoreError> {
        if self.unapplied.numbered > 0
            && let Err(refused) = self.submit()
        {
            self.unapplied.restore(refused);
            return Err(StoreError("checkpoints to LMDB are failing".into()));
        }
        self.checkpointer.wait_idle()?;
        self.shared
            .committed_ops
            .fetch_add(std::mem::take(&mut self.unsynced), Ordering::Release);
        self.wal
            .discard_all()
            .map_err(|e| StoreError(format!("cannot restart the write-ahead log: {e}")))?;
        self.wal_broken = false;
        Ok(())
    }
}

/// Marks what a batch's log record can leave out: what cancels within the batch (cancel.rs),
/// such as a message published, delivered and acknowledged while the previous record was being
/// written. Its confirm still waits for this record's sync, which holds what became of the
/// message (nothing left to recover), as RabbitMQ confirms a message acknowledged before it
/// reached the disk. The operations stay in the batch: the checkpoint plans its own, larger
/// window, in which they cancel again. A batch without removals cancels nothing and skips the
/// plan.
fn plan_log(ops: &[Op], skip: &mut Vec<bool>) {
    let removes = ops
        .iter()
        .any(|op| matches!(op, Op::Remove { .. } | Op::Unschedule { .. }));
    if removes {
        super::cancel::plan(ops, skip);
    } else {
        skip.clear();
        skip.resize(ops.len(), false);
    }
}
