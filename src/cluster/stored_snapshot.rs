//! A group's latest snapshot as the node's log database keeps it (one small record per
//! group): openraft's snapshot meta and the state machine's bytes. The metadata group and the
//! quorum queue groups store theirs the same way; what the bytes hold is their business.

use std::io::Cursor;

use openraft::storage::{Snapshot, SnapshotMeta};
use openraft::{BasicNode, LogId, RaftTypeConfig, StorageError, StorageIOError, StoredMembership};
use serde::{Deserialize, Serialize};

use super::log_db::{LogDb, Write, meta_key};
use super::log_store::encode;

/// The record's tag among a group's small records.
pub const SNAPSHOT: &str = "snapshot";

pub fn io_error(e: impl ToString) -> StorageError<u64> {
    StorageIOError::read_state_machine(&std::io::Error::other(e.to_string())).into()
}

#[derive(Serialize, Deserialize)]
pub struct StoredSnapshot {
    pub meta: SnapshotMeta<u64, BasicNode>,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl StoredSnapshot {
    /// A snapshot of the state at `last` (its id says where, and how big).
    pub fn new(
        last: Option<LogId<u64>>,
        membership: StoredMembership<u64, BasicNode>,
        data: Vec<u8>,
    ) -> StoredSnapshot {
        let snapshot_id = match last {
            Some(id) => format!("{}-{}-{}", id.leader_id.term, id.index, data.len()),
            None => format!("empty-{}", data.len()),
        };
        StoredSnapshot {
            meta: SnapshotMeta {
                last_log_id: last,
                last_membership: membership,
                snapshot_id,
            },
            data,
        }
    }

    /// The write that keeps it as `group`'s latest.
    pub fn write(&self, group: u64) -> Result<Write, StorageError<u64>> {
        Ok(Write::Put {
            key: meta_key(group, SNAPSHOT),
            value: encode(self)?,
            meta: true,
        })
    }

    /// `group`'s latest, if it has one.
    pub fn load(db: &LogDb, group: u64) -> Result<Option<StoredSnapshot>, StorageError<u64>> {
        match db.meta(group, SNAPSHOT).map_err(io_error)? {
            Some(bytes) => Ok(Some(postcard::from_bytes(&bytes).map_err(io_error)?)),
            None => Ok(None),
        }
    }

    /// As openraft hands it around.
    pub fn into_snapshot<C>(self) -> Snapshot<C>
    where
        C: RaftTypeConfig<NodeId = u64, Node = BasicNode, SnapshotData = Cursor<Vec<u8>>>,
    {
        Snapshot {
            meta: self.meta,
            snapshot: Box::new(Cursor::new(self.data)),
        }
    }
}
