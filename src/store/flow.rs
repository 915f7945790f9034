//! Credit flow between publishers and the store, as RabbitMQ's `credit_flow` between its
//! processes: the bytes of operations sent to the writer and not yet applied to LMDB are
//! counted, and past a limit a publishing connection stops reading its socket until the
//! checkpoints catch up (TCP pushes back on the client). No `connection.blocked` is sent: this
//! is the normal pace of a store slower than its publishers, not an alarm.
//!
//! Two limits: [`SPILL_LIMIT`] on what paging queues spill (transient messages: nothing else
//! slows their publishers, and the bodies wait in memory until LMDB has them), and the larger
//! [`IN_FLIGHT_LIMIT`] on everything (persistent messages published without confirms).
//! Publishers that wait for confirms are paced by the log's syncs long before either.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::Op;

/// Bytes of unapplied operations above which publishers wait.
pub const IN_FLIGHT_LIMIT: u64 = 128 << 20;
/// What removing one index entry weighs in the flow: the operation's memory and a share of the
/// B-tree pages it dirties.
const REMOVE_WEIGHT: u64 = 256;

/// What removing one index entry weighs when deciding that a checkpoint is due: a page it may
/// dirty in the checkpoint's transaction (scattered deletes each dirty their own), so that a
/// checkpoint holds at most ~8,000 of them.
pub const REMOVE_CHECKPOINT_WEIGHT: u64 = 4096;

/// [`weight`], for the size of a checkpoint (what its transaction holds in memory).
pub fn checkpoint_weight(op: &Op) -> u64 {
    let removed = match op {
        Op::Remove { .. } => 1,
        Op::RemoveEntries { entries, .. } => entries.len() as u64,
        Op::RemoveSegment { segment, .. } => segment.ids.len() as u64,
        Op::Unlogged(op) => return checkpoint_weight(op),
        _ => return weight(op),
    };
    64 + removed * REMOVE_CHECKPOINT_WEIGHT
}

/// Bytes of unapplied spilled operations above which publishers wait.
pub const SPILL_LIMIT: u64 = 16 << 20;

/// What an operation weighs, and whether it is spilled (unlogged).
pub fn weigh(op: &Op) -> (u64, bool) {
    (weight(op), matches!(op, Op::Unlogged(_)))
}

/// What an operation weighs: its record's body and properties, plus a fixed part (the same
/// measure the writer uses to decide when a checkpoint is due).
pub fn weight(op: &Op) -> u64 {
    match op {
        Op::PutMessage { record, .. } | Op::StreamAppend { record, .. } => {
            64 + (record.body.len() + record.properties.len()) as u64
        }
        // Deletes dirty B-tree pages the checkpoint's transaction holds in memory: a few per
        // removed entry when they are scattered (a priority queue drained level by level).
        Op::Remove {
            scattered: true, ..
        } => REMOVE_CHECKPOINT_WEIGHT,
        Op::Remove { .. } => REMOVE_WEIGHT,
        Op::RemoveEntries { entries, .. } => 64 + REMOVE_WEIGHT * entries.len() as u64,
        Op::RemoveSegment { segment, .. } => 64 + REMOVE_WEIGHT * segment.ids.len() as u64,
        Op::Unlogged(op) => weight(op),
        // Not data: they never reach a checkpoint's batch.
        Op::Notify { .. } | Op::Shutdown => 0,
        _ => 64,
    }
}

/// What the writer took from its queue and LMDB has not applied yet (the queue counts what
/// it holds itself, under its lock: op_queue.rs). Updated once per batch, not per operation.
#[derive(Default)]
pub struct StoreFlow {
    in_flight: AtomicU64,
    /// Of which spilled (unlogged).
    spilled: AtomicU64,
    released: tokio::sync::Notify,
}

impl StoreFlow {
    /// The writer took operations weighing `total`, `spilled` of it spilled.
    pub fn taken(&self, total: u64, spilled: u64) {
        if total > 0 {
            self.in_flight.fetch_add(total, Ordering::Relaxed);
        }
        if spilled > 0 {
            self.spilled.fetch_add(spilled, Ordering::Relaxed);
        }
    }

    /// A checkpoint applied `ops`, weighing `total`. Wakes waiting publishers: they check
    /// again whether the store is under its limits.
    pub fn applied(&self, ops: &[Op], total: u64) {
        let spilled: u64 = ops
            .iter()
            .filter(|op| matches!(op, Op::Unlogged(_)))
            .map(weight)
            .sum();
        self.in_flight.fetch_sub(total, Ordering::Relaxed);
        self.spilled.fetch_sub(spilled, Ordering::Relaxed);
        self.released.notify_waiters();
    }

    /// Whether publishers should wait, given what the writer's queue holds besides.
    pub fn over_limit(&self, queued: u64, queued_spilled: u64) -> bool {
        self.in_flight.load(Ordering::Relaxed) + queued >= IN_FLIGHT_LIMIT
            || self.spilled.load(Ordering::Relaxed) + queued_spilled >= SPILL_LIMIT
    }

    /// Waits for the next checkpoint (or a short while): the caller checks the limits again.
    pub async fn wait_for_checkpoint(&self) {
        let _ = tokio::time::timeout(Duration::from_millis(50), self.released.notified()).await;
    }

    #[cfg(test)]
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use std::sync::Arc;

    use super::*;
    use crate::store::op_queue::OpQueue;
    use crate::store::put_for_test;

    fn spill(n: usize) -> Op {
        Op::Unlogged(Box::new(put_for_test(1, Bytes::from(vec![0; n]))))
    }

    #[test]
    fn spilled_bytes_have_the_lower_limit_queued_or_taken_until_a_checkpoint_applies_them() {
        let flow = Arc::new(StoreFlow::default());
        let queue = OpQueue::new(flow.clone());
        queue.push(spill(SPILL_LIMIT as usize / 2));
        assert!(!queue.over_flow_limit());
        queue.push(spill(SPILL_LIMIT as usize / 2));
        assert!(
            queue.over_flow_limit(),
            "queued spilled bytes over their limit"
        );
        let mut taken = Vec::new();
        queue.take(&mut taken, Some(std::time::Instant::now()));
        assert!(queue.over_flow_limit(), "taken, not applied yet");
        let total = taken.iter().map(weight).sum();
        flow.applied(&taken, total);
        assert!(!queue.over_flow_limit());
        assert_eq!(flow.in_flight(), 0);
        queue.push(put_for_test(
            2,
            Bytes::from(vec![0; SPILL_LIMIT as usize * 2]),
        ));
        assert!(
            !queue.over_flow_limit(),
            "logged bytes have the larger limit (confirms pace their publishers)"
        );
    }

    #[tokio::test]
    async fn a_checkpoint_wakes_waiting_publishers() {
        let flow = Arc::new(StoreFlow::default());
        let waiter = tokio::spawn({
            let flow = flow.clone();
            async move { flow.wait_for_checkpoint().await }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        flow.applied(&[], 0);
        tokio::time::timeout(Duration::from_millis(40), waiter)
            .await
            .expect("woken before the timeout")
            .expect("no panic");
    }
}
