//! Integration tests for the warren AMQP 0-9-1 broker.
//!
//! Every test starts its own broker process (`TestBroker::start()`), or, when
//! `WARREN_TEST_AMQP_URL` is set, talks to that broker instead (e.g. a
//! reference RabbitMQ 3.10), so the whole suite can be checked against
//! RabbitMQ: every assertion here is what RabbitMQ does.
//!
//! Set `WARREN_TEST_LOG=1` to see the spawned broker's stderr.

mod common;

mod alarms;
mod basic;
mod confirms_tx;
mod connection;
mod errors;
mod exchanges;
mod frames;
mod lifecycle;
mod queues;
