//! A running cluster node: its own tokio runtime (Raft's tasks never wait behind client
//! connections, and a broker operation may block on a commit without starving them), the
//! metadata group's Raft, the peer listener that serves other members, and the
//! [`Replicator`] the broker hands its changes to.
//!
//! A change is proposed to the metadata group's leader (forwarded over a peer link when that
//! is another node), then this node waits until it has applied it itself, and until every
//! member it can reach has too, so a declare's -ok means "visible on every node in contact".

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::{BasicNode, Raft, SnapshotPolicy};
use parking_lot::Mutex;
use tokio::net::TcpListener;

use super::config::ClusterConfig;
use super::group_network::GroupNetwork;
use super::groups::Groups;
use super::log_db::LogDb;
use super::log_store::LogStore;
use super::messages::{Request, Response};
use super::peer_link::{self, Peers};
use super::proposing::propose_anywhere;
use super::quorum::registry::QuorumQueues;
use super::state_machine::MetaStateMachine;
use super::status::{ClusterStatus, status_of};
use super::types::{METADATA_GROUP, MetaRaft};
use crate::broker::Broker;
use crate::broker::replication::{Change, NotReplicated, Outcome, Replicator};

/// How long a member this node has a link to may take to apply a change before the -ok goes
/// out without it; one it has no link to gets much less (it is probably down or cut off).
const LINKED_APPLY_WAIT: Duration = Duration::from_secs(2);
const UNLINKED_APPLY_WAIT: Duration = Duration::from_millis(300);

pub struct ClusterNode {
    pub config: ClusterConfig,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    pub raft: MetaRaft,
    peers: Arc<Peers>,
    db: Arc<LogDb>,
    /// This node's quorum queue groups.
    pub quorum: Arc<QuorumQueues>,
}

impl ClusterNode {
    /// Starts this node's part of the cluster on `broker`, whose changes go through it from
    /// now on. The first start of every member forms the cluster (all members voters).
    pub async fn start(
        config: &ClusterConfig,
        data_dir: &Path,
        broker: Arc<Broker>,
    ) -> Result<Arc<ClusterNode>, String> {
        config.validate()?;
        if config.cookie == super::config::ClusterConfig::default().cookie {
            tracing::warn!(
                "cluster: the cookie is the default one; set [cluster] cookie to a secret of your own"
            );
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("warren-cluster")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the cluster runtime: {e}"))?;
        let handle = runtime.handle().clone();
        let db = LogDb::open(&data_dir.join("cluster"))?;
        let raft_config = openraft::Config {
            cluster_name: "warren".into(),
            heartbeat_interval: config.heartbeat_ms,
            election_timeout_min: config.election_timeout_min_ms,
            election_timeout_max: config.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            max_in_snapshot_log_to_keep: config.log_kept_behind_snapshot,
            ..Default::default()
        };
        // Quorum queues take snapshots when their queue is short (registry.rs), not by count.
        let queue_raft_config = openraft::Config {
            snapshot_policy: SnapshotPolicy::Never,
            ..raft_config.clone()
        }
        .validate()
        .map_err(|e| format!("cluster: {e}"))?;
        let raft_config = raft_config
            .validate()
            .map_err(|e| format!("cluster: {e}"))?;
        let peers = Arc::new(Peers::new(
            config.node,
            config.cookie.clone(),
            config.peers.clone(),
        ));
        let groups = Arc::new(Groups::default());
        let members: BTreeMap<u64, BasicNode> = config
            .peers
            .iter()
            .map(|(id, address)| (*id, BasicNode::new(address)))
            .collect();
        let quorum = QuorumQueues::new(
            config.node,
            members.clone(),
            Arc::new(queue_raft_config),
            Duration::from_millis(config.commit_timeout_ms),
            db.clone(),
            peers.clone(),
            groups.clone(),
            handle.clone(),
        );
        let state_machine = MetaStateMachine::open(broker.clone(), db.clone(), quorum.clone())?;
        let network = GroupNetwork::new(peers.clone(), METADATA_GROUP);
        let log_store = LogStore::new(db.clone(), METADATA_GROUP);
        let node_id = config.node;
        let raft = handle
            .spawn(async move {
                Raft::new(
                    node_id,
                    Arc::new(raft_config),
                    network,
                    log_store,
                    state_machine,
                )
                .await
            })
            .await
            .map_err(|e| format!("cluster: {e}"))?
            .map_err(|e| format!("cluster: cannot start Raft: {e}"))?;
        // Quorum queues this node's store holds rejoin their groups before anyone uses them.
        let loading = quorum.clone();
        let loaded_broker = broker.clone();
        handle
            .spawn_blocking(move || loading.attach_loaded(&loaded_broker))
            .await
            .map_err(|e| format!("cluster: {e}"))?;
        let address = config.own_address().unwrap_or_default().to_string();
        let listener = handle
            .spawn(async move {
                TcpListener::bind(&address)
                    .await
                    .map_err(|e| format!("cluster: cannot listen on {address}: {e}"))
            })
            .await
            .map_err(|e| format!("cluster: {e}"))??;
        groups.insert(METADATA_GROUP, Arc::new(raft.clone()));
        let serving = groups.clone();
        handle.spawn(peer_link::serve(
            listener,
            config.cookie.clone(),
            move |request| {
                let groups = serving.clone();
                async move { groups.serve(request).await }
            },
        ));
        let forming = raft.clone();
        handle.spawn(async move {
            // Every member offers the same membership; where the group already has a log
            // (formed before, or by another member first) this is refused, harmlessly.
            match forming.initialize(members).await {
                Ok(()) => tracing::info!("cluster: formed the metadata group"),
                Err(e) => tracing::debug!("cluster: metadata group already formed ({e})"),
            }
        });
        let node = Arc::new(ClusterNode {
            config: config.clone(),
            runtime: Mutex::new(Some(runtime)),
            handle,
            raft,
            peers,
            db,
            quorum,
        });
        broker.install_replicator(Arc::new(NodeReplicator(node.clone())));
        tracing::info!(
            "cluster: node {} of {:?}, peers listening on {}",
            config.node,
            config.peers.keys().collect::<Vec<_>>(),
            config.own_address().unwrap_or_default()
        );
        Ok(node)
    }

    /// Members, leader, term and each member's lag, as `warren ctl cluster_status` shows them.
    pub fn status(&self) -> ClusterStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let log_entries = self.db.entry_count(METADATA_GROUP).unwrap_or(0);
        let mut status = status_of(&self.config, &metrics, log_entries, &self.peers.linked());
        status.groups.extend(self.quorum.statuses());
        status
    }

    /// Stops Raft and the node's runtime (the broker's shutdown).
    pub async fn shutdown(&self) {
        let quorum = self.quorum.clone();
        let _ = self
            .handle
            .spawn(async move { quorum.shutdown().await })
            .await;
        let raft = self.raft.clone();
        let _ = self
            .handle
            .spawn(async move { raft.shutdown().await })
            .await;
        if let Some(runtime) = self.runtime.lock().take() {
            runtime.shutdown_background();
        }
    }

    /// Proposes `change`, waits for it to be applied here and on the members in contact.
    async fn propose(&self, change: Change) -> Result<Outcome, NotReplicated> {
        let timeout = Duration::from_millis(self.config.commit_timeout_ms);
        let deadline = Instant::now() + timeout;
        let committed = propose_anywhere(&self.raft, &self.peers, METADATA_GROUP, change, deadline)
            .await
            .map_err(|why| {
                NotReplicated(format!(
                    "cluster: the change was not committed within {timeout:?} ({why})"
                ))
            })?;
        self.wait_applied_everywhere(committed.index, deadline)
            .await?;
        Ok(committed.outcome)
    }

    /// Waits until this node has applied what the metadata group had committed when asked
    /// (the leader's read index, fetched from it when it is another node).
    async fn sync(&self) -> Result<(), NotReplicated> {
        let timeout = Duration::from_millis(self.config.commit_timeout_ms);
        let deadline = Instant::now() + timeout;
        let failed =
            |why: String| NotReplicated(format!("cluster: cannot sync with the leader: {why}"));
        let index = loop {
            let leader = self.raft.metrics().borrow().current_leader;
            let read = match leader {
                Some(leader) if leader == self.config.node => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    return match tokio::time::timeout(left, self.raft.ensure_linearizable()).await {
                        Ok(result) => result.map(|_| ()).map_err(|e| failed(e.to_string())),
                        Err(_) => Err(failed("no majority answered the leader".into())),
                    };
                }
                Some(leader) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let request = Request::ReadIndex {
                        group: METADATA_GROUP,
                    };
                    match self.peers.call(leader, request, left).await {
                        Ok(Response::ReadIndex(Ok(index))) => Some(index),
                        _ => None,
                    }
                }
                None => None,
            };
            if let Some(index) = read {
                break index;
            }
            if Instant::now() >= deadline {
                return Err(failed(format!("no leader answered within {timeout:?}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(left))
            .applied_index_at_least(Some(index), "read index applied here")
            .await
            .map(|_| ())
            .map_err(|e| failed(e.to_string()))
    }

    async fn wait_applied_everywhere(
        &self,
        index: u64,
        deadline: Instant,
    ) -> Result<(), NotReplicated> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(left))
            .applied_index_at_least(Some(index), "change applied here")
            .await
            .map_err(|e| {
                NotReplicated(format!(
                    "cluster: committed, but not applied here in time: {e}"
                ))
            })?;
        let linked = self.peers.linked();
        let waits = self.peers.others().into_iter().map(|member| {
            let wait = if linked.contains(&member) {
                LINKED_APPLY_WAIT
            } else {
                UNLINKED_APPLY_WAIT
            };
            let request = Request::WaitApplied {
                group: METADATA_GROUP,
                index,
                wait_ms: wait.as_millis() as u64,
            };
            let peers = self.peers.clone();
            async move {
                if let Ok(Response::WaitApplied(false)) | Err(_) =
                    peers.call(member, request, wait).await
                {
                    tracing::debug!("cluster: node {member} had not applied entry {index} in time");
                }
            }
        });
        futures_join_all(waits).await;
        Ok(())
    }
}

impl Drop for ClusterNode {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.lock().take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs futures concurrently and waits for all (a handful of members: no crate needed).
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) {
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// The broker's side: blocking calls into the node's runtime.
struct NodeReplicator(Arc<ClusterNode>);

impl NodeReplicator {
    /// Runs `work` on the node's runtime and waits for its result, from a synchronous
    /// broker operation.
    fn block_on<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, NotReplicated>> + Send + 'static,
    ) -> Result<T, NotReplicated> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.0.handle.spawn(async move {
            let _ = tx.send(work.await);
        });
        let wait = || {
            rx.recv()
                .unwrap_or_else(|_| Err(NotReplicated("cluster: the node is shutting down".into())))
        };
        // Broker operations are synchronous; on a runtime worker, hand its other tasks over
        // while this one waits.
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        }
    }
}

impl Replicator for NodeReplicator {
    fn replicate(&self, change: Change) -> Result<Outcome, NotReplicated> {
        let node = self.0.clone();
        self.block_on(async move { node.propose(change).await })
    }

    fn sync(&self) -> Result<(), NotReplicated> {
        let node = self.0.clone();
        self.block_on(async move { node.sync().await })
    }
}
