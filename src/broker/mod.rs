//! The broker core: vhosts with their exchanges, bindings and queues, and the consumers attached
//! to queues. No sockets here — the server layer calls in with typed operations and implements
//! [`consumer::DeliveryTarget`] for deliveries going out.

pub mod arguments_json;
pub mod churn;
pub mod clock;
pub mod connections;
pub mod consumer;
pub mod deadlines;
pub mod delayed;
pub mod durable;
pub mod exchange;
pub mod field_display;
pub mod half;
pub mod housekeeping;
pub mod message;
pub mod message_counts;
pub mod names;
pub mod policy;
pub mod publish;
pub mod queue;
pub mod replication;
pub mod sender_selected;
pub mod tenancy;
pub mod vhost;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

use crate::auth::Auth;
use crate::config::Config;
use crate::store::{Recovered, Store};
use connections::Connections;
use deadlines::Deadlines;
use durable::Durability;
use queue::Queue;
use vhost::VHost;

/// Everything the broker holds: vhosts, users and their permissions, open connections.
pub struct Broker {
    vhosts: RwLock<HashMap<String, Arc<VHost>>>,
    /// Users, permissions, topic permissions; changed through [`tenancy`] (which persists).
    pub auth: Auth,
    /// Open connections (limits, and closing those of a deleted vhost or user).
    pub connections: Arc<Connections>,
    /// Largest message body accepted (406 beyond it).
    pub max_message_size: u64,
    /// Where durable state goes; `None` only for an in-memory broker (unit tests, fuzzing).
    store: Option<Arc<Store>>,
    page_threshold: usize,
    /// Direct reply-to addresses (`amq.rabbitmq.reply-to.<key>`) and the channels behind them.
    pub replies: Arc<publish::DirectReplies>,
    /// The queues' deadlines (message TTL at rest, x-expires), run by [`housekeeping`].
    deadlines: Arc<Deadlines<Queue>>,
    /// The delayed exchanges' schedules, run by [`delayed::run`].
    delays: Arc<Deadlines<delayed::Schedule>>,
    /// Connections, channels and queues created and gone.
    pub churn: Arc<churn::Churn>,
    /// Set on a cluster node once its cluster runs: changes to definitions go through it.
    replicator: OnceLock<Arc<dyn replication::Replicator>>,
}

impl Broker {
    /// An in-memory broker (unit tests, fuzzing) with vhost `/`; `auth` says who may log in.
    pub fn new(auth: Auth, max_message_size: u64, page_threshold: usize) -> Self {
        let broker = Broker::empty(auth, max_message_size, None, page_threshold);
        broker.create_vhost("/");
        broker
    }

    fn empty(
        auth: Auth,
        max_message_size: u64,
        store: Option<Arc<Store>>,
        page_threshold: usize,
    ) -> Self {
        let churn = Arc::new(churn::Churn::default());
        Broker {
            vhosts: RwLock::new(HashMap::new()),
            auth,
            connections: Arc::new(Connections::new(churn.clone())),
            max_message_size,
            store,
            page_threshold,
            replies: Arc::new(publish::DirectReplies::default()),
            deadlines: Arc::new(Deadlines::default()),
            delays: Arc::new(Deadlines::default()),
            churn,
            replicator: OnceLock::new(),
        }
    }

    /// A vhost with only its standard exchanges, in memory (callers persist it).
    pub(crate) fn create_vhost(&self, name: &str) -> Arc<VHost> {
        let durability = self.store.clone().map(|store| Durability {
            store,
            page_threshold: self.page_threshold,
        });
        let vhost = VHost::new(
            name,
            durability,
            self.replies.clone(),
            self.deadlines.clone(),
            self.delays.clone(),
            self.churn.clone(),
        );
        if let Some(replicator) = self.replicator.get() {
            vhost.install_replicator(replicator.clone());
        }
        self.vhosts.write().insert(name.to_string(), vhost.clone());
        vhost
    }

    /// From now on, changes to definitions (on this broker and every vhost, present and
    /// future) go through `replicator`. Set once, when the node's cluster has started.
    pub fn install_replicator(&self, replicator: Arc<dyn replication::Replicator>) {
        if self.replicator.set(replicator.clone()).is_err() {
            return;
        }
        for vhost in self.vhosts() {
            vhost.install_replicator(replicator.clone());
        }
    }

    /// The cluster's replicator, on a cluster node.
    pub fn replicator(&self) -> Option<&Arc<dyn replication::Replicator>> {
        self.replicator.get()
    }

    /// The broker of a data directory: opens its store (creating the directory if needed;
    /// refused if another broker holds it), rebuilds vhosts, users and permissions from what
    /// it holds, and on the first boot creates the configured defaults.
    pub fn open(config: &Config) -> Result<Broker, String> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create data dir {}: {e}", dir.display()))?;
        let map_size = usize::try_from(config.store_map_size_bytes).unwrap_or(usize::MAX);
        let (store, recovered) = Store::open(dir, map_size)
            .map_err(|e| format!("cannot open the store in {}: {e}", dir.display()))?;
        let broker = Broker::empty(
            Auth::new(config.loopback_users.clone()),
            config.max_message_size,
            Some(store),
            config.queue_page_threshold,
        );
        tenancy::boot::restore(&broker, &recovered);
        if !recovered.seeded {
            tenancy::boot::seed_defaults(&broker, config)?;
        }
        broker.restore(recovered);
        // As RabbitMQ: imported at every boot, after recovery, adding to what exists.
        if let Some(path) = &config.load_definitions {
            let imported = tenancy::definitions_file::import_file(&broker, path)?;
            tracing::info!("imported definitions from {}: {imported:?}", path.display());
        }
        Ok(broker)
    }

    /// True while the store's commits fail (the disk alarm listens); `None` in memory.
    pub fn store_failing(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        self.store.as_ref().map(|store| store.watch_failing())
    }

    /// Commits what is still pending and closes the store. Blocks until the store's writer
    /// has finished: call it off the async workers, once nothing publishes any more.
    pub fn close_store(&self) {
        if let Some(store) = &self.store {
            store.shutdown();
        }
    }

    /// The store, for tests that inject faults or count records.
    pub fn store(&self) -> Option<&Arc<Store>> {
        self.store.as_ref()
    }

    /// Rebuilds vhosts from what the store recovered at start-up; index entries of queues that
    /// no longer exist are dropped, as are schedules no durable delayed exchange names (a
    /// non-durable one's, or a deleted one's).
    fn restore(&self, mut recovered: Recovered) {
        let Some(store) = &self.store else { return };
        for vhost in self.vhosts.read().values() {
            durable::restore(vhost, store, &mut recovered, self.page_threshold);
            vhost.restore_halves(&mut recovered.schedules);
        }
        for (queue_id, _) in recovered.queues.drain() {
            store.drop_queue(queue_id);
        }
        for (schedule_id, _) in recovered.schedules.drain() {
            store.drop_schedule(schedule_id);
        }
    }

    pub fn vhosts(&self) -> Vec<Arc<VHost>> {
        self.vhosts.read().values().cloned().collect()
    }

    pub fn vhost(&self, name: &str) -> Option<Arc<VHost>> {
        self.vhosts.read().get(name).cloned()
    }
}
