//! What a vhost shows of itself to the management API: its exchanges and every binding,
//! including the default exchange's implicit binding to each queue (RabbitMQ lists those).
//! Read-only snapshots; changing topology is mod.rs's and bindings.rs's.

use std::sync::Arc;

use amq_protocol::types::FieldTable;

use super::VHost;
use crate::broker::exchange::{Binding, Destination, Exchange};

/// One binding with its source exchange (`""`: the default exchange).
pub struct ListedBinding {
    pub source: Arc<str>,
    pub binding: Binding,
}

impl VHost {
    pub fn exchanges(&self) -> Vec<Arc<Exchange>> {
        self.exchanges.read().values().cloned().collect()
    }

    pub fn exchange_count(&self) -> usize {
        self.exchanges.read().len()
    }

    /// Every binding: the default exchange's to each queue first (by queue name), then the
    /// others by source, destination and routing key.
    pub fn list_bindings(&self) -> Vec<ListedBinding> {
        let mut queues: Vec<Arc<str>> = self.queues().iter().map(|q| q.name.clone()).collect();
        queues.sort();
        let default: Arc<str> = Arc::from("");
        let mut listed: Vec<ListedBinding> = queues
            .into_iter()
            .map(|name| ListedBinding {
                source: default.clone(),
                binding: Binding {
                    routing_key: name.to_string(),
                    destination: Destination::Queue(name),
                    arguments: FieldTable::default(),
                },
            })
            .collect();
        let mut explicit: Vec<ListedBinding> = self
            .exchanges()
            .iter()
            .filter(|x| !x.name.is_empty())
            .flat_map(|x| {
                x.bindings().into_iter().map(|binding| ListedBinding {
                    source: x.name.clone(),
                    binding,
                })
            })
            .collect();
        explicit.sort_by(|a, b| {
            let key = |l: &ListedBinding| {
                let (kind, name) = match &l.binding.destination {
                    Destination::Exchange(n) => (0, n.clone()),
                    Destination::Queue(n) => (1, n.clone()),
                };
                (l.source.clone(), kind, name, l.binding.routing_key.clone())
            };
            key(a).cmp(&key(b))
        });
        listed.extend(explicit);
        listed
    }
}
