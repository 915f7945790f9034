//! Messages across restarts, one file per concern:
//!
//! - [`persistence`]: persistent messages in durable queues come back in publish order with their
//!   properties (also when fanned out, and however many restarts they see); transient ones and
//!   ones in non-durable queues do not.
//! - [`settlement`]: acks, rejects, no-ack deliveries, purges, deletes and max-length drops are
//!   permanent; delivered-but-unacked messages come back redelivered.
//! - [`confirms`]: a publisher confirm, a tx.commit-ok or a queue.declare-ok means it survives
//!   `kill -9` right after.

mod confirms;
mod persistence;
mod settlement;
