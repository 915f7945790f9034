//! The management HTTP API: its answers against what RabbitMQ 3.10 answers (`calls.json`), and
//! what its changes do to the broker.

mod message_stats;
mod policies;
mod prometheus;
mod rabbitmq_shapes;
mod tenancy;
mod ui;
