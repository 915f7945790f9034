//! The metadata group's Raft types, and the ids of Raft groups on a node.

use crate::broker::replication::{Change, Outcome};

/// The metadata group: vhosts, users, permissions, policies, exchanges, queues, bindings.
pub const METADATA_GROUP: u64 = 0;

openraft::declare_raft_types!(
    /// The metadata group's types: entries carry broker [`Change`]s, applying one gives its
    /// [`Outcome`].
    pub MetaTypes:
        D = Change,
        R = Outcome,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<MetaTypes>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type MetaRaft = openraft::Raft<MetaTypes>;
