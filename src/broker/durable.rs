//! The broker's side of durability: which definitions are durable, their store form, and
//! rebuilding a vhost from what the store recovered. The vhost calls [`Durability`] when a
//! durable exchange, queue or binding appears or goes; this file alone maps broker objects to
//! `store::Definition`s.

use std::sync::Arc;

use warren_protocol::{AmqpError, Properties, ShortStr};

use super::delayed::ScheduleSpec;
use super::exchange::{Binding, Destination, Exchange, ExchangeKind, ExchangeOptions};
use super::message::Message;
use super::names;
use super::queue::{Paging, Persistence, Queue, QueueDeclaration, QueueOptions};
use super::vhost::VHost;
use crate::store::{Definition, RecordError, Recovered, Store, StoredMessage};

/// A vhost's handle on the store.
pub struct Durability {
    pub store: Arc<Store>,
    /// Ready messages a queue keeps in memory before paging (see queue/paging.rs).
    pub page_threshold: usize,
}

impl Durability {
    /// A new queue's paging (durable or not).
    pub fn paging(&self) -> Paging {
        Paging::new(self.store.clone(), self.page_threshold)
    }
}

fn internal(e: impl std::fmt::Display) -> AmqpError {
    tracing::error!("store write failed: {e}");
    AmqpError::internal(format_args!("cannot store the definition: {e}"))
}

fn exchange_definition(vhost: &str, e: &Exchange) -> Definition {
    Definition::Exchange {
        vhost: vhost.to_string(),
        name: e.name.to_string(),
        kind: e.kind().as_str().to_string(),
        auto_delete: e.options.auto_delete,
        internal: e.options.internal,
        arguments: e.options.arguments.clone(),
        schedule_id: e.schedule().and_then(|s| s.store_id()).unwrap_or(0),
    }
}

fn binding_definition(vhost: &str, source: &str, b: &Binding) -> Definition {
    let (to_exchange, destination) = match &b.destination {
        Destination::Queue(q) => (false, q.to_string()),
        Destination::Exchange(e) => (true, e.to_string()),
    };
    Definition::Binding {
        vhost: vhost.to_string(),
        source: source.to_string(),
        to_exchange,
        destination,
        routing_key: b.routing_key.clone(),
        arguments: b.arguments.clone(),
    }
}

impl Durability {
    pub fn save_exchange(&self, vhost: &str, e: &Exchange) -> Result<(), AmqpError> {
        self.store
            .put_definition(&exchange_definition(vhost, e))
            .map_err(internal)
    }

    /// Forgets an exchange and the bindings it was the source of.
    pub fn forget_exchange(&self, vhost: &str, e: &Exchange) {
        let mut defs = vec![exchange_definition(vhost, e)];
        defs.extend(
            e.bindings()
                .iter()
                .map(|b| binding_definition(vhost, &e.name, b)),
        );
        if let Err(e) = self.store.delete_definitions(&defs) {
            tracing::error!("cannot delete stored definitions: {e}");
        }
    }

    /// A new durable queue: its id for the message index, and its stored definition.
    pub fn create_queue(
        &self,
        vhost: &str,
        name: &str,
        options: &QueueOptions,
    ) -> Result<Persistence, AmqpError> {
        let queue_id = self.store.next_queue_id();
        let def = Definition::Queue {
            vhost: vhost.to_string(),
            name: name.to_string(),
            id: queue_id,
            auto_delete: options.auto_delete,
            arguments: options.arguments.declared().clone(),
        };
        self.store.put_definition(&def).map_err(internal)?;
        Ok(Persistence {
            store: self.store.clone(),
            queue_id,
        })
    }

    pub fn forget_queue(&self, vhost: &str, q: &Queue, p: &Persistence) {
        let def = Definition::Queue {
            vhost: vhost.to_string(),
            name: q.name.to_string(),
            id: p.queue_id,
            auto_delete: q.options.auto_delete,
            arguments: q.options.arguments.declared().clone(),
        };
        if let Err(e) = self.store.delete_definitions(&[def]) {
            tracing::error!("cannot delete a stored queue definition: {e}");
        }
    }

    pub fn save_binding(&self, vhost: &str, source: &str, b: &Binding) -> Result<(), AmqpError> {
        self.store
            .put_definition(&binding_definition(vhost, source, b))
            .map_err(internal)
    }

    pub fn forget_bindings(&self, vhost: &str, source: &str, bindings: &[Binding]) {
        if bindings.is_empty() {
            return;
        }
        let defs: Vec<Definition> = bindings
            .iter()
            .map(|b| binding_definition(vhost, source, b))
            .collect();
        if let Err(e) = self.store.delete_definitions(&defs) {
            tracing::error!("cannot delete stored bindings: {e}");
        }
    }
}

/// Rebuilds `vhost` from recovered definitions and queue indexes (bodies stay in the store
/// until delivered).
pub fn restore(
    vhost: &VHost,
    store: &Arc<Store>,
    recovered: &mut Recovered,
    page_threshold: usize,
) {
    let mine = |v: &str| v == &*vhost.name;
    for def in &recovered.definitions {
        if let Definition::Exchange {
            vhost: v,
            name,
            kind,
            auto_delete,
            internal,
            arguments,
            schedule_id,
        } = def
            && mine(v)
        {
            let Some(kind) = ExchangeKind::parse(kind) else {
                continue;
            };
            let options = ExchangeOptions {
                kind,
                durable: true,
                auto_delete: *auto_delete,
                internal: *internal,
                arguments: arguments.clone(),
            };
            let exchange = Arc::new(Exchange::new(Arc::from(name.as_str()), options));
            if kind == ExchangeKind::DelayedMessage {
                // A schedule the start did not claim is dropped (broker/mod.rs).
                let restored = recovered.schedules.remove(schedule_id).unwrap_or(0);
                if restored > 0 {
                    tracing::info!(
                        "delayed exchange '{name}' in vhost '{v}': {restored} delayed messages recovered"
                    );
                }
                let spec = ScheduleSpec {
                    store: Some((store.clone(), *schedule_id)),
                    durable: true,
                    restored,
                };
                vhost.attach_schedule(&exchange, spec);
            }
            vhost.insert_exchange(exchange);
        }
    }
    for def in &recovered.definitions {
        if let Definition::DelayedLeftover {
            vhost: v,
            exchange,
            schedule_id,
        } = def
            && mine(v)
        {
            let restored = recovered.schedules.remove(schedule_id).unwrap_or(0);
            vhost.restore_leftover(store, exchange, *schedule_id, restored);
        }
    }
    for def in &recovered.definitions {
        if let Definition::Queue {
            vhost: v,
            name,
            id,
            auto_delete,
            arguments,
        } = def
            && mine(v)
        {
            let segments = recovered.queues.remove(id).unwrap_or_default();
            if let Some(reason) = recovered.failed.get(id) {
                // Its data stays in the store as it is, for inspection or repair.
                tracing::error!("queue '{name}' in vhost '{v}' not loaded: {reason}");
                continue;
            }
            let declaration = QueueDeclaration {
                durable: true,
                exclusive_owner: None,
                auto_delete: *auto_delete,
                arguments: arguments.clone(),
            };
            // The same parse as at declare: it passed then, so a failure means the stored
            // definition is damaged (or the rules changed since).
            let options = match declaration.parse(&names::queue(name, v)) {
                Ok(options) => options,
                Err(e) => {
                    tracing::error!("queue '{name}' in vhost '{v}' not loaded: {}", e.text);
                    continue;
                }
            };
            let count: usize = segments.iter().map(|s| s.ids.len()).sum();
            let persistence = Persistence {
                store: store.clone(),
                queue_id: *id,
            };
            let queue = Arc::new(
                Queue::new(
                    Arc::from(name.as_str()),
                    vhost.name.clone(),
                    options,
                    Some(persistence),
                    vhost.weak(),
                )
                .with_paging(Paging::new(store.clone(), page_threshold)),
            );
            if queue.is_stream() {
                match store.recover_stream(*id) {
                    Ok(recovered) => queue.restore_stream(recovered),
                    Err(e) => {
                        tracing::error!("stream '{name}' in vhost '{v}' not loaded: {e}");
                        continue;
                    }
                }
            }
            queue.restore(segments);
            if let Some(retrying) = recovered.schedules.remove(id) {
                tracing::info!(
                    "queue '{name}' in vhost '{v}': {retrying} messages waiting for a retry"
                );
                queue.restore_retries(retrying);
            }
            if count > 0 {
                tracing::info!("queue '{name}' in vhost '{v}': {count} messages recovered");
            }
            vhost.insert_queue(queue);
        }
    }
    for def in &recovered.definitions {
        if let Definition::Binding {
            vhost: v,
            source,
            to_exchange,
            destination,
            routing_key,
            arguments,
        } = def
            && mine(v)
        {
            let destination_exists = if *to_exchange {
                vhost.exchange(destination).is_some()
            } else {
                vhost.queue(destination).is_some()
            };
            let Some(source) = vhost.exchange(source) else {
                continue;
            };
            if !destination_exists {
                continue;
            }
            let name: Arc<str> = Arc::from(destination.as_str());
            let destination = if *to_exchange {
                Destination::Exchange(name)
            } else {
                Destination::Queue(name)
            };
            source.bind(Binding {
                destination,
                routing_key: routing_key.clone(),
                arguments: arguments.clone(),
            });
        }
    }
}

/// A message read back from the store; `None` (logged) when its record is damaged.
/// `exchange_name` carries the last exchange name so a batch shares one allocation.
pub fn message_from_store(
    id: u64,
    record: Result<StoredMessage, RecordError>,
    exchange_name: &mut Option<Arc<str>>,
) -> Option<Arc<Message>> {
    decode_stored(id, record, exchange_name, Some(id))
}

/// A stored message as the broker holds it (`what` names it in the log: a message id or a
/// stream offset); `store_id` is the id it keeps in the messages database, if any.
pub fn decode_stored(
    id: u64,
    record: Result<StoredMessage, RecordError>,
    exchange_name: &mut Option<Arc<str>>,
    store_id: Option<u64>,
) -> Option<Arc<Message>> {
    let stored = match record {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!("stored message {id} is damaged: {e}");
            return None;
        }
    };
    let (Some(routing_key), Ok(properties)) = (
        ShortStr::from_bytes(stored.routing_key),
        Properties::parse(stored.properties),
    ) else {
        tracing::error!("stored message {id} has an invalid routing key or properties");
        return None;
    };
    let exchange = match exchange_name {
        Some(name) if **name == *stored.exchange => name.clone(),
        _ => {
            let name: Arc<str> = Arc::from(stored.exchange.as_str());
            *exchange_name = Some(name.clone());
            name
        }
    };
    Some(Arc::new(Message {
        exchange,
        routing_key,
        properties,
        body: stored.body,
        store_id,
    }))
}
