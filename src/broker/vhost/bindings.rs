//! Bindings between exchanges and queues: exchange.bind / queue.bind and their unbinds, checked
//! in RabbitMQ's order and with its answers (binding is strict, unbinding idempotent), and the
//! store writes for durable ones, under the vhost's topology lock.

use std::sync::Arc;

use warren_protocol::AmqpError;

use super::VHost;
use crate::broker::exchange::{Binding, Destination, Exchange, ExchangeKind};
use crate::broker::queue::Queue;

impl VHost {
    /// exchange.bind / queue.bind, checked in RabbitMQ's order: the default exchange at either
    /// end (403), a missing source, then a missing destination (404), the binding's arguments
    /// (406), exclusive access to the destination queue (405).
    pub(crate) fn bind_here(
        &self,
        source: &str,
        binding: Binding,
        connection_id: u64,
    ) -> Result<(), AmqpError> {
        refuse_default_exchange(source, &binding.destination)?;
        let _topology = self.topology.lock();
        self.refuse_if_deleted()?;
        let (source, queue) = self.binding_ends(source, &binding.destination)?;
        if source.route_kind() == ExchangeKind::Headers {
            crate::broker::exchange::headers::validate_binding_arguments(&binding.arguments)
                .map_err(AmqpError::precondition)?;
        }
        if let Some(queue) = queue {
            queue.check_access(connection_id)?;
        }
        let durable =
            self.durability.is_some() && self.is_durable_binding(&source, &binding.destination);
        if durable && let Some(d) = &self.durability {
            d.save_binding(&self.name, &source.name, &binding)?;
        }
        source.bind(binding);
        Ok(())
    }

    /// exchange.unbind / queue.unbind. Idempotent, as in RabbitMQ: a missing source,
    /// destination or binding is success (clients unbind in cleanup paths, after auto-delete
    /// queues are gone). Only the default exchange at either end (403) and, for a binding that
    /// exists, a queue exclusive to another connection (405) are refused.
    pub(crate) fn unbind_here(
        &self,
        source: &str,
        binding: &Binding,
        connection_id: u64,
    ) -> Result<(), AmqpError> {
        refuse_default_exchange(source, &binding.destination)?;
        let _topology = self.topology.lock();
        let Ok((source, queue)) = self.binding_ends(source, &binding.destination) else {
            return Ok(());
        };
        if !source.has_binding(binding) {
            return Ok(());
        }
        if let Some(queue) = queue {
            queue.check_access(connection_id)?;
        }
        if source.unbind(binding) {
            if let Some(d) = &self.durability
                && source.options.durable
            {
                d.forget_bindings(&self.name, &source.name, std::slice::from_ref(binding));
            }
            self.maybe_auto_delete_exchange(&source);
        }
        Ok(())
    }

    /// The source exchange and, for a queue destination, the queue; 404 naming the source if
    /// it is missing, else the destination. What this node has, under the topology lock:
    /// a cluster's changes are applied here too, so no waiting for the cluster.
    fn binding_ends(
        &self,
        source: &str,
        dest: &Destination,
    ) -> Result<(Arc<Exchange>, Option<Arc<Queue>>), AmqpError> {
        let source = self
            .exchange(source)
            .ok_or_else(|| self.no_exchange(source))?;
        let queue = match dest {
            Destination::Queue(q) => Some(self.queue(q).ok_or_else(|| self.no_queue(q))?),
            Destination::Exchange(e) => {
                self.exchange(e).ok_or_else(|| self.no_exchange(e))?;
                None
            }
        };
        Ok((source, queue))
    }
}

/// What RabbitMQ answers for declaring, deleting or binding the default exchange.
pub(super) fn default_exchange_refused() -> AmqpError {
    AmqpError::access_refused("operation not permitted on the default exchange")
}

/// RabbitMQ refuses the default exchange at either end of a binding before looking up anything.
fn refuse_default_exchange(source: &str, dest: &Destination) -> Result<(), AmqpError> {
    let dest_is_default = matches!(dest, Destination::Exchange(e) if e.is_empty());
    if source.is_empty() || dest_is_default {
        return Err(default_exchange_refused());
    }
    Ok(())
}
