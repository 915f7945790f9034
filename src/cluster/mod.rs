//! Clustering (CLUSTER.md): a static set of nodes whose definitions (vhosts, users,
//! permissions, policies, exchanges, queues, bindings) replicate through one openraft group,
//! the metadata group. `node.rs` runs a node; the broker hands it changes through
//! `broker::replication`.
//!
//! Files: `config.rs` the settings; `types.rs` the group's Raft types; `log_db.rs` the node's
//! LMDB log database with its group-commit writer; `log_store.rs` openraft's log storage on
//! it; `state_machine.rs` and `metadata_snapshot.rs` the broker as the group's state machine;
//! `messages.rs` and `peer_link.rs` the links between nodes, `groups.rs` the groups they serve
//! (any kind of group: its types travel as bytes), `group_network.rs` openraft's network for a
//! group;
//! `batcher.rs` proposals in batches (one entry in flight per group); `status.rs` what
//! `warren ctl cluster_status` shows; `counter.rs` a counter group for measurements and tests.

// openraft's traits fix the error types (StorageError, RPCError), large as they are.
#![allow(clippy::result_large_err)]

pub mod batcher;
pub mod config;
#[doc(hidden)]
pub mod counter;
pub mod group_network;
pub mod groups;
pub mod log_db;
pub mod log_store;
pub mod messages;
pub mod metadata_snapshot;
pub mod node;
pub mod peer_link;
pub mod proposing;
pub mod quorum;
pub mod state_machine;
pub mod status;
pub mod stored_snapshot;
pub mod types;

pub use config::ClusterConfig;
pub use node::ClusterNode;
