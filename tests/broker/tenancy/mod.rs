//! Tenancy: users, vhosts, permissions, topic permissions and limits, as RabbitMQ 3.10's
//! internal backend has them, set up by a definitions file (`load_definitions`) or, where no
//! management API exists yet, through the broker's own operations in-process.
//!
//! These tests always start warren (`WARREN_TEST_AMQP_URL` is ignored: each needs users and
//! vhosts of its own), through [`support`]: a definitions file built in code, a node that boots
//! and restarts on its data directory, and connections as a given user to a given vhost.
//!
//! - `users`: logins (plaintext, SHA-256 and SHA-512 hashes), refusals, the impersonator tag.
//! - `vhosts`: isolation, per-vhost `amq.*` exchanges, 530 at connection.open.
//! - `configure_permissions`, `read_write_permissions`: every permission check of the channel,
//!   allowed and refused, with RabbitMQ's texts; `topic_permissions`: routing keys.
//! - `limits`: vhost and user max-connections, user max-channels, vhost max-queues.
//! - `update_secret`: connection.update-secret.
//! - `persistence`: what the data directory remembers across restarts and kill -9; the default
//!   user on the first boot only.
//! - `deletion`: deleting a vhost or a user (in-process): 320 closes and durable state.
//! - `live_changes`: permissions and limits changed while clients are connected (in-process).

mod configure_permissions;
mod deletion;
pub(crate) mod in_process;
mod limits;
mod live_changes;
mod persistence;
mod read_write_permissions;
pub(crate) mod support;
mod topic_permissions;
mod update_secret;
mod users;
mod vhosts;
