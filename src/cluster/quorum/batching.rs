//! A quorum queue's commands from this node, proposed in batches: one batch in flight, every
//! command that waited meanwhile in the next one, each batch sent to the leader's merger
//! (merger.rs) and retried under its sequence number until committed (the machine skips a
//! batch it has seen). Each command's asker hears its outcome through its [`Waiter`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::machine::{Batch, Command, Proposer, Reply};
use super::merger::Merger;
use super::{Payload, Proposal, QuorumRaft};
use crate::broker::replication::CommitWait;
use crate::cluster::peer_link::Peers;
use crate::cluster::proposing::{Committed, propose_with};

/// Commands taken into one entry at most.
const MAX_COMMANDS_PER_ENTRY: usize = 4096;

/// Who hears a proposed command's outcome.
pub(super) enum Waiter {
    Nobody,
    Commit(Arc<CommitWait>),
    Reply(std::sync::mpsc::Sender<Option<Reply<Payload>>>),
}

impl Waiter {
    /// Tells the outcome; hands the reply back when its asker stopped waiting for it.
    pub(super) fn tell(self, reply: Option<Reply<Payload>>) -> Option<Reply<Payload>> {
        match self {
            Waiter::Nobody => None,
            Waiter::Commit(wait) => {
                wait.complete(matches!(reply, Some(r) if r != Reply::Rejected));
                None
            }
            Waiter::Reply(tx) => tx.send(reply).err().and_then(|e| e.0),
        }
    }
}

/// What a queue's batcher works with.
pub(super) struct Batching {
    pub(super) stopped: Arc<AtomicBool>,
    /// The batcher's own queue, for what it must propose again.
    pub(super) again: mpsc::WeakUnboundedSender<(Proposal, Waiter)>,
    pub(super) raft: QuorumRaft,
    pub(super) merger: Merger,
    pub(super) peers: Arc<Peers>,
    pub(super) group: u64,
    pub(super) proposer: Proposer,
    pub(super) commit_timeout: Duration,
}

/// Proposes what waits, one batch at a time (to the leader's merger, merger.rs), each retried
/// until committed or the queue is deleted here.
pub(super) async fn run_batcher(
    batching: Batching,
    mut queue: mpsc::UnboundedReceiver<(Proposal, Waiter)>,
) {
    let Batching {
        stopped,
        again,
        raft,
        merger,
        peers,
        group,
        proposer,
        commit_timeout,
    } = batching;
    let mut seq = 0u64;
    while let Some(first) = queue.recv().await {
        let mut commands = vec![first.0];
        let mut waiters = vec![first.1];
        while commands.len() < MAX_COMMANDS_PER_ENTRY {
            match queue.try_recv() {
                Ok((command, waiter)) => {
                    commands.push(command);
                    waiters.push(waiter);
                }
                Err(_) => break,
            }
        }
        seq += 1;
        let count = commands.len();
        let batch = Batch {
            proposer,
            seq,
            commands,
        };
        let leader = || raft.metrics().borrow().current_leader;
        let here = |batch| merger.propose(batch);
        // Retried until committed, under the same sequence number (the machine skips it if an
        // earlier attempt made it after all): an ack or a publish waits for a leader rather
        // than being lost. Only the queue's deletion here gives up.
        let mut attempts = 0u32;
        let committed: Result<Committed<Vec<Reply<Payload>>>, String> = loop {
            let deadline = Instant::now() + commit_timeout;
            match propose_with(leader, here, &peers, group, &batch, deadline).await {
                Ok(committed) => break Ok(committed),
                Err(why) if stopped.load(Ordering::Acquire) => break Err(why),
                Err(why) => {
                    attempts += 1;
                    if attempts == 1 {
                        tracing::warn!(
                            "cluster: quorum queue group {group}: {count} commands not committed within {commit_timeout:?} ({why}); still trying"
                        );
                    }
                }
            }
        };
        if attempts > 0 {
            tracing::info!(
                "cluster: quorum queue group {group}: {count} commands committed after {attempts} timeouts"
            );
        }
        match committed {
            Ok(committed) if committed.outcome.len() == count => {
                let answered = waiters.into_iter().zip(committed.outcome);
                for ((waiter, reply), command) in answered.zip(&batch.commands) {
                    // A basic.get that gave up waiting (a slow commit) got a message after
                    // all: it goes back, or it would stay with the get-consumer for good.
                    if let (
                        Some(Reply::Got(Some((id, _, _)), _)),
                        Command::Dequeue {
                            consumer,
                            no_ack: false,
                        },
                    ) = (waiter.tell(Some(reply)), command)
                        && let Some(queue) = again.upgrade()
                    {
                        let back = Command::Return {
                            consumer: *consumer,
                            ids: vec![id],
                        };
                        let _ = queue.send((back, Waiter::Nobody));
                    }
                }
            }
            Ok(committed) => {
                tracing::error!(
                    "cluster: quorum queue group {group}: {} replies for {count} commands",
                    committed.outcome.len()
                );
                waiters.into_iter().for_each(|w| {
                    let _ = w.tell(None);
                });
            }
            Err(why) => {
                tracing::info!(
                    "cluster: quorum queue group {group} stopped: {count} commands dropped ({why})"
                );
                waiters.into_iter().for_each(|w| {
                    let _ = w.tell(None);
                });
            }
        }
    }
}
