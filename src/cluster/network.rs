//! openraft's network for the metadata group: its RPCs to a member go over this node's
//! [`Peers`] links, tagged with the group. A link failure is "unreachable" to openraft (it
//! backs off); an error the member's Raft returned comes back as that member's error.

use std::sync::Arc;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use super::messages::{Request, Response};
use super::peer_link::{LinkError, Peers};
use super::types::{METADATA_GROUP, MetaTypes};

pub struct MetaNetwork {
    pub peers: Arc<Peers>,
}

pub struct MetaPeer {
    peers: Arc<Peers>,
    target: u64,
}

impl RaftNetworkFactory<MetaTypes> for MetaNetwork {
    type Network = MetaPeer;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> MetaPeer {
        MetaPeer {
            peers: self.peers.clone(),
            target,
        }
    }
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>>;

impl MetaPeer {
    async fn call(&self, request: Request, option: &RPCOption) -> Result<Response, LinkError> {
        self.peers
            .call(self.target, request, option.hard_ttl())
            .await
    }

    fn remote<T, E: std::error::Error>(
        &self,
        result: Result<T, RaftError<u64, E>>,
    ) -> Result<T, RPCError<u64, BasicNode, RaftError<u64, E>>> {
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn unreachable<E: std::error::Error>(e: LinkError) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
    RPCError::Unreachable(Unreachable::new(&e))
}

fn unexpected<E: std::error::Error>(
    response: Response,
) -> RPCError<u64, BasicNode, RaftError<u64, E>> {
    RPCError::Network(NetworkError::new(&LinkError(format!(
        "unexpected answer: {response:?}"
    ))))
}

impl RaftNetwork<MetaTypes> for MetaPeer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<MetaTypes>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<u64>> {
        let request = Request::AppendEntries {
            group: METADATA_GROUP,
            rpc,
        };
        match self.call(request, &option).await.map_err(unreachable)? {
            Response::AppendEntries(result) => self.remote(result),
            other => Err(unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<MetaTypes>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<u64>, InstallSnapshotError> {
        let request = Request::InstallSnapshot {
            group: METADATA_GROUP,
            rpc,
        };
        match self.call(request, &option).await.map_err(unreachable)? {
            Response::InstallSnapshot(result) => self.remote(result),
            other => Err(unexpected(other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<u64>> {
        let request = Request::Vote {
            group: METADATA_GROUP,
            rpc,
        };
        match self.call(request, &option).await.map_err(unreachable)? {
            Response::Vote(result) => self.remote(result),
            other => Err(unexpected(other)),
        }
    }
}
