//! The node's Raft log database: one LMDB environment (`<data_dir>/cluster`) holding the log
//! entries and small records (vote, committed, purged, applied, snapshots) of every Raft group
//! on this node, keyed by group. One writer thread commits every group's pending writes in one
//! transaction and one sync (group commit), then reports each write's result.
//!
//! This file knows keys and bytes only; what the bytes mean to openraft is `log_store.rs`'s
//! and `state_machine.rs`'s business.

use std::ops::Bound;
use std::path::Path;
use std::sync::mpsc;

use heed::types::Bytes as Raw;
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions};

type Db = Database<'static, Raw, Raw>;

/// Address space of the map; the file grows with use. Logs are purged behind snapshots; quorum
/// queues' logs hold message bodies until then, so the space is generous (it costs nothing
/// until used).
const MAP_SIZE: usize = 1 << 36;
/// Jobs committed in one transaction at most (the rest wait for the next).
const MAX_JOBS_PER_COMMIT: usize = 4096;

/// A key of a group's log entry: group, then index, both big-endian (so a group's entries
/// are adjacent and in index order).
pub fn entry_key(group: u64, index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

/// A group's small record (`tag`: vote, committed, purged, applied, snapshot …).
pub fn meta_key(group: u64, tag: &str) -> Vec<u8> {
    let mut key = group.to_be_bytes().to_vec();
    key.extend_from_slice(tag.as_bytes());
    key
}

/// One change the writer makes.
pub enum Write {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        meta: bool,
    },
    /// Log entries of `group` from `from` to `to`, both included.
    DeleteEntries { group: u64, from: u64, to: u64 },
    /// A small record.
    DeleteMeta { key: Vec<u8> },
}

/// Writes to commit together, and who to tell.
struct Job {
    writes: Vec<Write>,
    done: Box<dyn FnOnce(Result<(), String>) + Send>,
}

pub struct LogDb {
    env: &'static Env,
    entries: Db,
    meta: Db,
    jobs: mpsc::Sender<Job>,
}

impl LogDb {
    /// Opens (creating) the environment in `dir` and starts its writer thread.
    pub fn open(dir: &Path) -> Result<std::sync::Arc<LogDb>, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // SAFETY: the directory is inside the broker's data directory, which the store's
        // directory lock reserves for this process; nothing else maps these files.
        let env = unsafe {
            EnvOpenOptions::new()
                .map_size(MAP_SIZE)
                .max_dbs(4)
                .open(dir)
        }
        .map_err(|e| format!("cannot open the cluster log in {}: {e}", dir.display()))?;
        // Lives as long as the process, as the store's does: databases borrow it for 'static.
        let env: &'static Env = Box::leak(Box::new(env));
        let wtxn = env.write_txn().map_err(|e| e.to_string())?;
        let dbs = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
                let entries: Db = opener.create_database(wtxn, Some("entries"))?;
                let meta: Db = opener.create_database(wtxn, Some("meta"))?;
                Ok(CommitOrAbort::<_, ()>::Commit([entries, meta]))
            })
            .map_err(|e| e.to_string())?;
        let CommitOrAbort::Commit([entries, meta]) = dbs else {
            return Err("cannot create the cluster log's databases".into());
        };
        let (jobs, queue) = mpsc::channel();
        let db = std::sync::Arc::new(LogDb {
            env,
            entries,
            meta,
            jobs,
        });
        let writer = db.clone();
        std::thread::Builder::new()
            .name("warren-raft-log".into())
            .spawn(move || writer.run_writer(queue))
            .map_err(|e| format!("cannot start the cluster log writer: {e}"))?;
        Ok(db)
    }

    /// Queues `writes`; `done` hears the commit's result (after its sync).
    pub fn submit(
        &self,
        writes: Vec<Write>,
        done: impl FnOnce(Result<(), String>) + Send + 'static,
    ) {
        let job = Job {
            writes,
            done: Box::new(done),
        };
        if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
            (job.done)(Err("the cluster log writer has stopped".into()));
        }
    }

    /// Queues `writes` and waits for their commit.
    pub async fn write(&self, writes: Vec<Write>) -> Result<(), String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(writes, move |result| {
            let _ = tx.send(result);
        });
        rx.await
            .unwrap_or_else(|_| Err("the cluster log writer has stopped".into()))
    }

    fn run_writer(&self, queue: mpsc::Receiver<Job>) {
        while let Ok(first) = queue.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_JOBS_PER_COMMIT {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let result = self.commit(&batch).map_err(|e| {
                tracing::error!("cluster log commit failed: {e}");
                e.to_string()
            });
            for job in batch {
                (job.done)(result.clone());
            }
        }
    }

    fn commit(&self, batch: &[Job]) -> heed::Result<()> {
        let mut wtxn = self.env.write_txn()?;
        for write in batch.iter().flat_map(|job| &job.writes) {
            match write {
                Write::Put { key, value, meta } => {
                    let db = if *meta { &self.meta } else { &self.entries };
                    db.put(&mut wtxn, key, value)?;
                }
                Write::DeleteEntries { group, from, to } => {
                    let (lo, hi) = (entry_key(*group, *from), entry_key(*group, *to));
                    self.entries.delete_range(&mut wtxn, &inclusive(&lo, &hi))?;
                }
                Write::DeleteMeta { key } => {
                    self.meta.delete(&mut wtxn, key)?;
                }
            }
        }
        wtxn.commit()
    }

    /// A group's small record.
    pub fn meta(&self, group: u64, tag: &str) -> Result<Option<Vec<u8>>, String> {
        let rtxn = self.env.read_txn().map_err(|e| e.to_string())?;
        let value = self
            .meta
            .get(&rtxn, &meta_key(group, tag))
            .map_err(|e| e.to_string())?;
        Ok(value.map(<[u8]>::to_vec))
    }

    /// A group's entries with indexes in `from..=to`, in order.
    pub fn entries(&self, group: u64, from: u64, to: u64) -> Result<Vec<Vec<u8>>, String> {
        let rtxn = self.env.read_txn().map_err(|e| e.to_string())?;
        let (lo, hi) = (entry_key(group, from), entry_key(group, to));
        let iter = self
            .entries
            .range(&rtxn, &inclusive(&lo, &hi))
            .map_err(|e| e.to_string())?;
        iter.map(|item| item.map(|(_, v)| v.to_vec()).map_err(|e| e.to_string()))
            .collect()
    }

    /// A group's last entry, if it has any.
    pub fn last_entry(&self, group: u64) -> Result<Option<Vec<u8>>, String> {
        let rtxn = self.env.read_txn().map_err(|e| e.to_string())?;
        let (lo, hi) = (entry_key(group, 0), entry_key(group, u64::MAX));
        let mut iter = self
            .entries
            .rev_range(&rtxn, &inclusive(&lo, &hi))
            .map_err(|e| e.to_string())?;
        match iter.next() {
            Some(item) => item
                .map(|(_, v)| Some(v.to_vec()))
                .map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }

    /// How many entries a group holds (the status page's log size).
    pub fn entry_count(&self, group: u64) -> Result<u64, String> {
        let rtxn = self.env.read_txn().map_err(|e| e.to_string())?;
        let (lo, hi) = (entry_key(group, 0), entry_key(group, u64::MAX));
        let iter = self
            .entries
            .range(&rtxn, &inclusive(&lo, &hi))
            .map_err(|e| e.to_string())?;
        Ok(iter.count() as u64)
    }
}

fn inclusive<'a>(lo: &'a [u8], hi: &'a [u8]) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    (Bound::Included(lo), Bound::Included(hi))
}
