//! Queues: declare (server-named, passive, equivalence, exclusive,
//! auto-delete), bindings, purge, delete and counts.

mod bindings;
mod declare;
mod lifetime;
mod purge_delete;
