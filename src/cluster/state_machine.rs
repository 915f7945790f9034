//! The metadata group's state machine: this node's broker. Applying a committed entry makes
//! its [`Change`](crate::broker::replication::Change) here; the last applied log id and
//! membership, and the latest snapshot, are kept in the node's log database so a restart goes
//! on from where it stopped instead of replaying changes already made.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};

use super::log_db::{LogDb, Write, meta_key};
use super::log_store::encode;
use super::metadata_snapshot;
use super::quorum::registry::QuorumQueues;
use super::stored_snapshot::{StoredSnapshot, io_error};
use super::types::{METADATA_GROUP, MetaTypes};
use crate::broker::Broker;
use crate::broker::replication::{Change, Outcome, apply};

const APPLIED: &str = "applied";

type Membership = StoredMembership<u64, BasicNode>;

#[derive(Serialize, Deserialize)]
struct Applied {
    last: Option<LogId<u64>>,
    membership: Membership,
}

pub struct MetaStateMachine {
    broker: Arc<Broker>,
    db: Arc<LogDb>,
    /// Where a quorum queue's declare starts its group.
    quorum: Arc<QuorumQueues>,
    last_applied: Option<LogId<u64>>,
    membership: Membership,
}

impl MetaStateMachine {
    /// The state machine as the node left it: last applied, membership, latest snapshot.
    pub fn open(
        broker: Arc<Broker>,
        db: Arc<LogDb>,
        quorum: Arc<QuorumQueues>,
    ) -> Result<Self, String> {
        let read = |tag| db.meta(METADATA_GROUP, tag);
        let applied: Option<Applied> = match read(APPLIED)? {
            Some(bytes) => Some(postcard::from_bytes(&bytes).map_err(|e| e.to_string())?),
            None => None,
        };
        let (last_applied, membership) = match applied {
            Some(a) => (a.last, a.membership),
            None => (None, Membership::default()),
        };
        Ok(MetaStateMachine {
            broker,
            db,
            quorum,
            last_applied,
            membership,
        })
    }

    fn applied_write(&self) -> Result<Write, StorageError<u64>> {
        let applied = Applied {
            last: self.last_applied,
            membership: self.membership.clone(),
        };
        Ok(Write::Put {
            key: meta_key(METADATA_GROUP, APPLIED),
            value: encode(&applied)?,
            meta: true,
        })
    }
}

impl MetaStateMachine {
    /// Quorum queues declared by `changes` join their groups; deleted ones forget theirs.
    fn follow_quorum_queues(&self, changes: &[Change]) {
        for change in changes {
            match change {
                Change::DeclareQueue {
                    vhost, name, group, ..
                } if *group != 0 => {
                    if let Some(queue) = self.broker.vhost(vhost).and_then(|v| v.queue(name)) {
                        self.quorum.attach(&queue, *group);
                    }
                }
                Change::DeleteQueue { vhost, name } => self.quorum.forget(vhost, name),
                _ => {}
            }
        }
    }
}

/// Serialises the definitions captured when openraft asked for a builder.
pub struct MetaSnapshotBuilder {
    db: Arc<LogDb>,
    last_applied: Option<LogId<u64>>,
    membership: Membership,
    changes: Vec<Change>,
}

impl RaftSnapshotBuilder<MetaTypes> for MetaSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<MetaTypes>, StorageError<u64>> {
        let stored = StoredSnapshot::new(
            self.last_applied,
            self.membership.clone(),
            encode(&self.changes)?,
        );
        let write = stored.write(METADATA_GROUP)?;
        self.db.write(vec![write]).await.map_err(io_error)?;
        tracing::info!(
            "cluster: metadata snapshot at {:?}, {} definitions",
            stored.meta.last_log_id,
            self.changes.len()
        );
        Ok(stored.into_snapshot())
    }
}

impl RaftStateMachine<MetaTypes> for MetaStateMachine {
    type SnapshotBuilder = MetaSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, Membership), StorageError<u64>> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError<u64>>
    where
        I: IntoIterator<Item = openraft::Entry<MetaTypes>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut outcomes = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            outcomes.push(match entry.payload {
                EntryPayload::Blank => Outcome::Done,
                EntryPayload::Normal(change) => {
                    let broker = self.broker.clone();
                    // Broker operations block (locks, the store's commit): off the workers.
                    let outcome = tokio::task::block_in_place(|| apply(&broker, &change));
                    self.follow_quorum_queues(std::slice::from_ref(&change));
                    outcome
                }
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    Outcome::Done
                }
            });
        }
        let write = self.applied_write()?;
        self.db.submit(vec![write], |_| {});
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // Captured here, between two applies, so the snapshot is exactly `last_applied`.
        let broker = self.broker.clone();
        MetaSnapshotBuilder {
            db: self.db.clone(),
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            changes: tokio::task::block_in_place(|| metadata_snapshot::changes_of(&broker)),
        }
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
        let data = snapshot.into_inner();
        let changes: Vec<Change> = postcard::from_bytes(&data).map_err(io_error)?;
        let broker = self.broker.clone();
        tokio::task::block_in_place(|| metadata_snapshot::install(&broker, &changes));
        self.follow_quorum_queues(&changes);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let writes = vec![stored.write(METADATA_GROUP)?, self.applied_write()?];
        self.db.write(writes).await.map_err(io_error)?;
        tracing::info!(
            "cluster: installed the metadata snapshot at {:?} ({} definitions)",
            meta.last_log_id,
            changes.len()
        );
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<MetaTypes>>, StorageError<u64>> {
        // Read back each time: the builder writes new ones beside this state machine.
        Ok(StoredSnapshot::load(&self.db, METADATA_GROUP)?.map(StoredSnapshot::into_snapshot))
    }
}
