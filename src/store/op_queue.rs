//! The queue from the broker to the store writer. Operations are numbered in the order they are
//! pushed (under the same lock), so numbers follow each channel's order.
//!
//! Pushing data costs a lock and a `Vec` push, not a wake-up: the writer is woken as urgent
//! only when somebody waits for durability (a notification, shutdown) or enough data has piled
//! up. Otherwise it sleeps until its own deadline (the next checkpoint), so the operations of
//! one publish — message, enqueue, then the confirm's notification — reach the log as one
//! record. A writer with nothing pending has no deadline: the first operation into an empty
//! queue wakes it just to start one ([`Woken::Arrived`]), so that data nobody waits for (a
//! paging queue's spilled messages) still reaches LMDB within a checkpoint interval.
//!
//! This file owns the hand-over only; what the writer does with the operations is writer.rs's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::Op;
use super::flow::{self, StoreFlow};

/// Wake the writer once this many operations wait, even if nobody waits for them.
const WAKE_AT_OPS: usize = 4096;

struct State {
    ops: Vec<Op>,
    /// The number of the last operation pushed (the first is 1).
    last_number: u64,
    /// Somebody waits for what is queued, or enough has piled up: the writer should take it.
    urgent: bool,
    /// The writer has stopped: nothing pushed now can be made durable.
    stopped: bool,
    /// What the queued operations weigh (flow.rs), and the spilled ones among them.
    weight: u64,
    spilled: u64,
}

pub struct OpQueue {
    state: Mutex<State>,
    /// `State::weight` and `State::spilled`, for publishers checking the flow without the lock.
    queued: AtomicU64,
    queued_spilled: AtomicU64,
    wake: Condvar,
    /// Told what the writer takes (it is unapplied until a checkpoint says otherwise).
    flow: Arc<StoreFlow>,
}

/// Why [`OpQueue::take`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Woken {
    /// The queue became urgent (or already was).
    Urgent,
    /// The deadline passed (or none was given and nothing was waiting).
    Deadline,
    /// No deadline was given and operations arrived: take them and set one.
    Arrived,
}

impl OpQueue {
    pub fn new(flow: Arc<StoreFlow>) -> Self {
        OpQueue {
            state: Mutex::new(State {
                ops: Vec::new(),
                last_number: 0,
                urgent: false,
                stopped: false,
                weight: 0,
                spilled: 0,
            }),
            queued: AtomicU64::new(0),
            queued_spilled: AtomicU64::new(0),
            wake: Condvar::new(),
            flow,
        }
    }

    /// Whether publishers should wait (flow.rs): what is queued here and what the writer took
    /// and LMDB has not applied yet, against the limits.
    pub fn over_flow_limit(&self) -> bool {
        self.flow.over_limit(
            self.queued.load(Ordering::Relaxed),
            self.queued_spilled.load(Ordering::Relaxed),
        )
    }

    /// Queues `op` and returns its number; wakes the writer if `op` is waited for or the
    /// queue is long.
    pub fn push(&self, op: Op) -> u64 {
        let wakes = matches!(op, Op::Notify { .. } | Op::Shutdown);
        let (weight, spilled) = flow::weigh(&op);
        let mut state = self.state.lock();
        state.last_number += 1;
        if state.stopped {
            tracing::warn!("store writer stopped; a write was dropped");
            return state.last_number;
        }
        state.ops.push(op);
        state.weight += weight;
        self.queued.store(state.weight, Ordering::Relaxed);
        if spilled {
            state.spilled += weight;
            self.queued_spilled.store(state.spilled, Ordering::Relaxed);
        }
        if !state.urgent && (wakes || state.ops.len() >= WAKE_AT_OPS) {
            state.urgent = true;
            self.wake.notify_one();
        } else if state.ops.len() == 1 {
            self.wake.notify_one();
        }
        state.last_number
    }

    /// Moves every queued operation into `into` (empty on entry), waiting first until the queue
    /// is urgent or `deadline` passes (`None`: wait for urgency alone; `Some` in the past: do
    /// not wait).
    pub fn take(&self, into: &mut Vec<Op>, deadline: Option<Instant>) -> Woken {
        let mut state = self.state.lock();
        let woken = loop {
            if state.urgent {
                break Woken::Urgent;
            }
            match deadline {
                None if !state.ops.is_empty() => break Woken::Arrived,
                None => self.wake.wait(&mut state),
                Some(deadline) => {
                    if self.wake.wait_until(&mut state, deadline).timed_out() {
                        break if state.urgent {
                            Woken::Urgent
                        } else {
                            Woken::Deadline
                        };
                    }
                }
            }
        };
        state.urgent = false;
        std::mem::swap(&mut state.ops, into);
        self.flow.taken(state.weight, state.spilled);
        (state.weight, state.spilled) = (0, 0);
        self.queued.store(0, Ordering::Relaxed);
        self.queued_spilled.store(0, Ordering::Relaxed);
        woken
    }

    /// The number of the last operation pushed.
    pub fn last_number(&self) -> u64 {
        self.state.lock().last_number
    }

    /// The writer has stopped: later pushes are dropped (and logged).
    pub fn stop(&self) {
        self.state.lock().stopped = true;
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::put_for_test;

    #[test]
    fn data_nobody_waits_for_wakes_an_idle_writer_to_start_its_deadline() {
        let queue = Arc::new(OpQueue::new(Arc::default()));
        let writer = std::thread::spawn({
            let queue = queue.clone();
            move || {
                let mut ops = Vec::new();
                let woken = queue.take(&mut ops, None);
                (woken, ops.len())
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        queue.push(put_for_test(1, Bytes::from_static(b"x")));
        assert_eq!(writer.join().unwrap(), (Woken::Arrived, 1));
    }
}
