//! Routing a message through a vhost: from the exchange it was published to, along
//! exchange-to-exchange bindings and alternate exchanges, to the set of queues it reaches (each
//! once), for one routing key or several (CC/BCC). Reads the vhost's maps; changes nothing.

use std::collections::HashSet;
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
        scratch: &mut RouteScratch,
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
        scratch: &mut RouteScratch,
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
        // The walk is a loop over an explicit stack: a client can chain exchanges as long as it
        // likes, and a recursion per exchange would overflow the stack. The stack and the
        // visited set live in `scratch`, reused from one message to the next.
        let RouteScratch {
            destinations,
            steps,
            visited,
        } = scratch;
        visited.clear();
        steps.clear();
        steps.push(Step::Visit(exchange.clone()));
        while let Some(step) = steps.pop() {
            match step {
                Step::Visit(exchange) => self.visit(
                    &exchange,
                    routing_keys,
                    headers,
                    out,
                    destinations,
                    visited,
                    steps,
                ),
                Step::Next(name) => {
                    if !visited.contains(&name)
                        && let Some(next) = self.exchange(&name)
                    {
                        steps.push(Step::Visit(next));
                    }
                }
            }
        }
    }

    /// Routes through one exchange: its queues go to `out`; the exchanges it binds to go on the
    /// stack, so they run in binding order, each exchange's subtree before its next sibling.
    /// Its alternate exchange is followed only when its own bindings match nothing, as
    /// RabbitMQ's `process_alternate` does (a match that leads to an exchange routing nowhere,
    /// or to a queue already reached, is still a match).
    #[allow(clippy::too_many_arguments)]
    fn visit(
        &self,
        exchange: &Arc<Exchange>,
        routing_keys: &[&str],
        headers: &mut LazyHeaders,
        out: &mut Vec<Arc<Queue>>,
        scratch: &mut Vec<Destination>,
        visited: &mut HashSet<Arc<str>, ahash::RandomState>,
        steps: &mut Vec<Step>,
    ) {
        scratch.clear();
        for key in routing_keys {
            exchange.route(key, headers, scratch);
        }
        let alternate = if scratch.is_empty() {
            exchange.alternate_exchange()
        } else {
            None
        };
        let next_from = steps.len();
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
                    Destination::Exchange(name) => steps.push(Step::Next(name)),
                }
            }
        }
        if let Some(alternate) = alternate {
            steps.push(Step::Next(alternate));
        }
        if steps.len() > next_from {
            visited.insert(exchange.name.clone());
        }
        // Popped last-in first-out: reversed so the first binding is followed first.
        steps[next_from..].reverse();
    }
}

/// The routing walk's working memory, kept by whoever routes many messages (a publisher, the
/// dead-letter path) so that a plain publish allocates nothing.
#[derive(Default)]
pub struct RouteScratch {
    /// What one exchange matched.
    destinations: Vec<Destination>,
    /// The walk's explicit stack.
    steps: Vec<Step>,
    /// Exchanges already routed through (only filled when a chain or an alternate exchange
    /// makes a second visit possible).
    visited: HashSet<Arc<str>, ahash::RandomState>,
}

/// What the routing walk does next.
enum Step {
    /// Route through this exchange.
    Visit(Arc<Exchange>),
    /// Route through the exchange of this name, unless the walk has been there.
    Next(Arc<str>),
}
