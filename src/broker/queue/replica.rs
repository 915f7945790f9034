//! A quorum queue on a cluster node hands its operations to its [`QueueReplica`] (the queue's
//! Raft group): publish, consume, cancel, settle, get, purge and counts branch to it at the top
//! of the methods that implement them (queue.rs, dispatch.rs, basic_get.rs, counts.rs). The
//! queue's own lists stay empty; its consumer set still lists this node's consumers (exclusive
//! consumption, the management API, channel bookkeeping).

use std::sync::Arc;

use super::queue::Queue;
use crate::broker::replication::QueueReplica;

impl Queue {
    /// Hands this queue to its replica from now on (once; later calls change nothing).
    pub fn attach_replica(&self, replica: Arc<dyn QueueReplica>) {
        let _ = self.replica.set(replica);
    }

    /// The replica of a quorum queue on a cluster node.
    pub fn replica(&self) -> Option<&Arc<dyn QueueReplica>> {
        self.replica.get()
    }
}
