//! Queues: the ready list, consumers with their prefetch windows, and delivery order.

mod queue;

pub use queue::{ConsumerRemoved, Queue, QueueOptions};
