//! Queues: the ready list, consumers with their prefetch windows, and delivery order.

pub mod args;
mod queue;

pub use queue::{ConsumerRemoved, Queue, QueueOptions};
