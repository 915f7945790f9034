//! openraft's log storage for one Raft group, in the node's [`LogDb`]: entries under
//! (group, index), the vote, the committed and purged log ids as the group's small records.
//! Appends return at once and report through openraft's callback after the writer's group
//! commit; vote, truncate and purge wait for theirs (openraft needs them durable first).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{
    Entry, LogId, OptionalSend, RaftLogId, RaftTypeConfig, StorageError, StorageIOError, Vote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::log_db::{LogDb, Write, entry_key, meta_key};

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";

/// One group's log in the node's log database. Cheap to clone (the reader is a clone).
pub struct LogStore<C> {
    db: Arc<LogDb>,
    group: u64,
    _types: std::marker::PhantomData<C>,
}

impl<C> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            db: self.db.clone(),
            group: self.group,
            _types: std::marker::PhantomData,
        }
    }
}

impl<C> LogStore<C> {
    pub fn new(db: Arc<LogDb>, group: u64) -> Self {
        LogStore {
            db,
            group,
            _types: std::marker::PhantomData,
        }
    }
}

fn read_error(e: impl ToString) -> StorageError<u64> {
    StorageIOError::read_logs(&std::io::Error::other(e.to_string())).into()
}

fn write_error(e: impl ToString) -> StorageError<u64> {
    StorageIOError::write_logs(&std::io::Error::other(e.to_string())).into()
}

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError<u64>> {
    postcard::to_stdvec(value).map_err(write_error)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError<u64>> {
    postcard::from_bytes(bytes).map_err(read_error)
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig<NodeId = u64, Entry = Entry<C>>,
    Entry<C>: Serialize + DeserializeOwned,
{
    fn read_meta<T: DeserializeOwned>(&self, tag: &str) -> Result<Option<T>, StorageError<u64>> {
        match self.db.meta(self.group, tag).map_err(read_error)? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn put_meta<T: Serialize>(&self, tag: &str, value: &T) -> Result<Write, StorageError<u64>> {
        Ok(Write::Put {
            key: meta_key(self.group, tag),
            value: encode(value)?,
            meta: true,
        })
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = u64, Entry = Entry<C>>,
    Entry<C>: Serialize + DeserializeOwned,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<u64>> {
        let from = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&0) => return Ok(Vec::new()),
            Bound::Excluded(&i) => i - 1,
            Bound::Unbounded => u64::MAX,
        };
        if from > to {
            return Ok(Vec::new());
        }
        let raw = self.db.entries(self.group, from, to).map_err(read_error)?;
        raw.iter().map(|bytes| decode(bytes)).collect()
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<NodeId = u64, Entry = Entry<C>>,
    Entry<C>: Serialize + DeserializeOwned,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<u64>> {
        let last_purged_log_id: Option<LogId<u64>> = self.read_meta(PURGED)?;
        let last = match self.db.last_entry(self.group).map_err(read_error)? {
            Some(bytes) => Some(*decode::<Entry<C>>(&bytes)?.get_log_id()),
            None => None,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let write = self.put_meta(VOTE, vote)?;
        self.db.write(vec![write]).await.map_err(write_error)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        self.read_meta(VOTE)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<u64>>,
    ) -> Result<(), StorageError<u64>> {
        // Only saves a replay at start-up: committed with the next batch, not waited for.
        let write = self.put_meta(COMMITTED, &committed)?;
        self.db.submit(vec![write], |_| {});
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        Ok(self.read_meta::<Option<LogId<u64>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut writes = Vec::new();
        for entry in entries {
            writes.push(Write::Put {
                key: entry_key(self.group, entry.get_log_id().index).to_vec(),
                value: encode(&entry)?,
                meta: false,
            });
        }
        self.db.submit(writes, move |result| {
            callback.log_io_completed(result.map_err(std::io::Error::other));
        });
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let delete = Write::DeleteEntries {
            group: self.group,
            from: log_id.index,
            to: u64::MAX,
        };
        self.db.write(vec![delete]).await.map_err(write_error)
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let writes = vec![
            self.put_meta(PURGED, &log_id)?,
            Write::DeleteEntries {
                group: self.group,
                from: 0,
                to: log_id.index,
            },
        ];
        self.db.write(writes).await.map_err(write_error)
    }
}
