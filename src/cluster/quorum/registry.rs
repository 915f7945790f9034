//! This node's quorum queue groups: started when a quorum queue's declare is applied here (or
//! when the node starts with the queue in its store), stopped and erased when its delete is
//! applied. Which group a queue has is kept in the log database beside the groups' logs, so a
//! restart finds it.
//!
//! Twice a second the registry also does each group's chores: a leader tells its group which
//! members have been out of contact long enough to count as down (their consumers' messages
//! go back to the queue), a node just restarted tells each group its earlier incarnation is
//! gone, and a member whose log has grown long while its queue holds little takes a snapshot
//! (the log behind it is purged).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use openraft::{BasicNode, Raft};
use parking_lot::Mutex;

use super::front::{LocalConsumers, QueueFront};
use super::machine::Command;
use super::merger::{Merger, endpoint};
use super::state_machine::QueueStateMachine;
use crate::broker::Broker;
use crate::broker::queue::Queue;
use crate::cluster::group_network::GroupNetwork;
use crate::cluster::groups::Groups;
use crate::cluster::log_db::{LogDb, Write, meta_key};
use crate::cluster::log_store::LogStore;
use crate::cluster::messages::Request;
use crate::cluster::peer_link::Peers;
use crate::cluster::status::{GroupStatus, group_status};
use crate::cluster::stored_snapshot::SNAPSHOT;
use crate::cluster::types::METADATA_GROUP;

/// The group whose small records map queues to their groups.
const QUEUE_MAP: u64 = u64::MAX;
/// A member out of contact this long counts as down.
const DOWN_AFTER: Duration = Duration::from_secs(3);
const TICK: Duration = Duration::from_millis(500);
const PING_TIMEOUT: Duration = Duration::from_secs(1);
/// A snapshot is taken when the log since the last one holds more entries than this and the
/// queue holds fewer messages than [`SNAPSHOT_BELOW_MESSAGES`].
const SNAPSHOT_AFTER_ENTRIES: u64 = 2000;
const SNAPSHOT_BELOW_MESSAGES: u32 = 100_000;
/// The log records openraft keeps or deletes for a group (log_store.rs).
const GROUP_RECORDS: [&str; 4] = ["vote", "committed", "purged", SNAPSHOT];

pub struct QuorumQueues {
    node: u64,
    incarnation: u64,
    members: BTreeMap<u64, BasicNode>,
    raft_config: Arc<openraft::Config>,
    commit_timeout: Duration,
    db: Arc<LogDb>,
    peers: Arc<Peers>,
    groups: Arc<Groups>,
    handle: tokio::runtime::Handle,
    fronts: Mutex<HashMap<u64, Arc<QueueFront>>>,
    /// When each other member last answered a ping.
    last_seen: Arc<Mutex<HashMap<u64, Instant>>>,
    /// Held while a queue joins its group (start-up and the metadata group may both ask).
    attaching: Mutex<()>,
    /// The (group, member) down reports made, until the member answers again.
    reported: Arc<Mutex<HashSet<(u64, u64)>>>,
}

fn map_key(vhost: &str, name: &str) -> Vec<u8> {
    meta_key(QUEUE_MAP, &format!("{vhost}\0{name}"))
}

impl QuorumQueues {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        node: u64,
        members: BTreeMap<u64, BasicNode>,
        raft_config: Arc<openraft::Config>,
        commit_timeout: Duration,
        db: Arc<LogDb>,
        peers: Arc<Peers>,
        groups: Arc<Groups>,
        handle: tokio::runtime::Handle,
    ) -> Arc<QuorumQueues> {
        let registry = Arc::new(QuorumQueues {
            node,
            incarnation: rand::random::<u64>().max(1),
            members,
            raft_config,
            commit_timeout,
            db,
            peers,
            groups,
            handle: handle.clone(),
            fronts: Mutex::new(HashMap::new()),
            attaching: Mutex::new(()),
            last_seen: Arc::default(),
            reported: Arc::default(),
        });
        let started = Instant::now();
        registry
            .last_seen
            .lock()
            .extend(registry.peers.others().into_iter().map(|m| (m, started)));
        let weak = Arc::downgrade(&registry);
        handle.spawn(async move {
            let mut ticks = tokio::time::interval(TICK);
            loop {
                ticks.tick().await;
                let Some(registry) = weak.upgrade() else {
                    return;
                };
                registry.tick();
            }
        });
        registry
    }

    /// A quorum queue just declared (its DeclareQueue applied here) joins group `group`
    /// (blocking), unless it asks for what replicated queues do not do yet.
    pub fn attach(self: &Arc<Self>, queue: &Arc<Queue>, group: u64) {
        if queue.replica().is_some() || !queue.is_quorum() {
            return;
        }
        if let Some(feature) = super::not_replicated_for(queue) {
            tracing::warn!(
                "cluster: quorum queue '{}' in vhost '{}' asks for {feature}, which replicated quorum queues do not apply yet: it is not replicated, each node has its own",
                queue.name,
                queue.vhost
            );
            return;
        }
        self.join(queue, group);
    }

    /// `queue` joins group `group` (blocking). Nothing happens if it already has a replica.
    fn join(self: &Arc<Self>, queue: &Arc<Queue>, group: u64) {
        let _one_at_a_time = self.attaching.lock();
        if queue.replica().is_some() {
            return;
        }
        let registry = self.clone();
        let started = {
            let queue = queue.clone();
            let work = async move { registry.start(&queue, group).await };
            match tokio::runtime::Handle::try_current() {
                Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(|| self.handle.block_on(work))
                }
                _ => self.handle.block_on(work),
            }
        };
        match started {
            Ok(front) => queue.attach_replica(front),
            Err(e) => tracing::error!(
                "cluster: quorum queue '{}' in vhost '{}' has no group: {e}",
                queue.name,
                queue.vhost
            ),
        }
    }

    /// Attaches every quorum queue `broker` loaded from its store to the group recorded for it.
    pub fn attach_loaded(self: &Arc<Self>, broker: &Broker) {
        for vhost in broker.vhosts() {
            for queue in vhost.queues() {
                if !queue.is_quorum() || queue.replica().is_some() {
                    continue;
                }
                match self
                    .db
                    .meta(QUEUE_MAP, &format!("{}\0{}", queue.vhost, queue.name))
                {
                    Ok(Some(bytes)) if bytes.len() == 8 => {
                        let mut group = [0u8; 8];
                        group.copy_from_slice(&bytes);
                        self.join(&queue, u64::from_be_bytes(group));
                    }
                    _ => tracing::warn!(
                        "cluster: quorum queue '{}' in vhost '{}' is not replicated (no group recorded for it): each node has its own",
                        queue.name,
                        queue.vhost
                    ),
                }
            }
        }
    }

    async fn start(
        self: Arc<Self>,
        queue: &Arc<Queue>,
        group: u64,
    ) -> Result<Arc<QueueFront>, String> {
        if let Some(front) = self.fronts.lock().get(&group) {
            return Ok(front.clone());
        }
        let fresh = self.db.meta(group, "vote")?.is_none();
        self.db
            .write(vec![Write::Put {
                key: map_key(&queue.vhost, &queue.name),
                value: group.to_be_bytes().to_vec(),
                meta: true,
            }])
            .await?;
        let local = LocalConsumers::new(self.node, self.incarnation);
        let (state_machine, shared) =
            QueueStateMachine::open(group, self.db.clone(), local.clone())?;
        let raft = Raft::new(
            self.node,
            self.raft_config.clone(),
            GroupNetwork::new(self.peers.clone(), group),
            LogStore::new(self.db.clone(), group),
            state_machine,
        )
        .await
        .map_err(|e| format!("cannot start Raft: {e}"))?;
        let merger = Merger::start(raft.clone(), self.commit_timeout);
        self.groups
            .insert(group, endpoint(raft.clone(), merger.clone()));
        let registry = Arc::downgrade(&self);
        let front = QueueFront::start(
            group,
            format!("queue '{}' in vhost '{}'", queue.name, queue.vhost),
            raft.clone(),
            shared,
            local,
            merger,
            self.peers.clone(),
            self.commit_timeout,
            Box::new(move |group| {
                if let Some(registry) = registry.upgrade() {
                    registry.stop(group);
                }
            }),
        );
        self.fronts.lock().insert(group, front.clone());
        if fresh {
            // The limits as declared, first in this node's batches (every member proposes the
            // same; the machine takes the last, which is the same).
            front.propose_then(Command::Configure(super::limits_of(queue)), |_| {});
        }
        if fresh {
            let members = self.members.clone();
            // The group's leaders spread over the members: each group prefers one.
            let ids: Vec<u64> = members.keys().copied().collect();
            let preferred = ids[(group % ids.len() as u64) as usize];
            let me = self.node;
            tokio::spawn(async move {
                // Every member offers the same membership; all but the first are refused.
                let _ = raft.initialize(members).await;
                if preferred == me {
                    let _ = raft.trigger().elect().await;
                }
            });
        }
        tracing::info!(
            "cluster: quorum queue '{}' in vhost '{}' is group {group}",
            queue.name,
            queue.vhost
        );
        Ok(front)
    }

    /// The queue of `group` was deleted here: its Raft stops and its log and records go.
    fn stop(&self, group: u64) {
        let Some(front) = self.fronts.lock().remove(&group) else {
            return;
        };
        self.groups.remove(group);
        let db = self.db.clone();
        self.handle.spawn(async move {
            let _ = front.raft.shutdown().await;
            let mut writes = vec![Write::DeleteEntries {
                group,
                from: 0,
                to: u64::MAX,
            }];
            writes.extend(GROUP_RECORDS.iter().map(|tag| Write::DeleteMeta {
                key: meta_key(group, tag),
            }));
            if let Err(e) = db.write(writes).await {
                tracing::warn!("cluster: the log of deleted group {group} stays: {e}");
            }
        });
    }

    /// Forgets the queue-to-group record of a deleted queue.
    pub fn forget(&self, vhost: &str, name: &str) {
        self.db.submit(
            vec![Write::DeleteMeta {
                key: map_key(vhost, name),
            }],
            |_| {},
        );
    }

    fn tick(&self) {
        let down = self.members_down();
        let fronts: Vec<Arc<QueueFront>> = self.fronts.lock().values().cloned().collect();
        for front in fronts {
            if front.is_stopped() {
                continue;
            }
            front.tick();
            let metrics = front.raft.metrics().borrow().clone();
            let leading = metrics.current_leader == Some(self.node);
            if leading {
                for node in &down {
                    if !self.reported.lock().insert((front.group(), *node)) {
                        continue;
                    }
                    tracing::info!(
                        "cluster: quorum queue group {}: node {node} is down, its consumers' messages return",
                        front.group()
                    );
                    let reported = self.reported.clone();
                    let (group, node) = (front.group(), *node);
                    front.propose_once(
                        Command::NodeDown {
                            node,
                            keep_incarnation: 0,
                        },
                        move |ok| {
                            if !ok {
                                // Told again at the next tick, if it is still down then.
                                reported.lock().remove(&(group, node));
                            }
                        },
                    );
                }
            }
            if !front.cleared_old_self.load(Ordering::Acquire) && metrics.current_leader.is_some() {
                front.cleared_old_self.store(true, Ordering::Release);
                let retry = front.clone();
                front.propose_then(
                    Command::NodeDown {
                        node: self.node,
                        keep_incarnation: self.incarnation,
                    },
                    move |ok| {
                        if !ok {
                            retry.cleared_old_self.store(false, Ordering::Release);
                        }
                    },
                );
            }
            let applied = metrics.last_applied.map_or(0, |id| id.index);
            let (snapshot_index, held) = {
                let shared = front.shared.lock();
                let m = &shared.machine;
                (shared.snapshot_index, m.ready_count() + m.unacked_count())
            };
            if applied.saturating_sub(snapshot_index) > SNAPSHOT_AFTER_ENTRIES
                && held < SNAPSHOT_BELOW_MESSAGES
                && metrics.snapshot.map_or(0, |s| s.index) < applied
            {
                let raft = front.raft.clone();
                self.handle.spawn(async move {
                    let _ = raft.trigger().snapshot().await;
                });
            }
        }
    }

    /// Members that have not answered a ping for [`DOWN_AFTER`]; pings them again (the
    /// answers come in while the next tick waits).
    fn members_down(&self) -> Vec<u64> {
        for member in self.peers.others() {
            let peers = self.peers.clone();
            let registry_seen = self.seen_handle();
            self.handle.spawn(async move {
                let ping = Request::WaitApplied {
                    group: METADATA_GROUP,
                    index: 0,
                    wait_ms: 0,
                };
                if peers.call(member, ping, PING_TIMEOUT).await.is_ok() {
                    registry_seen(member);
                }
            });
        }
        let now = Instant::now();
        let last_seen = self.last_seen.lock();
        let mut down = Vec::new();
        for (member, seen) in last_seen.iter() {
            if now.duration_since(*seen) >= DOWN_AFTER {
                down.push(*member);
            }
        }
        down
    }

    /// Records a member's answer (and that its next silence is news again).
    fn seen_handle(&self) -> impl Fn(u64) + Send + 'static {
        let last_seen = self.last_seen.clone();
        let reported = self.reported.clone();
        move |member| {
            last_seen.lock().insert(member, Instant::now());
            reported.lock().retain(|(_, m)| *m != member);
        }
    }

    /// Each quorum queue group's line of the status page.
    pub fn statuses(&self) -> Vec<GroupStatus> {
        let fronts: Vec<Arc<QueueFront>> = self.fronts.lock().values().cloned().collect();
        let mut statuses: Vec<GroupStatus> = fronts
            .iter()
            .map(|f| {
                let metrics = f.raft.metrics().borrow().clone();
                let entries = self.db.entry_count(f.group()).unwrap_or(0);
                group_status(f.label.clone(), &metrics, entries)
            })
            .collect();
        statuses.sort_by(|a, b| a.group.cmp(&b.group));
        statuses
    }

    pub async fn shutdown(&self) {
        let fronts: Vec<Arc<QueueFront>> = self.fronts.lock().drain().map(|(_, f)| f).collect();
        for front in fronts {
            let _ = front.raft.shutdown().await;
        }
    }
}
