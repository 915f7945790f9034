//! What nodes say to each other on a peer link: Raft's RPCs for a group, a change forwarded to
//! the group's leader, and "tell me once you have applied this". Encoded with postcard, one
//! message per length-prefixed frame (peer_link.rs).

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use super::types::MetaTypes;
use crate::broker::replication::{Change, Outcome};

/// The first frame on a link, from the node that connected.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    pub cookie: String,
    pub node: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    AppendEntries {
        group: u64,
        rpc: AppendEntriesRequest<MetaTypes>,
    },
    Vote {
        group: u64,
        rpc: VoteRequest<u64>,
    },
    InstallSnapshot {
        group: u64,
        rpc: InstallSnapshotRequest<MetaTypes>,
    },
    /// A change for the group's leader to propose (sent by a node that is not the leader).
    Propose {
        group: u64,
        change: Change,
    },
    /// Answer once this node has applied the group's log up to `index` (or after `wait_ms`).
    WaitApplied {
        group: u64,
        index: u64,
        wait_ms: u64,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    AppendEntries(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    InstallSnapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    Propose(Proposed),
    /// Whether the index was reached in time.
    WaitApplied(bool),
    /// The request could not be served (an unknown group, say).
    Refused(String),
}

/// What a leader did with a forwarded change.
#[derive(Debug, Serialize, Deserialize)]
pub enum Proposed {
    /// Committed and applied on the leader at `index`, with this outcome.
    Applied {
        index: u64,
        outcome: Outcome,
    },
    /// This node is not the leader; `leader` is, if it knows one.
    NotLeader {
        leader: Option<u64>,
    },
    Failed(String),
}

/// A request or a response on the link, with the id that pairs them.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub id: u64,
    pub body: T,
}
