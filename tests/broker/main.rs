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
mod close_races;
mod confirms_tx;
mod connection;
mod ctl;
mod errors;
mod exchanges;
mod ext_consumer_priorities;
mod ext_consumer_timeout;
mod ext_dead_letter_cycles;
mod ext_dead_lettering;
mod ext_delayed;
mod ext_direct_reply_to;
mod ext_half;
mod ext_length_limits;
mod ext_message_ttl;
mod ext_priority_queues;
mod ext_queue_expiry;
mod ext_retry;
mod ext_single_active_consumer;
mod frames;
mod hostile;
mod lifecycle;
mod management;
mod missing_objects;
mod queue_types;
mod queues;
mod quorum_dead_letter;
mod redeclare;
mod sender_selected;
mod streams;
mod tenancy;
mod tls;
