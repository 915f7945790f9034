//! Quorum queues on a cluster (CLUSTER.md): one Raft group per queue, every node a member.
//! Each member applies the queue's commands to the same deterministic machine (machine.rs),
//! so each holds the messages, the consumers and which consumer holds what; the node a
//! consumer is connected to delivers what the machine assigned to it (front.rs). Publishes,
//! consumes, acks and gets from any node are proposals to the group, batched per node and
//! queue (front.rs), forwarded to the leader (proposing.rs); a publish is confirmed once its
//! batch is committed.
//!
//! Files: `machine.rs` the queue as a state machine, pure; `state_machine.rs` openraft's side
//! of it (apply, snapshots); `merger.rs` the leader's side of proposals (the members' batches
//! into one entry); `batching.rs` a node's proposals in batches; `front.rs` the [`QueueReplica`](crate::broker::replication::QueueReplica)
//! a `Queue` hands its operations to; `registry.rs` this node's quorum queue groups: starting,
//! stopping, node-down detection and snapshots.

mod batching;
pub mod front;
pub mod machine;
pub mod merger;
pub mod registry;
pub mod state_machine;

use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use warren_protocol::{Properties, ShortStr};

use crate::broker::message::Message;
use machine::{Batch, Command, Reply};

/// A message as a quorum queue's log carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    pub exchange: String,
    pub routing_key: Bytes,
    pub properties: Bytes,
    pub body: Bytes,
}

impl Payload {
    pub fn of(message: &Message) -> Payload {
        Payload {
            exchange: message.exchange.to_string(),
            routing_key: Bytes::copy_from_slice(message.routing_key.as_bytes()),
            properties: message.properties.raw().clone(),
            body: message.body.clone(),
        }
    }

    /// The broker's message; properties or a routing key that do not parse (they did when
    /// published) become empty ones rather than losing the message.
    pub fn message(&self) -> Arc<Message> {
        let routing_key = ShortStr::from_bytes(self.routing_key.clone()).unwrap_or_default();
        let properties = Properties::parse(self.properties.clone()).unwrap_or_default();
        Arc::new(Message {
            exchange: Arc::from(self.exchange.as_str()),
            routing_key,
            properties,
            body: self.body.clone(),
            store_id: None,
        })
    }
}

/// What a quorum queue asks for that its replicated form does not do yet (its arguments and
/// the policies that apply when it is declared): such a queue is not replicated but lives on
/// each node, as every quorum queue did before they replicated (CLUSTER.md, "Not yet").
pub fn not_replicated_for(queue: &crate::broker::queue::Queue) -> Option<&'static str> {
    let settings = queue.settings();
    if settings.message_ttl_ms.is_some() {
        Some("a message TTL")
    } else if settings.dead_letter.is_some() {
        Some("dead-lettering")
    } else if settings.retry_delays.is_some() {
        Some("retries")
    } else {
        None
    }
}

impl machine::Weigh for Payload {
    fn bytes(&self) -> u64 {
        self.body.len() as u64
    }
}

impl machine::Weigh for Arc<Message> {
    fn bytes(&self) -> u64 {
        self.body.len() as u64
    }
}

/// The limits a quorum queue's machine applies, from its settings when declared.
pub fn limits_of(queue: &crate::broker::queue::Queue) -> machine::Limits {
    let settings = queue.settings();
    machine::Limits {
        max_length: settings.max_length,
        max_bytes: settings.max_length_bytes,
        reject_publish: settings.overflow != crate::broker::queue::args::Overflow::DropHead,
        delivery_limit: settings.delivery_limit,
        single_active: queue.options.arguments.single_active_consumer,
    }
}

openraft::declare_raft_types!(
    /// A quorum queue's group: an entry holds batches of commands (one per member that
    /// proposed meanwhile, merger.rs); applying one answers each command of each batch.
    pub QuorumTypes:
        D = Vec<Batch<Payload>>,
        R = Vec<Vec<Reply<Payload>>>,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<QuorumTypes>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type QuorumRaft = openraft::Raft<QuorumTypes>;

/// A command as proposed (the message as the log carries it).
pub type Proposal = Command<Payload>;
