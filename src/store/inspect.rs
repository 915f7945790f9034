//! Counting what a store holds, for tests that check what a restart kept or dropped: from a
//! running [`Store`](super::Store), or from a data directory no process has open.

use std::path::Path;

use heed::types::Bytes as Raw;
use heed::{CommitOrAbort, Database, EnvOpenOptions, RoTxn};

use super::dir_lock::DirLock;
use super::schema::{DB_MESSAGES, DB_QUEUE_INDEX, DB_REFCOUNTS, DB_SCHEDULE_INDEX};
use super::{Dbs, StoreError};

/// How many records each message database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCounts {
    pub messages: u64,
    pub queue_index: u64,
    pub refcounts: u64,
    pub schedule_index: u64,
}

pub fn count(rtxn: &RoTxn, dbs: &Dbs) -> heed::Result<RecordCounts> {
    Ok(RecordCounts {
        messages: dbs.messages.len(rtxn)?,
        queue_index: dbs.queue_index.len(rtxn)?,
        refcounts: dbs.refcounts.len(rtxn)?,
        schedule_index: dbs.schedule_index.len(rtxn)?,
    })
}

/// Counts the records under `dir` without recovering or changing anything; refuses a directory
/// a broker holds.
pub fn count_in_dir(dir: &Path) -> Result<RecordCounts, StoreError> {
    let _lock = DirLock::acquire(dir)?;
    let path = dir.join("lmdb");
    // SAFETY (heed's open contract): the directory lock keeps other warren processes out, and
    // this environment is closed (dropped) before the lock is released.
    let env = unsafe { EnvOpenOptions::new().max_dbs(16).open(&path)? };
    let rtxn = env.read_txn()?;
    let counted = env.open_databases_and_commit(rtxn, |opener, rtxn| {
        let count = |name| -> Result<u64, StoreError> {
            let db: Option<Database<Raw, Raw>> = opener.open_database(rtxn, Some(name))?;
            let db =
                db.ok_or_else(|| StoreError(format!("{}: no database {name}", path.display())))?;
            Ok(db.len(rtxn)?)
        };
        let counts = RecordCounts {
            messages: count(DB_MESSAGES)?,
            queue_index: count(DB_QUEUE_INDEX)?,
            refcounts: count(DB_REFCOUNTS)?,
            schedule_index: count(DB_SCHEDULE_INDEX)?,
        };
        // Nothing to keep open: abort hands the counts back without committing anything.
        Ok::<_, StoreError>(CommitOrAbort::<(), _>::Abort(counts))
    })?;
    drop(env);
    match counted {
        CommitOrAbort::Abort(counts) => Ok(counts),
        CommitOrAbort::Commit(()) => Err(StoreError("no counts".into())),
    }
}
