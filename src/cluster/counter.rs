//! A counter group — entries add to a sum — for measuring and testing the cluster's Raft
//! machinery (log database, peer links, batcher) without a broker behind it
//! (`examples/raft_groups.rs`, the batcher's tests). Kept in memory: not for real state.

use std::io::Cursor;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError,
    StoredMembership,
};

openraft::declare_raft_types!(
    /// Entries add a number to the sum; applying one answers the new sum.
    pub Counter:
        D = u64,
        R = u64,
        NodeId = u64,
        Node = BasicNode,
        Entry = Entry<Counter>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The counter's state machine: the sum of what was written; snapshots are its value.
#[derive(Default)]
pub struct Sum {
    pub value: u64,
    applied: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
}

pub struct SumSnapshot(u64, Option<LogId<u64>>, StoredMembership<u64, BasicNode>);

impl RaftSnapshotBuilder<Counter> for SumSnapshot {
    async fn build_snapshot(&mut self) -> Result<Snapshot<Counter>, StorageError<u64>> {
        Ok(Snapshot {
            meta: SnapshotMeta {
                last_log_id: self.1,
                last_membership: self.2.clone(),
                snapshot_id: format!("{:?}", self.1),
            },
            snapshot: Box::new(Cursor::new(self.0.to_be_bytes().to_vec())),
        })
    }
}

impl RaftStateMachine<Counter> for Sum {
    type SnapshotBuilder = SumSnapshot;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<u64>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<Counter>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut out = Vec::new();
        for entry in entries {
            self.applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Normal(n) => self.value += n,
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m)
                }
                EntryPayload::Blank => {}
            }
            out.push(self.value);
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> SumSnapshot {
        SumSnapshot(self.value, self.applied, self.membership.clone())
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let bytes = snapshot.into_inner();
        self.value = u64::from_be_bytes(bytes.try_into().unwrap_or([0; 8]));
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<Counter>>, StorageError<u64>> {
        Ok(None)
    }
}
