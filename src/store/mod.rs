//! Durable state in LMDB (through heed): definitions written synchronously, messages written by
//! one writer thread that groups everything pending into one write-ahead log record (one
//! `fdatasync` for many publishes), tells whoever waits (publisher confirms, tx.commit) that
//! their writes are durable, and applies them to LMDB in periodic checkpoints (writer.rs, wal/).
//!
//! This layer knows nothing of exchanges, queues or channels: it stores [`Definition`]s, message
//! records and per-queue index entries keyed by numeric ids the broker hands it.

mod apply;
mod cancel;
mod checkpoint;
mod definitions;
mod dir_lock;
#[cfg(test)]
mod fault_tests;
mod flow;
mod heap_trim;
mod inspect;
mod lmdb;
#[cfg(test)]
mod log_tests;
mod map_pages;
mod message_ops;
mod op_queue;
mod orphans;
mod recovery;
mod retry;
mod schedule_index;
mod schema;
mod stored_message;
mod stream_log;
pub(crate) mod wal;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use heed::types::Bytes as Raw;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions};
use parking_lot::Mutex;
use tokio::sync::watch;

use checkpoint::Checkpointer;
pub use definitions::Definition;
use dir_lock::DirLock;
pub use dir_lock::LOCK_FILE;
#[doc(hidden)]
pub use inspect::{RecordCounts, count_in_dir};
use lmdb::Lmdb;
use map_pages::MapPages;
use op_queue::OpQueue;
pub use recovery::{IndexSegment, Recovered, SEGMENT_CAPACITY};
pub use schedule_index::DueKey;
pub use schema::EntryMeta;
pub use schema::RecordError;
use schema::{
    DB_DEFINITIONS, DB_MESSAGES, DB_META, DB_QUEUE_INDEX, DB_REFCOUNTS, DB_SCHEDULE_INDEX,
    DB_STREAM_LOG, DB_STREAM_SEGMENTS, SCHEMA_VERSION, SCHEMA_VERSION_KEY, SEEDED_KEY,
    WAL_APPLIED_KEY,
};
pub use stored_message::StoredMessage;
pub use stream_log::{StreamEntry, StreamRecovered, StreamSegment};
use wal::Wal;

/// Default virtual size of the memory map; the file only grows as pages are used, and the map
/// doubles when it is full (lmdb.rs).
pub const DEFAULT_MAP_SIZE: usize = 64 << 30;

pub type Db = Database<'static, Raw, Raw>;

#[derive(Clone, Copy)]
pub struct Dbs {
    pub meta: Db,
    pub definitions: Db,
    pub messages: Db,
    pub queue_index: Db,
    pub refcounts: Db,
    pub stream_log: Db,
    pub stream_segments: Db,
    pub schedule_index: Db,
}

/// Told when writes it waited for are durable (`ok`) or failed to commit. Called on the
/// store's writer thread: `committed` once per token, then `released` once after the last of
/// its tokens that one attempt settled (a listener sends what they settled there, in one go).
pub trait CommitListener: Send + Sync {
    fn committed(&self, token: u64, ok: bool);

    fn released(&self) {}
}

/// The fields of a message that are stored (cheap clones of the broker's buffers).
pub struct MessageRecord {
    pub exchange: Arc<str>,
    pub routing_key: warren_protocol::ShortStr,
    pub properties: Bytes,
    pub body: Bytes,
}

pub(crate) enum Op {
    PutMessage {
        id: u64,
        record: MessageRecord,
    },
    /// A queue now holds message `id` at position `seq`.
    Enqueue {
        queue_id: u64,
        seq: u64,
        id: u64,
        meta: EntryMeta,
    },
    /// A queue is done with the message at `seq` (acked, dropped, purged).
    Remove {
        queue_id: u64,
        seq: u64,
        id: u64,
        /// Out of the store's order (a priority queue's): weighs a page in the flow (flow.rs).
        /// Not logged.
        scattered: bool,
    },
    /// Like `Remove` for a whole segment (purging a paged backlog).
    RemoveSegment {
        queue_id: u64,
        segment: IndexSegment,
    },
    /// Like `Remove` for each (seq, id) (purging a paged backlog).
    RemoveEntries {
        queue_id: u64,
        entries: Vec<(u64, u64)>,
    },
    /// A durable queue was deleted: drop its whole index (or its whole log, for a stream).
    DropQueue {
        queue_id: u64,
    },
    /// A stream holds `record` at `offset`, appended at `timestamp` (ms).
    StreamAppend {
        stream_id: u64,
        offset: u64,
        timestamp: u64,
        record: MessageRecord,
    },
    /// A stream closed a segment.
    StreamSegment {
        stream_id: u64,
        segment: StreamSegment,
    },
    /// A stream no longer holds anything before `before` (retention).
    StreamTrim {
        stream_id: u64,
        before: u64,
    },
    /// A delayed exchange's schedule holds message `key.id` until `key.due_ms`.
    Schedule {
        schedule_id: u64,
        key: DueKey,
    },
    /// The schedule is done with that entry (the message was routed at its due time).
    Unschedule {
        schedule_id: u64,
        key: DueKey,
    },
    /// A delayed exchange was deleted (or a schedule is a previous run's spill): drop it all.
    DropSchedule {
        schedule_id: u64,
    },
    /// Applied to LMDB in order like the others, but not written to the log: what a crash may
    /// lose (a paging queue's spilled messages: their entries are dropped at start anyway).
    Unlogged(Box<Op>),
    /// Call back once everything sent before this is committed.
    Notify {
        listener: Arc<dyn CommitListener>,
        token: u64,
    },
    Shutdown,
}

#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<heed::Error> for StoreError {
    fn from(e: heed::Error) -> Self {
        StoreError(e.to_string())
    }
}

pub struct Store {
    lmdb: Arc<Lmdb>,
    dbs: Dbs,
    /// The writer's queue (numbered in push order).
    ops: Arc<OpQueue>,
    /// What the writer reports: committed operations, whether commits fail.
    writer_shared: Arc<writer::WriterShared>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    next_message_id: AtomicU64,
    next_queue_id: AtomicU64,
    /// Held from open to shutdown.
    dir_lock: Mutex<Option<DirLock>>,
}

impl Store {
    /// Opens (or creates) the store under `dir` with a memory map of `map_size` bytes to start
    /// with, recovers what it holds, and starts the writer. Refuses (before touching LMDB) a
    /// directory that another process holds.
    pub fn open(dir: &Path, map_size: usize) -> Result<(Arc<Store>, Recovered), StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        let dir_lock = DirLock::acquire(dir)?;
        let path = dir.join("lmdb");
        std::fs::create_dir_all(&path)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", path.display())))?;
        lmdb::claim_once_per_process(&path)?;
        // SAFETY (heed's open contract): the environment is opened once per process per path
        // (claimed just above) and its files are not modified by anything else while open (the
        // directory lock keeps other warren processes out).
        let env = unsafe {
            EnvOpenOptions::new()
                .map_size(page_multiple(map_size))
                .max_dbs(16)
                .open(&path)?
        };
        // The environment lives as long as the process: databases borrow it for 'static.
        let env: &'static Env = Box::leak(Box::new(env));
        let wtxn = env.write_txn()?;
        let dbs =
            env.create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
                let meta: Db = opener.create_database(wtxn, Some(DB_META))?;
                let definitions: Db = opener.create_database(wtxn, Some(DB_DEFINITIONS))?;
                let messages: Db = opener.create_database(wtxn, Some(DB_MESSAGES))?;
                let queue_index: Db = opener.create_database(wtxn, Some(DB_QUEUE_INDEX))?;
                let refcounts: Db = opener.create_database(wtxn, Some(DB_REFCOUNTS))?;
                let stream_log: Db = opener.create_database(wtxn, Some(DB_STREAM_LOG))?;
                let stream_segments: Db = opener.create_database(wtxn, Some(DB_STREAM_SEGMENTS))?;
                let schedule_index: Db = opener.create_database(wtxn, Some(DB_SCHEDULE_INDEX))?;
                match meta.get(wtxn, SCHEMA_VERSION_KEY)? {
                    None => meta.put(wtxn, SCHEMA_VERSION_KEY, &SCHEMA_VERSION.to_be_bytes())?,
                    Some(v) if v == SCHEMA_VERSION.to_be_bytes() => {}
                    Some(v) => return Ok(CommitOrAbort::Abort(v.to_vec())),
                }
                Ok(CommitOrAbort::Commit([
                    meta,
                    definitions,
                    messages,
                    queue_index,
                    refcounts,
                    stream_log,
                    stream_segments,
                    schedule_index,
                ]))
            })?;
        let dbs = match dbs {
            CommitOrAbort::Commit(
                [
                    meta,
                    definitions,
                    messages,
                    queue_index,
                    refcounts,
                    stream_log,
                    stream_segments,
                    schedule_index,
                ],
            ) => Dbs {
                meta,
                definitions,
                messages,
                queue_index,
                refcounts,
                stream_log,
                stream_segments,
                schedule_index,
            },
            CommitOrAbort::Abort(version) => {
                return Err(StoreError(format!(
                    "{}: schema version {version:?} is not {SCHEMA_VERSION}; refusing to guess",
                    path.display()
                )));
            }
        };
        let lmdb = Arc::new(Lmdb::new(env, MapPages::find(&path.join("data.mdb"))));
        let wal_dir = dir.join("wal");
        let next_seq = replay_log(&lmdb, &dbs, &wal_dir)? + 1;
        let recovered = recovery::recover(&lmdb, &dbs)?;
        // Recovery walked the whole index through the map: give those pages back.
        lmdb.shared()?.map_pages().release();
        let writer_shared = Arc::new(writer::WriterShared::new());
        let ops = Arc::new(OpQueue::new(writer_shared.flow.clone()));
        let wal = Wal::new(&wal_dir, next_seq, writer_shared.log_syncs.clone(), true)
            .map_err(|e| StoreError(format!("cannot open {}: {e}", wal_dir.display())))?;
        let checkpointer =
            Checkpointer::start(lmdb.clone(), dbs, writer_shared.clone(), next_seq - 1)
                .map_err(|e| StoreError(format!("cannot start the checkpoint thread: {e}")))?;
        let writer = std::thread::Builder::new()
            .name("warren-store".into())
            .spawn({
                let writer_shared = writer_shared.clone();
                let ops = ops.clone();
                move || {
                    writer::run(&ops, writer_shared, wal, checkpointer);
                    ops.stop();
                }
            })
            .map_err(|e| StoreError(format!("cannot start the store writer: {e}")))?;
        let store = Store {
            lmdb,
            dbs,
            ops,
            writer_shared,
            writer: Mutex::new(Some(writer)),
            next_message_id: AtomicU64::new(recovered.max_message_id + 1),
            next_queue_id: AtomicU64::new(recovered.max_queue_id + 1),
            dir_lock: Mutex::new(Some(dir_lock)),
        };
        Ok((Arc::new(store), recovered))
    }

    pub fn next_message_id(&self) -> u64 {
        self.next_message_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn next_queue_id(&self) -> u64 {
        self.next_queue_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Writes a definition and commits before returning (declares are rare; their -ok must
    /// mean durable).
    pub fn put_definition(&self, def: &Definition) -> Result<(), StoreError> {
        let (key, value) = (def.key(), def.encode());
        self.lmdb
            .write(|wtxn| self.dbs.definitions.put(wtxn, &key, &value))
    }

    /// Writes several definitions and records that the first boot's defaults exist, in one
    /// commit: a crash leaves either all of them or none (and the next boot seeds again).
    pub fn seed(&self, defs: &[Definition]) -> Result<(), StoreError> {
        let records: Vec<_> = defs.iter().map(|d| (d.key(), d.encode())).collect();
        self.lmdb.write(|wtxn| {
            for (key, value) in &records {
                self.dbs.definitions.put(wtxn, key, value)?;
            }
            self.dbs.meta.put(wtxn, SEEDED_KEY, &[])
        })
    }

    /// Deletes every definition of `vhost` (its exchanges, queues, bindings, permissions and
    /// the vhost itself) in one commit; damaged records are left alone. Queue indexes are
    /// dropped by whoever deleted the queues.
    pub fn delete_vhost_definitions(&self, vhost: &str) -> Result<usize, StoreError> {
        self.lmdb.write(|wtxn| {
            let mut doomed = Vec::new();
            for entry in self.dbs.definitions.iter(wtxn)? {
                let (key, value) = entry?;
                if Definition::decode(value).is_ok_and(|d| d.vhost() == Some(vhost)) {
                    doomed.push(key.to_vec());
                }
            }
            for key in &doomed {
                self.dbs.definitions.delete(wtxn, key)?;
            }
            Ok(doomed.len())
        })
    }

    /// Deletes definitions in one transaction (a cascade of deletes commits once).
    pub fn delete_definitions(&self, defs: &[Definition]) -> Result<(), StoreError> {
        let keys: Vec<_> = defs.iter().map(Definition::key).collect();
        self.lmdb.write(|wtxn| {
            for key in &keys {
                self.dbs.definitions.delete(wtxn, key)?;
            }
            Ok(())
        })
    }

    /// Queues an operation for the writer; returns its number (see [`Store::committed_ops`]).
    pub(super) fn send(&self, op: Op) -> u64 {
        self.ops.push(op)
    }

    /// Whether publishers should wait for the store to catch up (flow.rs).
    pub fn over_flow_limit(&self) -> bool {
        self.ops.over_flow_limit() && !*self.writer_shared.failing.borrow()
    }

    /// Waits for the next checkpoint, or a short while (then check the limit again).
    pub async fn wait_for_checkpoint(&self) {
        self.writer_shared.flow.wait_for_checkpoint().await
    }

    /// Every operation numbered up to this is durable (a failed write does not count; its
    /// operations are retried until they are).
    pub fn committed_ops(&self) -> u64 {
        self.writer_shared.committed_ops.load(Ordering::Acquire)
    }

    /// Every operation numbered up to this is in LMDB, where [`Store::read_messages`] finds it
    /// (a checkpoint applies durable operations within about 50 ms).
    pub fn applied_ops(&self) -> u64 {
        self.writer_shared.applied_ops.load(Ordering::Acquire)
    }

    /// The number of the last operation sent to the writer: once [`Store::applied_ops`] reaches
    /// it, everything sent so far is readable in LMDB.
    #[doc(hidden)]
    pub fn sent_ops(&self) -> u64 {
        self.ops.last_number()
    }

    /// How many times the write-ahead log was synced to disk so far (a test checks that every
    /// confirm waited for one).
    #[doc(hidden)]
    pub fn log_syncs(&self) -> u64 {
        self.writer_shared.log_syncs.load(Ordering::Relaxed)
    }

    /// How many checkpoints have committed to LMDB so far.
    #[doc(hidden)]
    pub fn checkpoints(&self) -> u64 {
        self.writer_shared.checkpoints.load(Ordering::Relaxed)
    }

    /// True while commits fail (from a failed commit to the next successful one); the disk
    /// alarm follows it.
    pub fn watch_failing(&self) -> watch::Receiver<bool> {
        self.writer_shared.failing.subscribe()
    }

    /// Test hook: the next `n` commits of the writer fail as if the disk refused them
    /// (`u64::MAX`: until called again with 0).
    #[doc(hidden)]
    pub fn fail_next_commits(&self, n: u64) {
        self.writer_shared
            .injected_failures
            .store(n, Ordering::Relaxed);
    }

    /// How many records the message databases hold now (committed ones only).
    #[doc(hidden)]
    pub fn record_counts(&self) -> Result<RecordCounts, StoreError> {
        let shared = self.lmdb.shared()?;
        let rtxn = shared.read_txn()?;
        Ok(inspect::count(&rtxn, &self.dbs)?)
    }

    /// The memory map's current size in bytes (it doubles when full).
    #[doc(hidden)]
    pub fn map_size(&self) -> usize {
        self.lmdb.map_size()
    }

    /// `listener.committed(token, …)` runs once everything sent so far is durable.
    pub fn notify_when_committed(&self, listener: Arc<dyn CommitListener>, token: u64) {
        self.send(Op::Notify { listener, token });
    }

    /// Commits what is pending, stops the writer, refuses transactions from now on, and
    /// releases the data directory.
    pub fn shutdown(&self) {
        self.send(Op::Shutdown);
        if let Some(handle) = self.writer.lock().take() {
            let _ = handle.join();
        }
        self.lmdb.close();
        self.dir_lock.lock().take();
    }
}

/// Applies what the write-ahead log in `wal_dir` holds beyond LMDB's last checkpoint, in one
/// transaction, then removes the log's files; returns the sequence of the last record, from
/// which the new log goes on.
fn replay_log(lmdb: &Lmdb, dbs: &Dbs, wal_dir: &Path) -> Result<u64, StoreError> {
    let applied = {
        let shared = lmdb.shared()?;
        let rtxn = shared.read_txn()?;
        dbs.meta
            .get(&rtxn, WAL_APPLIED_KEY)?
            .and_then(schema::u64_value)
            .unwrap_or(0)
    };
    let replay = wal::replay::read(wal_dir, applied)?;
    if replay.records > 0 {
        lmdb.write(|wtxn| {
            for op in &replay.ops {
                apply::apply(dbs, wtxn, op)?;
            }
            dbs.meta
                .put(wtxn, WAL_APPLIED_KEY, &replay.last_seq.to_be_bytes())
        })?;
        tracing::info!(
            "replayed {} write-ahead log records ({} operations) into LMDB",
            replay.records,
            replay.ops.len()
        );
    }
    for path in &replay.segments {
        std::fs::remove_file(path)
            .map_err(|e| StoreError(format!("cannot remove {}: {e}", path.display())))?;
    }
    Ok(replay.last_seq)
}

/// A `PutMessage` of `body` to the default exchange with routing key "q" (store tests).
#[cfg(test)]
pub(crate) fn put_for_test(id: u64, body: Bytes) -> Op {
    Op::PutMessage {
        id,
        record: MessageRecord {
            exchange: "".into(),
            routing_key: warren_protocol::ShortStr::from_static("q").expect("a short string"),
            properties: Bytes::new(),
            body,
        },
    }
}

/// The smallest map the store opens with: room for its databases and a few records.
const MIN_MAP_SIZE: usize = 1 << 20;

/// `bytes` (at least [`MIN_MAP_SIZE`]) rounded up to a whole number of pages, as LMDB wants.
fn page_multiple(bytes: usize) -> usize {
    // SAFETY: sysconf has no preconditions.
    let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    };
    bytes.max(MIN_MAP_SIZE).div_ceil(page).saturating_mul(page)
}
