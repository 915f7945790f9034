//! The seam between a queue and its replication: a quorum queue on a cluster node has a
//! [`QueueReplica`] attached, and `Queue`'s operations (publish, consume, settle, get, purge,
//! counts) hand themselves to it instead of acting on the node's own lists. The replica is a
//! Raft group (the cluster's `quorum/`); every member holds the queue's messages and
//! consumers, and each node delivers to its own consumers what the group assigned to them.
//!
//! This file owns the interface and [`CommitWait`], the completion a publisher waits on before
//! its confirm; it knows nothing of Raft or of the network.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::broker::consumer::Consumer;
use crate::broker::message::{Message, QueuedMessage};
use crate::broker::queue::Queue;

/// How a consumer (or basic.get, with none) is done with deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// basic.ack.
    Ack,
    /// Rejected without requeue.
    Discard,
    /// Requeued (nack/reject with requeue, recover, a channel closing with unacked messages).
    Return,
}

/// A replicated queue's counts, as this node last applied them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaCounts {
    pub ready: u32,
    pub unacked: u32,
    pub consumers: u32,
}

/// A queue whose messages and consumers live in a replicated state machine.
pub trait QueueReplica: Send + Sync {
    /// The queue's Raft group.
    fn group(&self) -> u64;
    /// Proposes the message; the wait completes once a majority holds it (or it failed).
    fn enqueue(&self, message: &Arc<Message>) -> Arc<CommitWait>;
    /// A consumer of this node starts taking deliveries.
    fn consume(&self, queue: &Arc<Queue>, consumer: &Arc<Consumer>);
    /// A consumer of this node takes no more deliveries (what it holds stays with it).
    fn cancel(&self, consumer: &Arc<Consumer>);
    /// These consumers' channels can take more: hand them what waits for them here.
    fn resume(&self, consumers: &[Arc<Consumer>]);
    /// Deliveries settled by `consumer` (basic.get's when `None`).
    fn settle(&self, consumer: Option<&Arc<Consumer>>, messages: &[QueuedMessage], how: Settlement);
    /// basic.get (blocks until the group answers).
    fn get(&self, no_ack: bool) -> Option<(QueuedMessage, u32)>;
    /// queue.purge (blocks until the group answers): the ready messages dropped.
    fn purge(&self) -> u32;
    fn counts(&self) -> ReplicaCounts;
    /// The queue was deleted here: stop taking part in its group.
    fn stop(&self);
}

/// Completes once: the replicated commit a publisher's confirm waits for.
#[derive(Default)]
pub struct CommitWait {
    state: Mutex<WaitState>,
}

enum WaitState {
    Pending(Vec<Box<dyn FnOnce(bool) + Send>>),
    Done(bool),
}

impl Default for WaitState {
    fn default() -> Self {
        WaitState::Pending(Vec::new())
    }
}

impl CommitWait {
    pub fn new() -> Arc<CommitWait> {
        Arc::new(CommitWait::default())
    }

    /// A wait that is already over.
    pub fn finished(ok: bool) -> Arc<CommitWait> {
        Arc::new(CommitWait {
            state: Mutex::new(WaitState::Done(ok)),
        })
    }

    /// Completes the wait (once: later calls change nothing) and runs what waited for it.
    pub fn complete(&self, ok: bool) {
        let waiting = {
            let mut state = self.state.lock();
            match std::mem::replace(&mut *state, WaitState::Done(ok)) {
                WaitState::Pending(waiting) => waiting,
                done @ WaitState::Done(_) => {
                    *state = done;
                    return;
                }
            }
        };
        for f in waiting {
            f(ok);
        }
    }

    /// Runs `f` with the result once complete (at once if it is).
    pub fn on_complete(&self, f: impl FnOnce(bool) + Send + 'static) {
        let mut state = self.state.lock();
        match &mut *state {
            WaitState::Pending(waiting) => waiting.push(Box::new(f)),
            WaitState::Done(ok) => {
                let ok = *ok;
                drop(state);
                f(ok);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn a_wait_runs_each_callback_once_with_the_result() {
        let wait = CommitWait::new();
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        wait.on_complete(move |ok| {
            assert!(ok);
            c.fetch_add(1, Ordering::Relaxed);
        });
        wait.complete(true);
        wait.complete(false);
        let c = calls.clone();
        wait.on_complete(move |ok| {
            assert!(ok, "the first result stays");
            c.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }
}
