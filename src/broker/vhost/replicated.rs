//! The vhost's topology operations as clients and the management API call them. On a single
//! node they run here (the `*_here` methods); on a cluster node, the changes every node must
//! hold go through the cluster's [`Replicator`] and come back through
//! `broker::replication::apply` on every node, this one included.
//!
//! What stays on this node: passive declares and redeclares of what exists here (nothing
//! changes), exclusive queues and bindings to them (they live and die with their connection,
//! as in RabbitMQ), and the checks that depend on the asking connection or on this node's
//! queue contents (exclusive access, if-unused and if-empty of queue.delete).

use std::sync::Arc;

use warren_protocol::AmqpError;

use super::VHost;
use crate::broker::exchange::{Binding, Destination, ExchangeOptions};
use crate::broker::queue::{Queue, QueueDeclaration};
use crate::broker::replication::{BindingChange, Change, Replicator};

impl VHost {
    pub(crate) fn install_replicator(&self, replicator: Arc<dyn Replicator>) {
        let _ = self.replicator.set(replicator);
    }

    /// `find`, and on a cluster node, when it finds nothing, `find` again once this node has
    /// applied everything the cluster had committed (it may have been behind: restarted, or
    /// cut off a moment ago). A node that cannot reach the leader answers from what it has.
    pub(super) fn synced_lookup<T>(&self, find: impl Fn() -> Option<T>) -> Option<T> {
        if let Some(found) = find() {
            return Some(found);
        }
        let replicator = self.replicator.get()?;
        if let Err(e) = replicator.sync() {
            tracing::debug!("{}", e.0);
        }
        find()
    }

    fn replicate(&self, change: Change) -> Result<(), AmqpError> {
        let Some(replicator) = self.replicator.get() else {
            return Err(AmqpError::internal("no replicator"));
        };
        replicator
            .replicate(change)
            .map_err(|e| e.into_amqp())?
            .into_amqp()
    }

    /// exchange.declare: passive only looks; otherwise created (or checked for equivalence).
    pub fn declare_exchange(
        &self,
        name: &str,
        options: ExchangeOptions,
        passive: bool,
    ) -> Result<(), AmqpError> {
        if passive {
            return self.passive_declare_exchange(name);
        }
        if self.replicator.get().is_none() || name.is_empty() {
            return self.declare_exchange_here(name, options);
        }
        if let Some(existing) = self.exchange(name) {
            return self.check_exchange_equivalence(&existing, &options);
        }
        self.replicate(Change::DeclareExchange {
            vhost: self.name.to_string(),
            name: name.to_string(),
            kind: options.kind.as_str().to_string(),
            durable: options.durable,
            auto_delete: options.auto_delete,
            internal: options.internal,
            arguments: options.arguments,
        })
    }

    /// exchange.delete. On a cluster node if-unused is checked here, where the client asked:
    /// bindings to exclusive queues live on their node only, so only this node sees all of
    /// the ones its client could have made. The delete itself is then unconditional.
    pub fn delete_exchange(&self, name: &str, if_unused: bool) -> Result<(), AmqpError> {
        if self.replicator.get().is_none() || name.is_empty() {
            return self.delete_exchange_here(name, if_unused);
        }
        if if_unused
            && !name.starts_with("amq.")
            && self.exchange(name).is_some_and(|x| x.has_bindings())
        {
            return Err(AmqpError::precondition(format_args!(
                "{} in use",
                crate::broker::names::exchange(name, &self.name)
            )));
        }
        self.replicate(Change::DeleteExchange {
            vhost: self.name.to_string(),
            name: name.to_string(),
            if_unused: false,
        })
    }

    /// A queue declared under a name already checked or generated.
    pub(super) fn declare_queue_named(
        &self,
        name: String,
        generated: bool,
        options: QueueDeclaration,
        connection_id: u64,
    ) -> Result<Arc<Queue>, AmqpError> {
        let local = self.replicator.get().is_none()
            || options.exclusive_owner.is_some()
            || self.queue(&name).is_some();
        if local {
            return self.declare_queue_here(name, generated, options, connection_id);
        }
        self.replicate(Change::DeclareQueue {
            vhost: self.name.to_string(),
            name: name.clone(),
            generated,
            durable: options.durable,
            auto_delete: options.auto_delete,
            arguments: options.arguments,
            group: rand::random::<u64>().max(1),
        })?;
        self.queue(&name).ok_or_else(|| self.no_queue(&name))
    }

    /// queue.delete after its checks: the queue goes from every node (an exclusive one only
    /// lives here). Returns the ready messages dropped here.
    pub(super) fn remove_queue_everywhere(&self, queue: &Arc<Queue>) -> Result<u32, AmqpError> {
        if self.replicator.get().is_none() || queue.options.exclusive_owner.is_some() {
            return Ok(self.remove_queue(queue));
        }
        let (messages, _) = queue.counts();
        self.replicate(Change::DeleteQueue {
            vhost: self.name.to_string(),
            name: queue.name.to_string(),
        })?;
        Ok(messages)
    }

    /// exchange.bind / queue.bind.
    pub fn bind(
        &self,
        source: &str,
        binding: Binding,
        connection_id: u64,
    ) -> Result<(), AmqpError> {
        if !self.replicates_binding(&binding.destination) {
            return self.bind_here(source, binding, connection_id);
        }
        if let Destination::Queue(q) = &binding.destination
            && let Some(queue) = self.queue(q)
        {
            queue.check_access(connection_id)?;
        }
        self.replicate(Change::Bind(BindingChange::new(
            &self.name, source, &binding,
        )))
    }

    /// exchange.unbind / queue.unbind.
    pub fn unbind(
        &self,
        source: &str,
        binding: &Binding,
        connection_id: u64,
    ) -> Result<(), AmqpError> {
        if !self.replicates_binding(&binding.destination) {
            return self.unbind_here(source, binding, connection_id);
        }
        self.replicate(Change::Unbind(BindingChange::new(
            &self.name, source, binding,
        )))
    }

    /// A binding to an exclusive queue stays with it, on this node.
    fn replicates_binding(&self, destination: &Destination) -> bool {
        self.replicator.get().is_some()
            && match destination {
                Destination::Queue(q) => self
                    .queue(q)
                    .is_none_or(|queue| queue.options.exclusive_owner.is_none()),
                Destination::Exchange(_) => true,
            }
    }
}
