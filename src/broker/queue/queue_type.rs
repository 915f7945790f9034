//! The queue-type seam: `x-queue-type` = `classic` (the default) or `quorum`, checked as
//! RabbitMQ 3.10 checks it — an unknown type, the arguments a type refuses (`invalid arg
//! 'x-max-priority' for queue 'q' in vhost '/' of queue type rabbit_quorum_queue`), the
//! properties it refuses (`invalid property 'non-durable' …`), and redeclare equivalence (no
//! `x-queue-type` is `classic`).
//!
//! What a type changes is read from [`QueueType`] where it matters: a quorum queue stores
//! every message whatever its delivery mode (publish/enqueue.rs, `Queue::stores`) and refuses
//! consumers on a channel with global QoS (server/channel/basic.rs). Routing, consumers and the
//! management API go through the same `Queue` for every type; a type that needs another
//! engine (streams: an append-only log with per-consumer offsets) plugs in behind `Queue`'s
//! methods the same way. Streams are refused for now with a reason that says so.

use amq_protocol::types::{AMQPValue, FieldTable};
use warren_protocol::AmqpError;

pub use super::args::QueueType;
use super::args::string;

/// Arguments RabbitMQ 3.10 refuses on a quorum queue (asked of the reference broker).
const REFUSED_BY_QUORUM: [&str; 6] = [
    "x-max-priority",
    "x-queue-mode",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-version",
];

/// Arguments RabbitMQ 3.10 refuses on a stream: every queue argument it knows but
/// `x-max-length-bytes`, `x-max-age`, `x-stream-max-segment-size-bytes`,
/// `x-initial-cluster-size`, `x-queue-leader-locator` (and `x-consumer-timeout`, which it does
/// not check).
const REFUSED_BY_STREAM: [&str; 16] = [
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-dead-letter-strategy",
    "x-max-length",
    "x-max-in-memory-length",
    "x-max-in-memory-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-version",
    "x-single-active-consumer",
    "x-quorum-initial-group-size",
    "x-delivery-limit",
    "x-queue-master-locator",
];
/// Arguments RabbitMQ 3.10 refuses on a classic queue that warren knows: those only quorum
/// queues or streams take (`… of queue type rabbit_classic_queue`, whatever the value).
const REFUSED_BY_CLASSIC: [&str; 3] = ["x-dead-letter-strategy", "x-delivery-limit", "x-max-age"];

/// Arguments a redeclare of a quorum queue compares besides the common ones (RabbitMQ compares
/// its type's arguments: `inequivalent arg 'x-dead-letter-strategy' …`).
const COMPARED_BY_QUORUM: [&str; 2] = ["x-dead-letter-strategy", "x-delivery-limit"];

/// Reads `x-queue-type`; the error is RabbitMQ's reason.
pub fn parse(v: &AMQPValue) -> Result<QueueType, String> {
    match string(v)?.as_str() {
        "classic" => Ok(QueueType::Classic),
        "quorum" => Ok(QueueType::Quorum),
        "stream" => Ok(QueueType::Stream),
        other => Err(format!("\"unsupported queue type '{other}'\"")),
    }
}

impl QueueType {
    /// The name the management API shows (`type`).
    pub fn name(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
            QueueType::Stream => "stream",
        }
    }

    /// RabbitMQ's module for the type, as its refusals name it.
    pub fn module(self) -> &'static str {
        match self {
            QueueType::Classic => "rabbit_classic_queue",
            QueueType::Quorum => "rabbit_quorum_queue",
            QueueType::Stream => "rabbit_stream_queue",
        }
    }

    fn refuses(self, key: &str) -> bool {
        match self {
            QueueType::Classic => REFUSED_BY_CLASSIC.contains(&key),
            QueueType::Quorum => REFUSED_BY_QUORUM.contains(&key),
            QueueType::Stream => REFUSED_BY_STREAM.contains(&key),
        }
    }

    /// Arguments a redeclare compares for this type beyond args.rs's common list.
    pub fn also_compared(self) -> &'static [&'static str] {
        match self {
            QueueType::Classic | QueueType::Stream => &[],
            QueueType::Quorum => &COMPARED_BY_QUORUM,
        }
    }

    /// The first argument (in the table's order) this type refuses, after every value was
    /// checked (RabbitMQ reports a bad value before a refused key).
    pub fn check_arguments(self, declared: &FieldTable, what: &str) -> Result<(), AmqpError> {
        match declared.inner().keys().find(|k| self.refuses(k.as_str())) {
            Some(key) => Err(AmqpError::precondition(format_args!(
                "invalid arg '{}' for {what} of queue type {}",
                key.as_str(),
                self.module()
            ))),
            None => Ok(()),
        }
    }

    /// Quorum queues must be durable and can be neither exclusive nor auto-delete (checked
    /// in RabbitMQ's order, after the arguments).
    pub fn check_properties(
        self,
        durable: bool,
        exclusive: bool,
        auto_delete: bool,
        what: &str,
    ) -> Result<(), AmqpError> {
        if self == QueueType::Classic {
            return Ok(());
        }
        let refused = if auto_delete {
            "auto-delete"
        } else if exclusive {
            "exclusive-owner"
        } else if !durable {
            "non-durable"
        } else {
            return Ok(());
        };
        Err(AmqpError::precondition(format_args!(
            "invalid property '{refused}' for {what}"
        )))
    }
}

/// Whether a redeclaration's `x-queue-type` names the queue's type (none is `classic`).
pub fn same_type(current: QueueType, received: Option<&AMQPValue>) -> bool {
    match received {
        None => current == QueueType::Classic,
        Some(v) => parse(v).is_ok_and(|t| t == current),
    }
}
