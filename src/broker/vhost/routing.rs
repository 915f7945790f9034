//! Routing a message through a vhost: from the exchange it was published to, along
//! exchange-to-exchange bindings and alternate exchanges, to the set of queues it reaches (each
//! once), for one routing key or several (CC/BCC). Reads the vhost's maps; changes nothing.

use std::sync::Arc;

use super::VHost;
use crate::broker::exchange::{Destination, Exchange};
use crate::broker::message::LazyHeaders;
use crate::broker::queue::Queue;

impl VHost {
    /// Every queue a message published to `exchange` reaches, each once, following
    /// exchange-to-exchange bindings and alternate exchanges. `scratch` is reused across calls.
    pub fn route(
        &self,
        exchange: &Arc<Exchange>,
        routing_key: &str,
        headers: &mut LazyHeaders,
        out: &mut Vec<Arc<Queue>>,
        scratch: &mut Vec<Destination>,
    ) {
        self.route_keys(exchange, &[routing_key], headers, out, scratch)
    }

    /// [`Self::route`] for a message with several routing keys (its own plus CC/BCC): the
    /// queues any of them reach, each once; the alternate exchange only if none reaches one.
    pub fn route_keys(
        &self,
        exchange: &Arc<Exchange>,
        routing_keys: &[&str],
        headers: &mut LazyHeaders,
        out: &mut Vec<Arc<Queue>>,
        scratch: &mut Vec<Destination>,
    ) {
        if exchange.name.is_empty() {
            // The default exchange: every queue is implicitly bound by its own name.
            let queues = self.queues.read();
            for key in routing_keys {
                if let Some(q) = queues.get(*key)
                    && !out.iter().any(|o| Arc::ptr_eq(o, q))
                {
                    out.push(q.clone());
                }
            }
            return;
        }
        // Only exchange-to-exchange bindings and alternate exchanges grow this (no allocation
        // for a plain publish).
        let mut visited: Vec<Arc<str>> = Vec::new();
        self.route_through(exchange, routing_keys, headers, out, scratch, &mut visited);
    }

    fn route_through(
        &self,
        exchange: &Arc<Exchange>,
        routing_keys: &[&str],
        headers: &mut LazyHeaders,
        out: &mut Vec<Arc<Queue>>,
        scratch: &mut Vec<Destination>,
        visited: &mut Vec<Arc<str>>,
    ) {
        let before = out.len();
        scratch.clear();
        for key in routing_keys {
            exchange.route(key, headers, scratch);
        }
        let mut next_exchanges = Vec::new();
        {
            let queues = self.queues.read();
            for dest in scratch.drain(..) {
                match dest {
                    Destination::Queue(name) => {
                        if let Some(q) = queues.get(&name)
                            && !out.iter().any(|o| Arc::ptr_eq(o, q))
                        {
                            out.push(q.clone());
                        }
                    }
                    Destination::Exchange(name) => next_exchanges.push(name),
                }
            }
        }
        let ae = if out.len() == before {
            exchange.alternate_exchange()
        } else {
            None
        };
        if !next_exchanges.is_empty() || ae.is_some() {
            visited.push(exchange.name.clone());
        }
        for name in next_exchanges {
            if visited.contains(&name) {
                continue;
            }
            if let Some(next) = self.exchange(&name) {
                self.route_through(&next, routing_keys, headers, out, scratch, visited);
            }
        }
        if out.len() == before
            && let Some(ae) = ae
            && !visited.iter().any(|v| **v == *ae)
            && let Some(ae) = self.exchange(&ae)
        {
            self.route_through(&ae, routing_keys, headers, out, scratch, visited);
        }
    }
}
