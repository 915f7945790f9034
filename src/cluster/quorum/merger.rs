//! The leader's side of a quorum queue's proposals: every member's batcher (front.rs) sends
//! its batch here (over the peer link, or directly on the leader), and the batches that
//! arrived while the previous entry was being committed go into the next entry together. A
//! group then commits one entry per round however many members publish, where it would
//! otherwise commit one per member, each after the other's sync (openraft 0.9 flushes each
//! append before it takes the next).
//!
//! Also the group's endpoint on the peer link: Raft's own RPCs go straight to the group's Raft,
//! proposals through the merger.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot};

use super::machine::Batch;
use super::{Payload, QuorumRaft};
use crate::cluster::groups::{BoxFuture, GroupEndpoint, decode, encode};
use crate::cluster::messages::{Proposed, RaftRpc};

/// Batches taken into one entry at most.
const MAX_BATCHES_PER_ENTRY: usize = 64;

type Waiting = (Batch<Payload>, oneshot::Sender<Proposed>);

/// Merges the batches proposed to one group's leader into entries. Cheap to clone.
#[derive(Clone)]
pub struct Merger {
    batches: mpsc::UnboundedSender<Waiting>,
}

impl Merger {
    /// Starts the merger's task (on the current runtime). An entry that does not commit
    /// within `commit_timeout` is answered as failed (it may still commit later: its batches'
    /// proposers retry, and the machine skips a batch it has seen).
    pub fn start(raft: QuorumRaft, commit_timeout: Duration) -> Merger {
        let (batches, mut queue) = mpsc::unbounded_channel::<Waiting>();
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut waiting = vec![first];
                while waiting.len() < MAX_BATCHES_PER_ENTRY {
                    match queue.try_recv() {
                        Ok(more) => waiting.push(more),
                        Err(_) => break,
                    }
                }
                let (entry, answers): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
                let count = entry.len();
                let proposed = tokio::time::timeout(commit_timeout, raft.client_write(entry)).await;
                match proposed {
                    Ok(Ok(response)) if response.data.len() == count => {
                        let index = response.log_id.index;
                        for (answer, replies) in answers.into_iter().zip(response.data) {
                            let _ = answer.send(match encode(&replies) {
                                Ok(outcome) => Proposed::Applied { index, outcome },
                                Err(e) => Proposed::Failed(e),
                            });
                        }
                    }
                    Ok(Ok(response)) => {
                        let why = format!("{} replies for {count} batches", response.data.len());
                        answers.into_iter().for_each(|a| {
                            let _ = a.send(Proposed::Failed(why.clone()));
                        });
                    }
                    Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                        answers.into_iter().for_each(|a| {
                            let _ = a.send(Proposed::NotLeader {
                                leader: f.leader_id,
                            });
                        });
                    }
                    Ok(Err(e)) => {
                        let why = e.to_string();
                        answers.into_iter().for_each(|a| {
                            let _ = a.send(Proposed::Failed(why.clone()));
                        });
                    }
                    Err(_) => answers.into_iter().for_each(|a| {
                        let _ = a.send(Proposed::Failed("no majority answered the leader".into()));
                    }),
                }
            }
        });
        Merger { batches }
    }

    /// Proposes `batch` in the next entry; answers once that entry is committed and applied
    /// here, with the batch's replies (postcard).
    pub async fn propose(&self, batch: Batch<Payload>) -> Proposed {
        let (tx, rx) = oneshot::channel();
        if self.batches.send((batch, tx)).is_err() {
            return Proposed::Failed("the group has stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Proposed::Failed("the group has stopped".into()))
    }
}

/// A quorum queue's group as the peer link serves it.
pub struct QueueEndpoint {
    pub raft: QuorumRaft,
    pub merger: Merger,
}

impl GroupEndpoint for QueueEndpoint {
    fn raft_rpc(&self, rpc: RaftRpc, body: Vec<u8>) -> BoxFuture<Result<Vec<u8>, String>> {
        self.raft.raft_rpc(rpc, body)
    }

    fn propose(&self, body: Vec<u8>) -> BoxFuture<Proposed> {
        let merger = self.merger.clone();
        Box::pin(async move {
            match decode::<Batch<Payload>>(&body) {
                Ok(batch) => merger.propose(batch).await,
                Err(e) => Proposed::Failed(e),
            }
        })
    }

    fn wait_applied(&self, index: u64, wait: Duration) -> BoxFuture<bool> {
        self.raft.wait_applied(index, wait)
    }

    fn read_index(&self) -> BoxFuture<Result<u64, String>> {
        self.raft.read_index()
    }
}

/// The endpoint for `raft` with its merger.
pub fn endpoint(raft: QuorumRaft, merger: Merger) -> Arc<dyn GroupEndpoint> {
    Arc::new(QueueEndpoint { raft, merger })
}
