//! warren: an AMQP 0-9-1 message broker that behaves like RabbitMQ 3.x.
//!
//! Layers, each calling only the ones below it: [`server`] (sockets, connection and channel
//! state machines) → [`broker`] (vhosts, exchanges, queues, consumers, the publish pipeline)
//! → [`store`] (LMDB: durable definitions and messages). [`management`] serves RabbitMQ's
//! management HTTP API beside the server, on the same broker. The `warren-protocol` crate turns bytes
//! into frames for the server. [`auth`] checks logins; [`alarms`] watches memory and disk;
//! [`config`] holds the settings.

pub mod alarms;
pub mod auth;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod ctl;
#[doc(hidden)]
pub mod fuzzing;
pub mod management;
pub mod server;
pub mod store;

pub use config::Config;
pub use server::{RunningBroker, start};
