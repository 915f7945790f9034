//! The seam between the broker and a cluster. A change to definitions that every node must
//! hold (vhosts, users, permissions, policies, exchanges, queues, bindings) is described as a
//! [`Change`]; when a [`Replicator`] is installed (a cluster node), the broker's public
//! operations hand the change to it instead of making it here, and the cluster applies it on
//! every node in one order through [`apply`]. Without one (a single node) nothing changes: the
//! operations run here, as before.
//!
//! This file owns the shape of a change and of its outcome; it knows nothing of Raft, sockets
//! or where the change is committed. What a change does to a broker is in `apply.rs`.

mod apply;
mod queue_replica;

use std::sync::Arc;

use amq_protocol::types::FieldTable;
use serde::{Deserialize, Serialize};
use warren_protocol::AmqpError;

use super::exchange::{Binding, Destination};
use super::tenancy::TenancyError;

/// A change to the definitions every node holds. Each variant names what the broker's own
/// operation takes, in a form that crosses the network and is applied the same on every node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    /// A vhost created, or its settings replaced: the stored record (`Definition::VHost`).
    PutVhost {
        record: Vec<u8>,
    },
    DeleteVhost {
        name: String,
    },
    /// A user created or replaced: the stored record (`Definition::User`).
    PutUser {
        record: Vec<u8>,
    },
    DeleteUser {
        name: String,
    },
    SetPermissions {
        user: String,
        vhost: String,
        configure: String,
        write: String,
        read: String,
    },
    ClearPermissions {
        user: String,
        vhost: String,
    },
    SetTopicPermission {
        user: String,
        vhost: String,
        exchange: String,
        write: String,
        read: String,
    },
    ClearTopicPermissions {
        user: String,
        vhost: String,
        exchange: Option<String>,
    },
    /// A policy's JSON body as the API takes it.
    PutPolicy {
        vhost: String,
        name: String,
        operator: bool,
        body: String,
    },
    DeletePolicy {
        vhost: String,
        name: String,
        operator: bool,
    },
    DeclareExchange {
        vhost: String,
        name: String,
        kind: String,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    },
    DeleteExchange {
        vhost: String,
        name: String,
        if_unused: bool,
    },
    /// A queue that is not exclusive (exclusive queues stay with their connection's node).
    DeclareQueue {
        vhost: String,
        name: String,
        /// The broker generated the name (`amq.gen-…`): the reserved prefix is allowed.
        generated: bool,
        durable: bool,
        auto_delete: bool,
        arguments: FieldTable,
        /// A quorum queue's Raft group (chosen by the node that proposed the declare; a
        /// queue deleted and declared again gets another); 0 for other queues.
        group: u64,
    },
    /// Unconditional: if-unused and if-empty were checked where the client asked.
    DeleteQueue {
        vhost: String,
        name: String,
    },
    Bind(BindingChange),
    Unbind(BindingChange),
}

/// A binding as a change carries it (bind and unbind alike).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BindingChange {
    pub vhost: String,
    pub source: String,
    /// true: the destination is an exchange; false: a queue.
    pub to_exchange: bool,
    pub destination: String,
    pub routing_key: String,
    pub arguments: FieldTable,
}

impl BindingChange {
    pub fn new(vhost: &str, source: &str, binding: &Binding) -> Self {
        let (to_exchange, destination) = match &binding.destination {
            Destination::Exchange(e) => (true, e.to_string()),
            Destination::Queue(q) => (false, q.to_string()),
        };
        BindingChange {
            vhost: vhost.to_string(),
            source: source.to_string(),
            to_exchange,
            destination,
            routing_key: binding.routing_key.clone(),
            arguments: binding.arguments.clone(),
        }
    }

    /// The binding it describes, as the source exchange holds it.
    pub fn binding(&self) -> Binding {
        let destination: Arc<str> = Arc::from(self.destination.as_str());
        Binding {
            destination: if self.to_exchange {
                Destination::Exchange(destination)
            } else {
                Destination::Queue(destination)
            },
            routing_key: self.routing_key.clone(),
            arguments: self.arguments.clone(),
        }
    }
}

/// What applying a change gave. Every node applies the same changes in the same order, so
/// every node gets the same outcome; the node the client asked answers with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Done,
    /// A policy put: whether it was new.
    Created(bool),
    /// Refused with an AMQP error (code and RabbitMQ's text).
    Amqp {
        code: u16,
        text: String,
    },
    /// A tenancy operation refused.
    Tenancy(TenancyRefusal),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TenancyRefusal {
    NotFound(String),
    Invalid(String),
    Store(String),
}

impl Outcome {
    pub fn of_amqp(result: Result<(), AmqpError>) -> Outcome {
        match result {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Amqp {
                code: e.code,
                text: e.text,
            },
        }
    }

    pub fn of_tenancy<T>(result: Result<T, TenancyError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Done,
            Err(e) => Outcome::Tenancy(match e {
                TenancyError::NotFound(s) => TenancyRefusal::NotFound(s),
                TenancyError::Invalid(s) => TenancyRefusal::Invalid(s),
                TenancyError::Store(s) => TenancyRefusal::Store(s),
            }),
        }
    }

    /// The outcome as an AMQP operation's result (a tenancy refusal cannot come back from
    /// an AMQP change; it is reported as an internal error if it ever does).
    pub fn into_amqp(self) -> Result<(), AmqpError> {
        match self {
            Outcome::Done | Outcome::Created(_) => Ok(()),
            Outcome::Amqp { code, text } => Err(AmqpError {
                code,
                text,
                class_id: 0,
                method_id: 0,
            }),
            Outcome::Tenancy(r) => Err(AmqpError::internal(format_args!("{r:?}"))),
        }
    }

    pub fn into_tenancy(self) -> Result<bool, TenancyError> {
        match self {
            Outcome::Done => Ok(false),
            Outcome::Created(created) => Ok(created),
            Outcome::Tenancy(TenancyRefusal::NotFound(s)) => Err(TenancyError::NotFound(s)),
            Outcome::Tenancy(TenancyRefusal::Invalid(s)) => Err(TenancyError::Invalid(s)),
            Outcome::Tenancy(TenancyRefusal::Store(s)) | Outcome::Amqp { text: s, .. } => {
                Err(TenancyError::Store(s))
            }
        }
    }
}

/// Why a change could not be replicated: the cluster did not commit it in time (no leader,
/// or this node is on the minority side of a partition), or is shutting down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReplicated(pub String);

impl NotReplicated {
    /// As a client sees it: an internal error that closes the connection (RabbitMQ answers a
    /// declare it cannot commit with a timeout, also 541).
    pub fn into_amqp(self) -> AmqpError {
        AmqpError::internal(format_args!("{}", self.0))
    }

    pub fn into_tenancy(self) -> TenancyError {
        TenancyError::Store(self.0)
    }
}

/// What replicates changes: a cluster node. `replicate` returns once the change is applied on
/// this node (and on every member in contact with the leader), with its outcome. It blocks:
/// callers are broker operations, which are synchronous.
pub trait Replicator: Send + Sync {
    fn replicate(&self, change: Change) -> Result<Outcome, NotReplicated>;

    /// Returns once this node has applied every change committed before the call (a read
    /// barrier): a node that was behind — restarted, or cut off a moment ago — then answers a
    /// lookup as the cluster would. Blocks, as `replicate` does.
    fn sync(&self) -> Result<(), NotReplicated>;
}

pub use apply::apply;
pub use queue_replica::{CommitWait, QueueReplica, ReplicaCounts, Settlement};
