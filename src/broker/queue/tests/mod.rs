//! The queue core without sockets: each test declares queues in its own in-memory vhost,
//! publishes through [`VHost::publish`](crate::broker::vhost::VHost::publish) and consumes
//! through a fake channel ([`FakeTarget`](super::test_support::FakeTarget)), then asserts exact
//! orders, counts and headers. The behaviour pinned here is RabbitMQ 3.10's, as the TCP tests in
//! `tests/broker/ext_*.rs` check it end to end.

mod consumers;
mod counts;
mod dead_letter;
mod fifo_and_priority;
mod limits;
mod policies;
mod requeue_and_purge;
mod single_active_consumer;
mod ttl;
