//! Delayed messages, compatible with RabbitMQ's `rabbitmq_delayed_message_exchange` plugin: an
//! exchange of type `x-delayed-message` routes as its `x-delayed-type` says, but holds every
//! message with an `x-delay` header (ms, above zero) until it is due, then routes it against
//! the bindings that exist then.
//!
//! Unlike the plugin, the schedule lives in the store's due-time index with only its near
//! future in memory (millions of delayed messages cost disk, not RAM), any delay counts (the
//! plugin routes delays beyond 2^32 - 1 ms at once), persistent messages are confirmed only
//! once they are durable, and `mandatory` returns a message that nothing would route at
//! publish time (publish/delayed.rs).
//!
//! - header.rs: `x-delayed-type`, `x-delay`, and header rewrites.
//! - window.rs: the part of a schedule in memory.
//! - schedule.rs: one exchange's schedule (store, window, deadline).
//! - leftovers.rs: what deleted delayed exchanges still hold.
//! - this file: the task that fires schedules as they fall due.

mod header;
mod leftovers;
mod schedule;
mod window;

use std::sync::Arc;

use tokio::sync::watch;

pub use header::{
    check_arguments, delayed_type, header_value, with_int_header, without_headers, x_delay,
};
pub use leftovers::Leftovers;
pub use schedule::{Added, Schedule, ScheduleSpec, Target};

use super::Broker;

/// Routes delayed messages as they fall due, until `shutdown` turns true.
pub async fn run(broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    broker
        .delays
        .run(shutdown, |schedule, _now| schedule.fire())
        .await;
}
