//! The Raft groups a node runs, as its peer links serve them: each group, whatever its types,
//! takes RPCs and proposals as postcard bytes ([`GroupEndpoint`], implemented for every
//! `openraft::Raft` of a [`GroupTypes`] config), looked up by group id in [`Groups`]. The
//! calling side, openraft's network for one group, is `group_network.rs`.

use std::collections::HashMap;
use std::future::Future;
use std::io::Cursor;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{BasicNode, Entry, Raft, RaftTypeConfig};
use parking_lot::RwLock;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::messages::{ByteBuf, Proposed, RaftRpc, Request, Response};

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// How long a member's proposal or read index may take here: a leader cut off from the
/// others never commits, and the asking member has given up long before.
const SERVE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the Raft groups of this crate have in common: u64 node ids, addresses as nodes,
/// snapshots as bytes, entries and data that serde can carry.
pub trait GroupTypes:
    RaftTypeConfig<
        NodeId = u64,
        Node = BasicNode,
        Entry = Entry<Self>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
        Responder = openraft::impls::OneshotResponder<Self>,
    >
where
    Self::D: Serialize + DeserializeOwned,
    Self::R: Serialize + DeserializeOwned,
{
}

impl<C> GroupTypes for C
where
    C: RaftTypeConfig<
            NodeId = u64,
            Node = BasicNode,
            Entry = Entry<C>,
            SnapshotData = Cursor<Vec<u8>>,
            AsyncRuntime = openraft::TokioRuntime,
            Responder = openraft::impls::OneshotResponder<C>,
        >,
    C::D: Serialize + DeserializeOwned,
    C::R: Serialize + DeserializeOwned,
{
}

/// One group as a peer link serves it.
pub trait GroupEndpoint: Send + Sync {
    fn raft_rpc(&self, rpc: RaftRpc, body: Vec<u8>) -> BoxFuture<Result<Vec<u8>, String>>;
    fn propose(&self, body: Vec<u8>) -> BoxFuture<Proposed>;
    fn wait_applied(&self, index: u64, wait: Duration) -> BoxFuture<bool>;
    /// On the leader: the read index (see [`Request::ReadIndex`]).
    fn read_index(&self) -> BoxFuture<Result<u64, String>>;
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    postcard::to_stdvec(value).map_err(|e| e.to_string())
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| e.to_string())
}

/// Proposes `data` to this node's instance of the group (which must be the leader).
pub async fn propose_here<C>(raft: &Raft<C>, data: C::D) -> Proposed
where
    C: GroupTypes,
    C::D: Serialize + DeserializeOwned,
    C::R: Serialize + DeserializeOwned,
{
    match raft.client_write(data).await {
        Ok(response) => match encode(&response.data) {
            Ok(outcome) => Proposed::Applied {
                index: response.log_id.index,
                outcome,
            },
            Err(e) => Proposed::Failed(e),
        },
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Proposed::NotLeader {
            leader: f.leader_id,
        },
        Err(e) => Proposed::Failed(e.to_string()),
    }
}

impl<C> GroupEndpoint for Raft<C>
where
    C: GroupTypes,
    C::D: Serialize + DeserializeOwned,
    C::R: Serialize + DeserializeOwned,
{
    fn raft_rpc(&self, rpc: RaftRpc, body: Vec<u8>) -> BoxFuture<Result<Vec<u8>, String>> {
        let raft = self.clone();
        Box::pin(async move {
            match rpc {
                RaftRpc::AppendEntries => {
                    let request: AppendEntriesRequest<C> = decode(&body)?;
                    encode(&raft.append_entries(request).await)
                }
                RaftRpc::Vote => {
                    let request: VoteRequest<u64> = decode(&body)?;
                    encode(&raft.vote(request).await)
                }
                RaftRpc::InstallSnapshot => {
                    let request: InstallSnapshotRequest<C> = decode(&body)?;
                    encode(&raft.install_snapshot(request).await)
                }
            }
        })
    }

    fn propose(&self, body: Vec<u8>) -> BoxFuture<Proposed> {
        let raft = self.clone();
        Box::pin(async move {
            match decode::<C::D>(&body) {
                Ok(data) => tokio::time::timeout(SERVE_TIMEOUT, propose_here(&raft, data))
                    .await
                    .unwrap_or_else(|_| Proposed::Failed("no majority answered the leader".into())),
                Err(e) => Proposed::Failed(e),
            }
        })
    }

    fn read_index(&self) -> BoxFuture<Result<u64, String>> {
        let raft = self.clone();
        Box::pin(async move {
            match tokio::time::timeout(SERVE_TIMEOUT, raft.ensure_linearizable()).await {
                Ok(Ok(read)) => Ok(read.map_or(0, |id| id.index)),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no majority answered the leader".into()),
            }
        })
    }

    fn wait_applied(&self, index: u64, wait: Duration) -> BoxFuture<bool> {
        let raft = self.clone();
        Box::pin(async move {
            raft.wait(Some(wait))
                .applied_index_at_least(Some(index), "peer asked")
                .await
                .is_ok()
        })
    }
}

/// The groups this node runs, by id.
#[derive(Default)]
pub struct Groups {
    groups: RwLock<HashMap<u64, Arc<dyn GroupEndpoint>>>,
}

impl Groups {
    pub fn insert(&self, group: u64, endpoint: Arc<dyn GroupEndpoint>) {
        self.groups.write().insert(group, endpoint);
    }

    pub fn remove(&self, group: u64) {
        self.groups.write().remove(&group);
    }

    pub fn len(&self) -> usize {
        self.groups.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Answers a member's request.
    pub async fn serve(&self, request: Request) -> Response {
        let group = match &request {
            Request::Raft { group, .. }
            | Request::Propose { group, .. }
            | Request::WaitApplied { group, .. }
            | Request::ReadIndex { group } => *group,
        };
        let Some(endpoint) = self.groups.read().get(&group).cloned() else {
            return Response::Refused(format!("no group {group} on this node"));
        };
        match request {
            Request::Raft { rpc, body, .. } => {
                Response::Raft(endpoint.raft_rpc(rpc, body).await.map(ByteBuf::from))
            }
            Request::Propose { body, .. } => Response::Propose(endpoint.propose(body).await),
            Request::ReadIndex { .. } => Response::ReadIndex(endpoint.read_index().await),
            Request::WaitApplied { index, wait_ms, .. } => {
                let wait = Duration::from_millis(wait_ms.min(10_000));
                Response::WaitApplied(endpoint.wait_applied(index, wait).await)
            }
        }
    }
}
