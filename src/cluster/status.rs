//! What `warren ctl cluster_status` and `GET /api/cluster-status` show: the members, whether
//! this node has a link to each, and per Raft group its leader, term, this node's role, log
//! and applied positions and, on the leader, each member's lag in entries.

use std::collections::BTreeMap;

use openraft::{BasicNode, RaftMetrics};
use serde::{Deserialize, Serialize};

use super::config::ClusterConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node that answered.
    pub node: u64,
    pub members: Vec<MemberStatus>,
    pub groups: Vec<GroupStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberStatus {
    pub id: u64,
    pub address: String,
    /// This node has an open link to it (always true of itself).
    pub linked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupStatus {
    pub group: String,
    pub leader: Option<u64>,
    pub term: u64,
    /// This node's role: Leader, Follower, Candidate, Learner, Shutdown.
    pub role: String,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
    pub snapshot: Option<u64>,
    /// Entries the log holds now (it is purged behind snapshots).
    pub log_entries: u64,
    /// On the leader: entries each member is behind the leader's log (`None`: nothing
    /// acknowledged yet).
    pub lag: BTreeMap<u64, Option<u64>>,
}

pub fn status_of(
    config: &ClusterConfig,
    metrics: &RaftMetrics<u64, BasicNode>,
    log_entries: u64,
    linked: &[u64],
) -> ClusterStatus {
    let members = config
        .peers
        .iter()
        .map(|(id, address)| MemberStatus {
            id: *id,
            address: address.clone(),
            linked: *id == config.node || linked.contains(id),
        })
        .collect();
    ClusterStatus {
        node: config.node,
        members,
        groups: vec![group_status("metadata".into(), metrics, log_entries)],
    }
}

/// One group's line: `name`, then what this node's Raft says of it.
pub fn group_status(
    name: String,
    metrics: &RaftMetrics<u64, BasicNode>,
    log_entries: u64,
) -> GroupStatus {
    let last = metrics.last_log_index.unwrap_or(0);
    let lag = metrics
        .replication
        .as_ref()
        .map(|replication| {
            replication
                .iter()
                .map(|(id, matched)| (*id, matched.map(|m| last.saturating_sub(m.index))))
                .collect()
        })
        .unwrap_or_default();
    GroupStatus {
        group: name,
        leader: metrics.current_leader,
        term: metrics.current_term,
        role: format!("{:?}", metrics.state),
        last_log_index: metrics.last_log_index,
        last_applied: metrics.last_applied.map(|l| l.index),
        snapshot: metrics.snapshot.map(|l| l.index),
        log_entries,
        lag,
    }
}
