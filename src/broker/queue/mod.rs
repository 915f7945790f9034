//! Queues: the ready list, consumers with their prefetch windows, and delivery order.

pub mod args;
mod backlog;
mod basic_get;
mod consumers;
mod counts;
pub mod dead_letter;
mod delivered_headers;
mod dispatch;
mod limits;
mod options;
mod page_in;
mod paging;
// The file is named after what it holds, as in DESIGN.md's layout.
#[allow(clippy::module_inception)]
mod queue;
pub mod queue_type;
mod quorum_returns;
mod ready;
mod replica;
pub mod retry;
mod settings;
pub mod stream;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
mod ttl;

pub use args::{QueueArguments, QueueType};
pub use options::{QueueDeclaration, QueueOptions};
pub use paging::{MemorySplit, Paging};
pub use queue::{ConsumerRemoved, Persistence, Queue};
pub use settings::QueueSettings;
