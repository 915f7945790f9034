//! Streams (`x-queue-type: stream`, issue #14) as RabbitMQ 3.10.8 declares, refuses and
//! delivers them over AMQP 0-9-1. Every assertion is RabbitMQ's answer (probed; the facts are in
//! `/work/stream-probe.txt`, outside the repository), and every test but the kill -9 one runs
//! against the reference broker too (`WARREN_TEST_AMQP_URL`).
//!
//! - [`declare`]: declaring, the properties, arguments and values a stream refuses (and in what
//!   order), redeclaring, and the management API's view.
//! - [`refused`]: what a stream refuses once it exists: basic.get, auto-ack, a consumer without
//!   its own prefetch, nack and reject, purge, and `x-stream-offset` on other queue types.
//! - [`offsets`]: where a consumer starts for each form of `x-stream-offset`.
//! - [`reading`]: the deliveries themselves (the `x-stream-offset` header, properties,
//!   redelivered, prefetch windows, independent consumers), consumption that removes nothing,
//!   publishing, retention by whole segments, deleting under a consumer, and (warren only) a
//!   kill -9.
//!
//! Every stream is deleted at the end of its test: streams are durable, never exclusive or
//! auto-delete.

mod declare;
mod offsets;
mod reading;
mod refused;

use std::ops::Range;
use std::time::Duration;

use amq_protocol::types::{AMQPValue, FieldTable};
use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::{Channel, Connection, Consumer, Event};

use crate::common::*;

/// How long a test waits to see that nothing (more) is delivered.
const QUIET: Duration = Duration::from_millis(400);

/// `x-queue-type: stream` plus `extra`.
fn stream_args(extra: Vec<(&str, AMQPValue)>) -> FieldTable {
    let mut args = table(extra);
    args.insert("x-queue-type".into(), long_str("stream"));
    args
}

/// Declares a durable stream named after `prefix` with `extra` arguments; returns its name.
async fn declare_stream(ch: &Channel, prefix: &str, extra: Vec<(&str, AMQPValue)>) -> String {
    let name = unique(prefix);
    declare_durable_queue_with(ch, &name, stream_args(extra)).await;
    name
}

/// Deletes `queue` on a connection of its own (the test's may be closed by then).
async fn delete_stream(broker: &TestBroker, queue: &str) {
    let (_conn, ch) = broker.channel().await;
    delete_queue(&ch, queue).await;
}

/// Publishes "m{i}" for each `i` in `numbers`, each waiting for its confirm (so each is a chunk
/// of its own in RabbitMQ's log), on a channel of their own.
async fn publish_each_confirmed(conn: &Connection, queue: &str, numbers: Range<usize>) {
    let ch = conn.create_channel().await.expect("create channel");
    ch.confirm_select(Default::default())
        .await
        .expect("confirm.select");
    for i in numbers {
        publish_acked(&ch, "", queue, format!("m{i}").as_bytes(), transient()).await;
    }
}

/// A stream consumer on `ch` (per-consumer prefetch `prefetch` set first) starting at
/// `offset` (None: no `x-stream-offset` argument).
async fn reader(ch: &Channel, queue: &str, offset: Option<AMQPValue>, prefetch: u16) -> Consumer {
    ch.basic_qos(prefetch, BasicQosOptions { global: false })
        .await
        .expect("basic.qos");
    ch.basic_consume(
        queue.into(),
        "".into(),
        BasicConsumeOptions::default(),
        offset_arg(offset),
    )
    .await
    .unwrap_or_else(|e| panic!("consume {queue}: {e:?}"))
}

/// The consumer arguments with `x-stream-offset` = `offset`, if any.
fn offset_arg(offset: Option<AMQPValue>) -> FieldTable {
    match offset {
        Some(v) => table(vec![("x-stream-offset", v)]),
        None => FieldTable::default(),
    }
}

/// A delivery's `x-stream-offset` header, which must be a signed 64-bit integer ('l').
fn offset_of(d: &Delivery) -> i64 {
    let headers = d
        .properties
        .headers()
        .as_ref()
        .expect("a stream delivery has headers");
    match headers.inner().get("x-stream-offset") {
        Some(AMQPValue::LongLongInt(n)) => *n,
        other => panic!("x-stream-offset must be a long-long ('l'), got {other:?}"),
    }
}

/// (offset, body) of each of the next `n` deliveries, acking each.
async fn read(consumer: &mut Consumer, n: usize) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let d = next_delivery(consumer).await;
        d.ack(BasicAckOptions::default()).await.expect("basic.ack");
        out.push((offset_of(&d), body_str(&d)));
    }
    out
}

/// Like [`read`], then asserts nothing more comes for [`QUIET`].
async fn read_exactly(consumer: &mut Consumer, n: usize) -> Vec<(i64, String)> {
    let got = read(consumer, n).await;
    assert_no_delivery(consumer, QUIET).await;
    got
}

/// (offset, "m{offset}") for each offset in `offsets`: what a stream filled by
/// [`publish_each_confirmed`] holds (with the default segment size offsets are 0, 1, 2, ...).
fn numbered(offsets: Range<i64>) -> Vec<(i64, String)> {
    offsets.map(|i| (i, format!("m{i}"))).collect()
}

/// A stream named after `prefix` holding m0 .. m{n-1} at offsets 0 .. n-1.
async fn filled_stream(broker: &TestBroker, prefix: &str, n: usize) -> String {
    let (conn, ch) = broker.channel().await;
    let q = declare_stream(&ch, prefix, vec![]).await;
    publish_each_confirmed(&conn, &q, 0..n).await;
    q
}

/// Watches a connection for the broker closing it: the (code, text) of its connection.close.
struct ConnectionErrorWatch(std::pin::Pin<Box<dyn futures_lite::Stream<Item = Event> + Send>>);

impl ConnectionErrorWatch {
    fn new(conn: &Connection) -> ConnectionErrorWatch {
        ConnectionErrorWatch(Box::pin(conn.events_listener()))
    }

    async fn error(mut self) -> (u16, String) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.0.next()).await {
                Err(_) => panic!("the broker did not close the connection within {WAIT:?}"),
                Ok(None) => panic!("connection events ended without an error"),
                Ok(Some(Event::Error(e))) => {
                    return amqp_error(&e).unwrap_or_else(|| panic!("non-AMQP error {e:?}"));
                }
                Ok(Some(_)) => continue,
            }
        }
    }
}

/// RabbitMQ's 540 for an operation streams do not support (its text says "queues queue").
fn not_supported_by_streams(what: &str, queue: &str) -> (u16, String) {
    not_implemented(format!(
        "{what} not supported by stream queues queue '{queue}' in vhost '/'"
    ))
}

/// 541 INTERNAL_ERROR: what RabbitMQ 3.10 answers when it crashes on a value it does not parse.
fn internal_error() -> (u16, String) {
    (541, "INTERNAL_ERROR".to_string())
}
