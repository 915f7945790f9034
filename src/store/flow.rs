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
/// Bytes of unapplied spilled operations above which publishers wait.
pub const SPILL_LIMIT: u64 = 16 << 20;

/// What an operation weighs: its record's body and properties, plus a fixed part (the same
/// measure the writer uses to decide when a checkpoint is due).
pub fn weight(op: &Op) -> u64 {
    match op {
        Op::PutMessage { record, .. } | Op::StreamAppend { record, .. } => {
            64 + (record.body.len() + record.properties.len()) as u64
        }
        Op::Unlogged(op) => weight(op),
        // Not data: they never reach a checkpoint's batch.
        Op::Notify { .. } | Op::Shutdown => 0,
        _ => 64,
    }
}

#[derive(Default)]
pub struct StoreFlow {
    in_flight: AtomicU64,
    /// Of which spilled (unlogged).
    spilled: AtomicU64,
    released: tokio::sync::Notify,
}

impl StoreFlow {
    pub fn sent(&self, op: &Op) {
        let w = weight(op);
        self.in_flight.fetch_add(w, Ordering::Relaxed);
        if matches!(op, Op::Unlogged(_)) {
            self.spilled.fetch_add(w, Ordering::Relaxed);
        }
    }

    /// A checkpoint applied `ops`, weighing `total`.
    pub fn applied(&self, ops: &[Op], total: u64) {
        let spilled: u64 = ops
            .iter()
            .filter(|op| matches!(op, Op::Unlogged(_)))
            .map(weight)
            .sum();
        let was_over = self.over_limit();
        self.in_flight.fetch_sub(total, Ordering::Relaxed);
        self.spilled.fetch_sub(spilled, Ordering::Relaxed);
        if was_over && !self.over_limit() {
            self.released.notify_waiters();
        }
    }

    pub fn over_limit(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) >= IN_FLIGHT_LIMIT
            || self.spilled.load(Ordering::Relaxed) >= SPILL_LIMIT
    }

    /// Waits until the store is under its limit again (or a short while, so that a caller
    /// re-checks its other reasons to wake).
    pub async fn wait_below_limit(&self) {
        let released = self.released.notified();
        if !self.over_limit() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), released).await;
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::put_for_test;

    #[test]
    fn spilled_bytes_have_the_lower_limit_and_a_checkpoint_releases_them() {
        let flow = StoreFlow::default();
        let spill = |n: usize| Op::Unlogged(Box::new(put_for_test(1, Bytes::from(vec![0; n]))));
        let ops = vec![
            spill(SPILL_LIMIT as usize / 2),
            spill(SPILL_LIMIT as usize / 2),
        ];
        for op in &ops {
            flow.sent(op);
        }
        assert!(flow.over_limit(), "spilled bytes over their limit");
        let total = ops.iter().map(weight).sum();
        flow.applied(&ops, total);
        assert!(!flow.over_limit());
        assert_eq!(flow.in_flight(), 0);
        let logged = put_for_test(2, Bytes::from(vec![0; SPILL_LIMIT as usize * 2]));
        flow.sent(&logged);
        assert!(
            !flow.over_limit(),
            "logged bytes have the larger limit (confirms pace their publishers)"
        );
    }

    #[tokio::test]
    async fn waiting_publishers_wake_when_a_checkpoint_brings_the_store_under_its_limit() {
        let flow = std::sync::Arc::new(StoreFlow::default());
        let op = put_for_test(1, Bytes::from(vec![0; IN_FLIGHT_LIMIT as usize]));
        flow.sent(&op);
        let waiter = tokio::spawn({
            let flow = flow.clone();
            async move {
                while flow.over_limit() {
                    flow.wait_below_limit().await;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        flow.applied(std::slice::from_ref(&op), weight(&op));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("no panic");
    }
}
