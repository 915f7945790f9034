//! openraft's side of a quorum queue: applying committed batches to the queue's machine
//! (machine.rs) and handing the deliveries for this node's consumers to them (front.rs's
//! [`LocalConsumers`]); snapshots of the whole machine, kept in the node's log database.
//!
//! The machine lives in memory only: a restart loads the latest snapshot and openraft applies
//! the committed entries after it again. Deliveries made by that replay are for consumers of
//! an earlier incarnation of this node and go nowhere.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, StorageError,
    StoredMembership,
};
use parking_lot::Mutex;

use super::front::LocalConsumers;
use super::machine::{QueueMachine, Reply};
use super::{Payload, QuorumTypes};
use crate::broker::message::Message;
use crate::cluster::log_db::LogDb;
use crate::cluster::log_store::encode;
use crate::cluster::stored_snapshot::{StoredSnapshot, io_error};

type Membership = StoredMembership<u64, BasicNode>;

/// The machine and how far it got, shared with the queue's front (counts, gets).
#[derive(Default)]
pub struct Applied {
    pub machine: QueueMachine<Arc<Message>>,
    pub last: Option<LogId<u64>>,
    pub membership: Membership,
    /// The index of the latest snapshot (registry.rs decides when to take the next).
    pub snapshot_index: u64,
}

pub type SharedMachine = Arc<Mutex<Applied>>;

pub struct QueueStateMachine {
    group: u64,
    db: Arc<LogDb>,
    shared: SharedMachine,
    local: Arc<LocalConsumers>,
}

impl QueueStateMachine {
    /// The machine as the latest snapshot left it (empty without one).
    pub fn open(
        group: u64,
        db: Arc<LogDb>,
        local: Arc<LocalConsumers>,
    ) -> Result<(Self, SharedMachine), String> {
        let mut applied = Applied::default();
        if let Some(stored) = StoredSnapshot::load(&db, group).map_err(|e| e.to_string())? {
            let machine: QueueMachine<Payload> =
                postcard::from_bytes(&stored.data).map_err(|e| e.to_string())?;
            applied.machine = machine.map(Payload::message);
            applied.last = stored.meta.last_log_id;
            applied.membership = stored.meta.last_membership;
            applied.snapshot_index = applied.last.map_or(0, |id| id.index);
        }
        let shared = Arc::new(Mutex::new(applied));
        let machine = QueueStateMachine {
            group,
            db,
            shared: shared.clone(),
            local,
        };
        Ok((machine, shared))
    }
}

/// The machine captured between two applies.
pub struct QueueSnapshotBuilder {
    group: u64,
    db: Arc<LogDb>,
    shared: SharedMachine,
    machine: QueueMachine<Payload>,
    last: Option<LogId<u64>>,
    membership: Membership,
}

impl RaftSnapshotBuilder<QuorumTypes> for QueueSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<QuorumTypes>, StorageError<u64>> {
        let stored =
            StoredSnapshot::new(self.last, self.membership.clone(), encode(&self.machine)?);
        let write = stored.write(self.group)?;
        self.db.write(vec![write]).await.map_err(io_error)?;
        self.shared.lock().snapshot_index = self.last.map_or(0, |id| id.index);
        tracing::debug!(
            "cluster: quorum queue group {} snapshot at {:?}, {} bytes",
            self.group,
            self.last,
            stored.data.len()
        );
        Ok(stored.into_snapshot())
    }
}

impl RaftStateMachine<QuorumTypes> for QueueStateMachine {
    type SnapshotBuilder = QueueSnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, Membership), StorageError<u64>> {
        let applied = self.shared.lock();
        Ok((applied.last, applied.membership.clone()))
    }

    async fn apply<I>(
        &mut self,
        entries: I,
    ) -> Result<Vec<Vec<Vec<Reply<Payload>>>>, StorageError<u64>>
    where
        I: IntoIterator<Item = openraft::Entry<QuorumTypes>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        let mut deliveries = Vec::new();
        {
            let mut applied = self.shared.lock();
            for entry in entries {
                applied.last = Some(entry.log_id);
                replies.push(match entry.payload {
                    EntryPayload::Normal(batches) => batches
                        .into_iter()
                        .map(|batch| {
                            let batch = super::machine::Batch {
                                proposer: batch.proposer,
                                seq: batch.seq,
                                commands: batch
                                    .commands
                                    .into_iter()
                                    .map(|c| c.map(|p| p.message()))
                                    .collect(),
                            };
                            applied
                                .machine
                                .apply(batch, &mut deliveries)
                                .into_iter()
                                .map(|r| r.map(|m| Payload::of(&m)))
                                .collect()
                        })
                        .collect(),
                    EntryPayload::Membership(m) => {
                        applied.membership = StoredMembership::new(Some(entry.log_id), m);
                        Vec::new()
                    }
                    EntryPayload::Blank => Vec::new(),
                });
            }
        }
        // Outside the machine's lock: a delivery writes into the consumer's channel.
        self.local.deliver(deliveries);
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let applied = self.shared.lock();
        QueueSnapshotBuilder {
            group: self.group,
            db: self.db.clone(),
            shared: self.shared.clone(),
            machine: applied.machine.map(|m| Payload::of(m)),
            last: applied.last,
            membership: applied.membership.clone(),
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
        let machine: QueueMachine<Payload> = postcard::from_bytes(&data).map_err(io_error)?;
        {
            let mut applied = self.shared.lock();
            applied.machine = machine.map(Payload::message);
            applied.last = meta.last_log_id;
            applied.membership = meta.last_membership.clone();
            applied.snapshot_index = meta.last_log_id.map_or(0, |id| id.index);
        }
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let write = stored.write(self.group)?;
        self.db.write(vec![write]).await.map_err(io_error)?;
        // Consumers of this node the snapshot does not know were dropped meanwhile: the
        // front's next tick has them join again.
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<QuorumTypes>>, StorageError<u64>> {
        Ok(StoredSnapshot::load(&self.db, self.group)?.map(StoredSnapshot::into_snapshot))
    }
}
