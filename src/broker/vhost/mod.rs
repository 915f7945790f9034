//! One virtual host: its exchanges, queues and the bindings between them. The routing walk
//! that turns (exchange, routing keys, headers) into the set of target queues is in
//! `routing.rs`.
//!
//! Declare/delete/bind operations check reserved names here and equivalence in
//! `equivalence.rs`, with RabbitMQ's reply texts. Everything that involves more than one exchange or queue (cascading deletes,
//! auto-delete) lives here so `Exchange` and `Queue` stay unaware of each other.
//!
//! Changes to the topology (declare, delete, bind, unbind) are serialised by one mutex per
//! vhost, `topology`, which publishing never takes: a change is checked and its definition
//! written to the store (an fsync) under that mutex alone, and the exchange and queue maps that
//! every publish reads are write-locked only for the insert or removal itself.

use std::collections::HashMap;

// ahash: several times faster than SipHash on these per-publish lookups, still keyed randomly
// per process so clients cannot force collisions.
use ahash::RandomState;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use amq_protocol::types::FieldTable;
use parking_lot::{Mutex, RwLock};
use warren_protocol::AmqpError;

mod bindings;
mod equivalence;
mod listing;
mod policies;
mod replicated;
mod routing;
mod settings;

pub use listing::ListedBinding;
pub use routing::RouteScratch;
pub use settings::{VhostLimits, VhostSettings};

use super::churn::Churn;
use super::deadlines::Deadlines;
use super::delayed::{self, Leftovers, Schedule, ScheduleSpec, Target};
use super::durable::Durability;
use super::exchange::{Destination, Exchange, ExchangeKind, ExchangeOptions};
use super::names;
use super::policy::VhostPolicies;
use super::publish::DirectReplies;
use super::queue::{Queue, QueueDeclaration};
use super::replication::Replicator;
use crate::store::Store;

pub struct VHost {
    pub name: Arc<str>,
    exchanges: RwLock<HashMap<Arc<str>, Arc<Exchange>, RandomState>>,
    queues: RwLock<HashMap<Arc<str>, Arc<Queue>, RandomState>>,
    /// Held by whoever changes exchanges, queues or bindings (never by publishing), from the
    /// checks through the store write to the map update, so those need no map lock meanwhile.
    topology: Mutex<()>,
    /// Where durable definitions and messages go; `None` keeps everything in memory.
    durability: Option<Durability>,
    /// Direct reply-to addresses (shared by every vhost, as RabbitMQ's are node-wide).
    pub(crate) replies: Arc<DirectReplies>,
    /// Where queues register their deadlines (the broker's, run by housekeeping).
    deadlines: Arc<Deadlines<Queue>>,
    /// Where delayed exchanges' schedules register theirs (the broker's, run by delayed/).
    delays: Arc<Deadlines<Schedule>>,
    /// Pending half messages (broker/half.rs), made on first use.
    pub(crate) halves: OnceLock<Arc<Schedule>>,
    /// What deleted delayed exchanges still hold (delayed/leftovers.rs).
    pub(crate) leftovers: Leftovers,
    /// The broker's churn counters (queues created, declared, deleted).
    pub churn: Arc<Churn>,
    me: Weak<VHost>,
    /// Bumped after an exchange or queue leaves the maps: memos of lookups (a channel's
    /// `Publisher`) are valid while it is unchanged.
    generation: AtomicU64,
    /// Description, tags and limits.
    settings: RwLock<VhostSettings>,
    /// Policies and operator policies (policies.rs), replaced whole on a change.
    policies: RwLock<Arc<VhostPolicies>>,
    /// Set when the vhost is deleted: its connections are being closed, and nothing they still
    /// send may store a definition that would bring it back at the next boot.
    deleted: std::sync::atomic::AtomicBool,
    /// On a cluster node: where changes to exchanges, queues and bindings go (replicated.rs).
    replicator: OnceLock<Arc<dyn Replicator>>,
}

/// Exchanges every vhost has, as in RabbitMQ.
const STANDARD_EXCHANGES: [(&str, ExchangeKind); 6] = [
    ("", ExchangeKind::Direct),
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

/// The outcome of queue.declare.
pub struct DeclaredQueue {
    pub queue: Arc<Queue>,
    pub message_count: u32,
    pub consumer_count: u32,
}

impl VHost {
    pub fn new(
        name: &str,
        durability: Option<Durability>,
        replies: Arc<DirectReplies>,
        deadlines: Arc<Deadlines<Queue>>,
        delays: Arc<Deadlines<Schedule>>,
        churn: Arc<Churn>,
    ) -> Arc<Self> {
        let mut exchanges = HashMap::default();
        for (ex, kind) in STANDARD_EXCHANGES {
            let options = ExchangeOptions {
                kind,
                durable: true,
                auto_delete: false,
                internal: false,
                arguments: FieldTable::default(),
            };
            exchanges.insert(
                Arc::from(ex),
                Arc::new(Exchange::new(Arc::from(ex), options)),
            );
        }
        Arc::new_cyclic(|me| VHost {
            name: Arc::from(name),
            exchanges: RwLock::new(exchanges),
            queues: RwLock::new(HashMap::default()),
            topology: Mutex::new(()),
            durability,
            replies,
            deadlines,
            delays,
            halves: OnceLock::new(),
            leftovers: Leftovers::default(),
            churn,
            me: me.clone(),
            generation: AtomicU64::new(0),
            settings: RwLock::new(VhostSettings::default()),
            policies: RwLock::new(Arc::default()),
            deleted: std::sync::atomic::AtomicBool::new(false),
            replicator: OnceLock::new(),
        })
    }

    /// This vhost, for queues that route dead letters through it.
    pub fn weak(&self) -> Weak<VHost> {
        self.me.clone()
    }

    pub fn store(&self) -> Option<&Arc<Store>> {
        self.durability.as_ref().map(|d| &d.store)
    }

    /// Adds a recovered exchange (no name checks: it was checked when first declared).
    pub(super) fn insert_exchange(&self, exchange: Arc<Exchange>) {
        self.apply_current_policies_to_exchange(&exchange);
        self.exchanges
            .write()
            .insert(exchange.name.clone(), exchange);
    }

    /// Gives a delayed exchange its schedule (a new one, or what the store holds for it).
    pub(crate) fn attach_schedule(&self, exchange: &Arc<Exchange>, spec: ScheduleSpec) {
        let target = Target::Exchange(exchange.name.clone());
        let schedule = Schedule::new(spec, target, self.weak(), self.delays.clone());
        exchange.attach_schedule(schedule);
    }

    /// A schedule whose due messages go to `target` (a queue's retries, the vhost's half
    /// messages).
    pub(crate) fn schedule_for(&self, target: Target, spec: ScheduleSpec) -> Arc<Schedule> {
        Schedule::new(spec, target, self.weak(), self.delays.clone())
    }

    /// The timer this vhost's queues register their deadlines with.
    pub(crate) fn deadlines(&self) -> &Deadlines<Queue> {
        &self.deadlines
    }

    /// Adds a new or recovered queue, and registers its first deadline (x-expires).
    pub(super) fn insert_queue(&self, queue: Arc<Queue>) {
        self.apply_current_policies_to_queue(&queue);
        self.queues
            .write()
            .insert(queue.name.clone(), queue.clone());
        queue.schedule();
    }

    /// A binding is durable when both its ends are.
    fn is_durable_binding(&self, source: &Exchange, dest: &Destination) -> bool {
        source.options.durable
            && match dest {
                Destination::Queue(q) => self.queue(q).is_some_and(|q| q.persistence.is_some()),
                Destination::Exchange(e) => self.exchange(e).is_some_and(|e| e.options.durable),
            }
    }

    /// Changes whenever an exchange or queue has left this vhost.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn exchange(&self, name: &str) -> Option<Arc<Exchange>> {
        self.exchanges.read().get(name).cloned()
    }

    pub fn queues(&self) -> Vec<Arc<Queue>> {
        self.queues.read().values().cloned().collect()
    }

    pub fn queue(&self, name: &str) -> Option<Arc<Queue>> {
        self.queues.read().get(name).cloned()
    }

    pub fn no_exchange(&self, name: &str) -> AmqpError {
        AmqpError::not_found(format_args!("no {}", names::exchange(name, &self.name)))
    }

    pub fn no_queue(&self, name: &str) -> AmqpError {
        AmqpError::not_found(format_args!("no {}", names::queue(name, &self.name)))
    }

    /// The exchange for publishing and binding; 404 if missing (on a cluster node, missing
    /// once this node has caught up with the cluster).
    pub fn existing_exchange(&self, name: &str) -> Result<Arc<Exchange>, AmqpError> {
        self.synced_lookup(|| self.exchange(name))
            .ok_or_else(|| self.no_exchange(name))
    }

    /// The queue for a connection's operation: 404 if missing (as above), 405 if exclusive
    /// to another.
    pub fn existing_queue(&self, name: &str, connection_id: u64) -> Result<Arc<Queue>, AmqpError> {
        let queue = self
            .synced_lookup(|| self.queue(name))
            .ok_or_else(|| self.no_queue(name))?;
        queue.check_access(connection_id)?;
        Ok(queue)
    }

    /// exchange.declare with passive set: only checks that the exchange exists (whatever the
    /// type and flags say), and, as RabbitMQ, refuses the default exchange.
    pub fn passive_declare_exchange(&self, name: &str) -> Result<(), AmqpError> {
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        self.existing_exchange(name).map(|_| ())
    }

    /// exchange.declare (not passive) made on this node alone; [`VHost::declare_exchange`]
    /// replicates it on a cluster node.
    pub(crate) fn declare_exchange_here(
        &self,
        name: &str,
        options: ExchangeOptions,
    ) -> Result<(), AmqpError> {
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        // Redeclaring writes nothing: no need to wait for other declares.
        if let Some(existing) = self.exchange(name) {
            return self.check_exchange_equivalence(&existing, &options);
        }
        let _topology = self.topology.lock();
        self.refuse_if_deleted()?;
        if let Some(existing) = self.exchange(name) {
            return self.check_exchange_equivalence(&existing, &options);
        }
        // As RabbitMQ: the reserved prefix only stops creating, not redeclaring amq.direct etc.
        if name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format_args!(
                "exchange name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        if options.kind == ExchangeKind::DelayedMessage {
            delayed::check_arguments(&options.arguments)?;
        }
        let exchange = Arc::new(Exchange::new(Arc::from(name), options));
        if exchange.kind() == ExchangeKind::DelayedMessage {
            let spec = ScheduleSpec {
                store: self
                    .durability
                    .as_ref()
                    .map(|d| (d.store.clone(), d.store.next_queue_id())),
                durable: exchange.options.durable,
                restored: 0,
            };
            self.attach_schedule(&exchange, spec);
        }
        if let Some(d) = &self.durability
            && exchange.options.durable
        {
            d.save_exchange(&self.name, &exchange)?;
        }
        self.insert_exchange(exchange);
        Ok(())
    }

    /// exchange.delete on this node alone (replicated.rs replicates it).
    pub(crate) fn delete_exchange_here(
        &self,
        name: &str,
        if_unused: bool,
    ) -> Result<(), AmqpError> {
        if name.is_empty() {
            return Err(default_exchange_refused());
        }
        // Held from the if-unused check to the removal: nothing binds to it meanwhile.
        let _topology = self.topology.lock();
        // RabbitMQ refuses by name alone: also an amq.* exchange that does not exist.
        if name.starts_with("amq.") {
            return Err(AmqpError::access_refused(format_args!(
                "deletion of system {} not allowed",
                names::exchange(name, &self.name)
            )));
        }
        let Some(exchange) = self.exchange(name) else {
            return Ok(());
        };
        if if_unused && exchange.has_bindings() {
            return Err(AmqpError::precondition(format_args!(
                "{} in use",
                names::exchange(name, &self.name)
            )));
        }
        self.remove_exchange(&exchange);
        Ok(())
    }

    /// Caller holds `topology`.
    fn remove_exchange(&self, exchange: &Arc<Exchange>) {
        self.remove_exchanges(vec![exchange.clone()]);
    }

    /// Removes `doomed` exchanges and, in turn, the auto-delete exchanges that removing them
    /// leaves unbound, however long that chain is (a loop, not a recursion per exchange).
    /// Caller holds `topology`.
    fn remove_exchanges(&self, mut doomed: Vec<Arc<Exchange>>) {
        debug_assert!(self.topology.is_locked());
        while let Some(exchange) = doomed.pop() {
            let removed = {
                let mut exchanges = self.exchanges.write();
                match exchanges.get(&exchange.name) {
                    Some(e) if Arc::ptr_eq(e, &exchange) => {
                        exchanges.remove(&exchange.name).is_some()
                    }
                    _ => false,
                }
            };
            if !removed {
                continue;
            }
            self.generation.fetch_add(1, Ordering::Release);
            // What a delayed exchange holds is recorded apart before its definition goes.
            if let Some(schedule) = exchange.schedule() {
                self.leave_schedule(&exchange, schedule);
            }
            if let Some(d) = &self.durability
                && exchange.options.durable
            {
                d.forget_exchange(&self.name, &exchange);
            }
            self.unbind_from_sources(&Destination::Exchange(exchange.name.clone()), &mut doomed);
        }
    }

    /// Removes every binding leading to `dest`, then deletes auto-delete exchanges left unbound.
    /// Caller holds `topology`.
    fn unbind_everywhere(&self, dest: &Destination) {
        let mut doomed = Vec::new();
        self.unbind_from_sources(dest, &mut doomed);
        self.remove_exchanges(doomed);
    }

    /// Removes every binding leading to `dest`; auto-delete sources left without bindings go
    /// to `doomed`. Caller holds `topology`.
    fn unbind_from_sources(&self, dest: &Destination, doomed: &mut Vec<Arc<Exchange>>) {
        debug_assert!(self.topology.is_locked());
        let sources: Vec<Arc<Exchange>> = self.exchanges.read().values().cloned().collect();
        for source in sources {
            let removed = source.unbind_destination(dest);
            if removed.is_empty() {
                continue;
            }
            if let Some(d) = &self.durability
                && source.options.durable
            {
                d.forget_bindings(&self.name, &source.name, &removed);
            }
            if source.options.auto_delete && !source.has_bindings() {
                doomed.push(source);
            }
        }
    }

    /// Caller holds `topology`.
    fn maybe_auto_delete_exchange(&self, exchange: &Arc<Exchange>) {
        if exchange.options.auto_delete && !exchange.has_bindings() {
            self.remove_exchange(exchange);
        }
    }

    pub fn declare_queue(
        &self,
        name: &str,
        options: QueueDeclaration,
        passive: bool,
        connection_id: u64,
    ) -> Result<DeclaredQueue, AmqpError> {
        let declared = |queue: Arc<Queue>| {
            let (message_count, consumer_count) = queue.counts();
            DeclaredQueue {
                queue,
                message_count,
                consumer_count,
            }
        };
        if passive {
            let queue = self.existing_queue(name, connection_id)?;
            queue.touch();
            return Ok(declared(queue));
        }
        let (name, generated) = if name.is_empty() {
            (names::queue_name(), true)
        } else {
            (name.to_string(), false)
        };
        self.declare_queue_named(name, generated, options, connection_id)
            .inspect(|_| Churn::bump(&self.churn.queue_declared))
            .map(declared)
    }

    /// Declares a queue whose name has already been checked or generated, on this node alone
    /// (replicated.rs replicates it).
    pub(crate) fn declare_queue_here(
        &self,
        name: String,
        generated: bool,
        options: QueueDeclaration,
        connection_id: u64,
    ) -> Result<Arc<Queue>, AmqpError> {
        // Redeclaring writes nothing: no need to wait for other declares.
        if let Some(existing) = self.queue(&name) {
            return self.redeclared_queue(existing, &options, connection_id);
        }
        let _topology = self.topology.lock();
        self.refuse_if_deleted()?;
        if let Some(existing) = self.queue(&name) {
            return self.redeclared_queue(existing, &options, connection_id);
        }
        if name.starts_with("amq.") && !generated {
            return Err(AmqpError::access_refused(format_args!(
                "queue name '{name}' contains reserved prefix 'amq.*'"
            )));
        }
        self.check_queue_limit(&name)?;
        let options = options.parse(&names::queue(&name, &self.name))?;
        // Exclusive queues die with their connection: never worth storing. The store commits
        // with no map lock held: publishes to other queues go on meanwhile.
        let persistence = match &self.durability {
            Some(d) if options.durable && options.exclusive_owner.is_none() => {
                Some(d.create_queue(&self.name, &name, &options)?)
            }
            _ => None,
        };
        let name: Arc<str> = Arc::from(name);
        let mut queue = Queue::new(
            name.clone(),
            self.name.clone(),
            options,
            persistence,
            self.weak(),
        );
        if let Some(d) = &self.durability {
            queue = queue.with_paging(d.paging());
        }
        let queue = Arc::new(queue);
        self.insert_queue(queue.clone());
        Churn::bump(&self.churn.queue_created);
        Ok(queue)
    }

    /// queue.declare of a queue that exists: allowed if the connection may use it and the
    /// declaration is equivalent.
    fn redeclared_queue(
        &self,
        existing: Arc<Queue>,
        options: &QueueDeclaration,
        connection_id: u64,
    ) -> Result<Arc<Queue>, AmqpError> {
        existing.check_access(connection_id)?;
        self.check_queue_equivalence(&existing, options)?;
        existing.touch();
        Ok(existing)
    }

    /// queue.delete: returns the number of ready messages dropped.
    pub fn delete_queue(
        &self,
        name: &str,
        if_unused: bool,
        if_empty: bool,
        connection_id: u64,
    ) -> Result<u32, AmqpError> {
        let Some(queue) = self.queue(name) else {
            return Ok(0);
        };
        queue.check_access(connection_id)?;
        let (messages, consumers) = queue.counts();
        if if_unused && consumers > 0 {
            return Err(AmqpError::precondition(format_args!(
                "{} in use",
                names::queue(name, &self.name)
            )));
        }
        if if_empty && messages > 0 {
            return Err(AmqpError::precondition(format_args!(
                "{} not empty",
                names::queue(name, &self.name)
            )));
        }
        self.remove_queue_everywhere(&queue)
    }

    /// The vhost is being deleted: every queue goes (consumers cancelled, messages and their
    /// stored index dropped). Its stored definitions are the caller's to delete, in one commit.
    pub fn remove_all_queues(&self) {
        for queue in self.queues() {
            self.remove_queue(&queue);
        }
    }

    /// queue.declare of an empty name, after the caller generated the name (to check
    /// permissions on it first, as RabbitMQ does).
    pub fn declare_server_named_queue(
        &self,
        name: String,
        options: QueueDeclaration,
        connection_id: u64,
    ) -> Result<DeclaredQueue, AmqpError> {
        let queue = self.declare_queue_named(name, true, options, connection_id)?;
        Churn::bump(&self.churn.queue_declared);
        let (message_count, consumer_count) = queue.counts();
        Ok(DeclaredQueue {
            queue,
            message_count,
            consumer_count,
        })
    }

    /// Deletes a queue unconditionally: unbinds it, cancels its consumers (with notification),
    /// drops its messages. Returns the number of ready messages dropped.
    pub fn remove_queue(&self, queue: &Arc<Queue>) -> u32 {
        let _topology = self.topology.lock();
        {
            let mut queues = self.queues.write();
            match queues.get(&queue.name) {
                Some(q) if Arc::ptr_eq(q, queue) => {
                    queues.remove(&queue.name);
                }
                _ => return 0,
            }
        }
        self.generation.fetch_add(1, Ordering::Release);
        Churn::bump(&self.churn.queue_deleted);
        if let (Some(d), Some(p)) = (&self.durability, &queue.persistence) {
            d.forget_queue(&self.name, queue, p);
        }
        let (consumers, dropped) = queue.mark_deleted();
        self.unbind_everywhere(&Destination::Queue(queue.name.clone()));
        for consumer in consumers {
            consumer.channel.cancelled_by_broker(&consumer.tag);
        }
        dropped
    }
}

use bindings::default_exchange_refused;

#[cfg(test)]
mod routing_tests;
#[cfg(test)]
mod topology_tests;
