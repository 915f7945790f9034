//! A queue's declare-time properties (durable, exclusive owner, auto-delete, arguments), as
//! queue.declare carries them and once they are checked. What they mean is the rest of
//! `queue/`'s business.

use amq_protocol::types::FieldTable;
use warren_protocol::AmqpError;

use super::args::QueueArguments;

/// The declare-time properties of a queue. `A` holds its arguments: typed and checked
/// ([`QueueArguments`]) once the queue exists, or as queue.declare carried them
/// ([`QueueDeclaration`]) until the vhost knows the declare creates a queue.
#[derive(Debug, Clone)]
pub struct QueueOptions<A = QueueArguments> {
    pub durable: bool,
    /// The connection that owns an exclusive queue.
    pub exclusive_owner: Option<u64>,
    pub auto_delete: bool,
    pub arguments: A,
}

/// A queue.declare (or a stored definition) before its arguments are parsed: a redeclare only
/// compares them, a passive declare ignores them, as in RabbitMQ.
pub type QueueDeclaration = QueueOptions<FieldTable>;

impl QueueDeclaration {
    /// The options of a queue about to be created: the arguments parsed and checked
    /// ([`QueueArguments::parse`]; `what` names the queue in its error texts).
    pub fn parse(self, what: &str) -> Result<QueueOptions, AmqpError> {
        let arguments = QueueArguments::parse(self.arguments, what)?;
        arguments.queue_type.check_properties(
            self.durable,
            self.exclusive_owner.is_some(),
            self.auto_delete,
            what,
        )?;
        Ok(QueueOptions {
            durable: self.durable,
            exclusive_owner: self.exclusive_owner,
            auto_delete: self.auto_delete,
            arguments,
        })
    }
}
