//! A warren cluster on loopback (CLUSTER.md): three nodes on 127.0.0.1, .2 and .3, driven
//! through lapin and the management API; nodes killed with SIGKILL and restarted. Every test
//! starts its own cluster and stops it.

mod checker;
mod checker_single_node;
mod harness;
mod metadata;
mod partition;
mod proxy;
mod quorum;
mod quorum_failures;
