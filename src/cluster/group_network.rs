//! openraft's network for one group (the calling side of `groups.rs`): a group's RPCs to a
//! member are encoded as postcard bytes, sent over this node's [`Peers`] links tagged with the
//! group, and the member's typed answer decoded. A link failure is "unreachable" to openraft
//! (it backs off); an error the member's Raft returned comes back as that member's error.

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
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::groups::{GroupTypes, decode, encode};
use super::messages::{RaftRpc, Request, Response};
use super::peer_link::{LinkError, Peers};

/// openraft's network for one group.
pub struct GroupNetwork<C> {
    pub peers: Arc<Peers>,
    pub group: u64,
    pub _types: std::marker::PhantomData<C>,
}

impl<C> GroupNetwork<C> {
    pub fn new(peers: Arc<Peers>, group: u64) -> Self {
        GroupNetwork {
            peers,
            group,
            _types: std::marker::PhantomData,
        }
    }
}

pub struct GroupPeer<C> {
    peers: Arc<Peers>,
    group: u64,
    target: u64,
    _types: std::marker::PhantomData<C>,
}

impl<C> RaftNetworkFactory<C> for GroupNetwork<C>
where
    C: GroupTypes,
    C::D: Serialize + DeserializeOwned,
    C::R: Serialize + DeserializeOwned,
{
    type Network = GroupPeer<C>;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> GroupPeer<C> {
        GroupPeer {
            peers: self.peers.clone(),
            group: self.group,
            target,
            _types: std::marker::PhantomData,
        }
    }
}

type RpcError<E> = RPCError<u64, BasicNode, RaftError<u64, E>>;

impl<C> GroupPeer<C>
where
    C: GroupTypes,
    C::D: Serialize + DeserializeOwned,
    C::R: Serialize + DeserializeOwned,
{
    /// Sends one RPC and decodes the member's typed answer.
    async fn call<Req, Resp, E>(
        &self,
        rpc: RaftRpc,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RpcError<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let network = |e: String| RPCError::Network(NetworkError::new(&LinkError(e)));
        let body = encode(request).map_err(network)?;
        let request = Request::Raft {
            group: self.group,
            rpc,
            body,
        };
        let response = self
            .peers
            .call(self.target, request, option.hard_ttl())
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let bytes = match response {
            Response::Raft(Ok(bytes)) => bytes.into_vec(),
            Response::Raft(Err(e)) | Response::Refused(e) => return Err(network(e)),
            other => return Err(network(format!("unexpected answer: {other:?}"))),
        };
        let answer: Result<Resp, RaftError<u64, E>> = decode(&bytes).map_err(network)?;
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl<C> RaftNetwork<C> for GroupPeer<C>
where
    C: GroupTypes,
    C::D: Serialize + DeserializeOwned,
    C::R: Serialize + DeserializeOwned,
{
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcError<openraft::error::Infallible>> {
        self.call(RaftRpc::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcError<InstallSnapshotError>> {
        self.call(RaftRpc::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcError<openraft::error::Infallible>> {
        self.call(RaftRpc::Vote, &rpc, &option).await
    }
}
