//! A publisher's memo of its last publish's destination: the exchange it named and, for the
//! default exchange, the queue its routing key named.
//!
//! A publisher usually sends to one place many times over; the memo saves a map lock and a
//! hash lookup per publish. It is valid while the vhost's topology generation is unchanged
//! (bumped whenever an exchange or queue leaves the vhost), so a deleted exchange or queue is
//! never used after its deletion is visible. This file owns only the memo, not routing.

use std::sync::Arc;

use crate::broker::exchange::Exchange;
use crate::broker::queue::Queue;
use crate::broker::vhost::VHost;

#[derive(Default)]
pub struct RouteMemo {
    generation: u64,
    exchange: Option<Arc<Exchange>>,
    default_queue: Option<Arc<Queue>>,
}

impl RouteMemo {
    /// Drops the memo if anything left the vhost since it was filled.
    fn check(&mut self, vhost: &VHost) {
        let generation = vhost.generation();
        if generation != self.generation {
            self.generation = generation;
            self.exchange = None;
            self.default_queue = None;
        }
    }

    /// The exchange called `name`, if it exists.
    pub fn exchange(&mut self, vhost: &VHost, name: &str) -> Option<Arc<Exchange>> {
        self.check(vhost);
        if let Some(e) = &self.exchange
            && *e.name == *name
        {
            return Some(e.clone());
        }
        let e = vhost.exchange(name)?;
        self.exchange = Some(e.clone());
        Some(e)
    }

    /// The queue the default exchange routes `routing_key` to (the queue of that name).
    pub fn default_exchange_queue(
        &mut self,
        vhost: &VHost,
        routing_key: &str,
    ) -> Option<Arc<Queue>> {
        self.check(vhost);
        if let Some(q) = &self.default_queue
            && *q.name == *routing_key
        {
            return Some(q.clone());
        }
        let q = vhost.queue(routing_key)?;
        self.default_queue = Some(q.clone());
        Some(q)
    }
}
