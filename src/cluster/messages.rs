//! What nodes say to each other on a peer link: a Raft RPC for one group, a proposal
//! forwarded to a group's leader, and "tell me once you have applied this". Each group's own
//! types travel as postcard bytes inside these (groups.rs encodes and decodes them), so one
//! link serves groups of every kind. Encoded with postcard, one message per length-prefixed
//! frame (peer_link.rs). Byte strings are marked as such: postcard would otherwise write and
//! read them a byte at a time.

use serde::{Deserialize, Serialize};
pub use serde_bytes::ByteBuf;

/// The first frame on a link, from the node that connected.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    pub cookie: String,
    pub node: u64,
}

/// Which of Raft's RPCs a [`Request::Raft`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftRpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// One of Raft's RPCs for `group`: its typed request as postcard bytes.
    Raft {
        group: u64,
        rpc: RaftRpc,
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// A proposal (the group's typed data, postcard) for the group's leader.
    Propose {
        group: u64,
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
    /// Answer once this node has applied the group's log up to `index` (or after `wait_ms`).
    WaitApplied {
        group: u64,
        index: u64,
        wait_ms: u64,
    },
    /// To the group's leader: the index a read must have applied to see every committed
    /// change (Raft's read index; the leader confirms it still leads first).
    ReadIndex { group: u64 },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    /// The typed `Result<response, RaftError>` as postcard bytes, or why it could not be had.
    Raft(Result<ByteBuf, String>),
    Propose(Proposed),
    /// Whether the index was reached in time.
    WaitApplied(bool),
    ReadIndex(Result<u64, String>),
    /// The request could not be served (an unknown group, say).
    Refused(String),
}

/// What a leader did with a proposal.
#[derive(Debug, Serialize, Deserialize)]
pub enum Proposed {
    /// Committed and applied on the leader at `index`; the group's typed outcome (postcard).
    Applied {
        index: u64,
        #[serde(with = "serde_bytes")]
        outcome: Vec<u8>,
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
