//! Durability and crash tests for warren: what survives a restart of the broker process on the
//! same data directory, after a graceful stop (SIGTERM) and after a crash (SIGKILL).
//!
//! - `restart`: durable exchanges, queues (with their `x-*` arguments) and bindings come back;
//!   non-durable and exclusive ones do not. `expiry`: a recovered queue's x-expires still runs.
//! - `messages`: persistent messages in durable queues come back in order, with properties;
//!   transient ones and ones in non-durable queues do not (`persistence`); acks, purge and delete
//!   are permanent, delivered-but-unacked messages come back redelivered (`settlement`); confirms
//!   and tx.commit are durable (`confirms`).
//! - `store_faults`: failed commits (nacks, the disk alarm, nothing acked lost), a full LMDB map
//!   (grown, not an outage); `data_dir_lock`: one broker per data directory; `orphans`: message
//!   records nothing references are dropped at start-up.
//! - `paging`: backlogs beyond a queue's in-memory budget are read back in order while
//!   publishers, consumers and basic.get go on. `paging_shapes`: every kind of classic queue
//!   pages (priorities, TTLs, length limits, dead-lettering, transient messages) and behaves as
//!   in memory; purges and deletes leave no records; restarts bring back only what is persistent.
//! - `crash`: publishers with confirms, a consumer, and `kill -9` at a random moment, cycle after
//!   cycle; then nothing confirmed may be missing. One test each for a classic queue, a quorum
//!   queue (confirmed transient messages survive too) and a stream (offsets and contents stay as
//!   consumers saw them; consumers resume at the offset they ask for), and for two paged classic
//!   shapes: a queue that dead-letters what the consumer rejects (dead letters accounted for) and
//!   a priority queue (order kept within each priority, the final drain by priority).
//!   `WARREN_CRASH_CYCLES=100` for a long run.
//!
//! These spawn the warren binary (`WARREN_TEST_AMQP_URL` is ignored: they need to stop and
//! restart the broker; only `paging_shapes`' tests that do not restart use it), through the
//! broker suite's harness (`common`, mounted from tests/broker/common); `support` adds what only
//! restarts need. Set `WARREN_TEST_LOG=1` to see the brokers' stderr.
#![allow(dead_code)]

#[path = "../broker/common/mod.rs"]
mod common;

/// Two tests from one `async fn check(node: Node, stop: Stop)`, each on a node of its own: restart
/// after SIGTERM and after SIGKILL.
/// `$start` makes the node (default: [`support::Node::start`]).
macro_rules! both_stops {
    ($check:ident, $graceful:ident, $kill:ident) => {
        both_stops!($check, $graceful, $kill, $crate::support::Node::start());
    };
    ($check:ident, $graceful:ident, $kill:ident, $start:expr) => {
        #[tokio::test]
        async fn $graceful() {
            let node = $start;
            $check(node, $crate::support::Stop::Graceful).await
        }

        #[tokio::test]
        async fn $kill() {
            let node = $start;
            $check(node, $crate::support::Stop::Kill).await
        }
    };
}

mod support;

mod corruption;
mod crash;
mod data_dir_lock;
mod delayed;
mod expiry;
mod log_sync;
mod messages;
mod orphans;
mod paging;
mod paging_shapes;
mod restart;
mod store_faults;
