//! Every classic queue pages (issue #18): durable or not, with a dead-letter exchange, priorities,
//! a message TTL or a length limit, a queue keeps at most a bounded number of message bodies in
//! memory (`queue_page_threshold`, 5 here) and the rest in the store, and what clients see does
//! not change.
//!
//! - `shapes`: each kind of queue pages a backlog of a thousand messages and drains it in order
//!   (a priority queue highest priority first, FIFO within a level), with the right counts.
//! - `expiry_and_limits`: paged messages expire on time into their dead-letter queue, in order,
//!   with no consumer on the source; `x-max-length` and `x-max-length-bytes` with drop-head
//!   (dead-lettering the dropped as `maxlen`) and reject-publish hold while the backlog is paged.
//! - `restarts`: purging or deleting a paged queue of any kind leaves no message record behind;
//!   after a restart (SIGTERM or SIGKILL) only the persistent messages of a paged backlog come
//!   back, and a paged priority queue still delivers highest priority first.
//!
//! How a test sees paging: the management API's queue object carries RabbitMQ's `messages_ram`,
//! `messages_paged_out`, `message_bytes_ram` and `message_bytes_paged_out`. [`PagingChecks`]
//! collects what they say and reports it at the end of a test ([`PagingChecks::verify`]), after
//! what clients see (order, counts, expiry, dead letters, limits) has been checked: a test that
//! fails only there still proved the behaviour. A missing field fails like a wrong value.
//!
//! `shapes` and `expiry_and_limits` run against `WARREN_TEST_AMQP_URL` when it is set (e.g.
//! RabbitMQ 3.10.8, which pages by memory use, not by count: the paging fields are not checked
//! there); `restarts` always spawns warren.

mod expiry_and_limits;
mod restarts;
mod shapes;

use std::time::{Duration, Instant};

use amq_protocol::types::AMQPValue;
use lapin::options::BasicQosOptions;
use lapin::{BasicProperties, Channel, Connection};
use serde_json::Value;

use crate::common::*;
use crate::support::*;

/// Ready messages a queue keeps in memory before it pages.
pub const THRESHOLD: u64 = 5;
/// Every body is this long, so byte counts follow from message counts.
pub const BODY_LEN: usize = 100;
/// Publishers wait for the confirms of one chunk before the next.
pub const CHUNK: usize = 50;
/// `x-max-priority` of the priority queues: ten levels, 0 to 9.
pub const MAX_PRIORITY: u8 = 9;

/// The configuration of a paging broker.
pub fn config() -> String {
    format!("queue_page_threshold = {THRESHOLD}\n")
}

/// The broker for a test that does not restart: a warren process with [`config`], or the
/// external broker named by `WARREN_TEST_AMQP_URL`.
pub fn paging_broker() -> TestBroker {
    if external() {
        TestBroker::start()
    } else {
        TestBroker::spawn_with_config(&config())
    }
}

/// A node (restartable warren on a data directory of its own) running with [`config`].
pub fn paging_node() -> Node {
    Node::start_with_config(&config())
}

/// A connection and a channel in confirm mode on `broker`.
pub async fn confirm_session(broker: &TestBroker) -> (Connection, Channel) {
    let conn = broker.connect().await;
    let ch = confirm_channel_on(&conn).await;
    (conn, ch)
}

/// A message to publish.
#[derive(Clone, Debug)]
pub struct Msg {
    pub body: String,
    pub props: BasicProperties,
}

/// `prefix-NNNNNN-` padded with dots to [`BODY_LEN`] bytes.
pub fn body(prefix: &str, i: usize) -> String {
    format!("{:.<BODY_LEN$}", format!("{prefix}-{i:06}-"))
}

/// `n` messages `prefix-0 ..`, the i-th with `props(i)`.
pub fn messages(prefix: &str, n: usize, props: impl Fn(usize) -> BasicProperties) -> Vec<Msg> {
    (0..n)
        .map(|i| Msg {
            body: body(prefix, i),
            props: props(i),
        })
        .collect()
}

pub fn bodies_of(msgs: &[Msg]) -> Vec<String> {
    msgs.iter().map(|m| m.body.clone()).collect()
}

/// The order a priority queue delivers `msgs` in: highest priority first (above
/// [`MAX_PRIORITY`] counts as it), publishing order within a priority.
pub fn by_priority(msgs: &[Msg]) -> Vec<String> {
    let mut sorted: Vec<&Msg> = msgs.iter().collect();
    sorted.sort_by_key(|m| std::cmp::Reverse(m.props.priority().unwrap_or(0).min(MAX_PRIORITY)));
    sorted.into_iter().map(|m| m.body.clone()).collect()
}

/// Persistent, with priority `(i * 7) % 10`: every level, interleaved.
pub fn mixed_priority(i: usize) -> BasicProperties {
    persistent().with_priority(((i * 7) % 10) as u8)
}

/// Publishes `msgs` in chunks of [`CHUNK`], each chunk's confirms awaited before the next:
/// whether the broker acked each message.
pub async fn publish_chunked(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    msgs: &[Msg],
) -> Vec<bool> {
    let mut acked = Vec::with_capacity(msgs.len());
    for chunk in msgs.chunks(CHUNK) {
        let batch: Vec<(&str, BasicProperties)> = chunk
            .iter()
            .map(|m| (m.body.as_str(), m.props.clone()))
            .collect();
        let confirmations = publish_batch(ch, exchange, routing_key, &batch).await;
        acked.extend(confirmations.iter().map(|c| c.is_ack()));
    }
    acked
}

/// [`publish_chunked`] to `queue` through the default exchange; every message must be acked.
pub async fn publish_to_queue(ch: &Channel, queue: &str, msgs: &[Msg]) {
    let acked = publish_chunked(ch, "", queue, msgs).await;
    if let Some(i) = acked.iter().position(|a| !a) {
        panic!("{queue} refused {}", msgs[i].body);
    }
}

/// Asserts `got` is `expected`, naming the first difference rather than printing both lists.
#[track_caller]
pub fn assert_same_order(got: &[String], expected: &[String], what: &str) {
    if let Some(i) = (0..got.len().min(expected.len())).find(|&i| got[i] != expected[i]) {
        panic!(
            "{what}: message {i} is {:?}, expected {:?} ({} got, {} expected)",
            got[i],
            expected[i],
            got.len(),
            expected.len()
        );
    }
    assert_eq!(got.len(), expected.len(), "{what}: how many messages");
}

/// Drains `queue`, checking the count a passive declare reports on the way and that the
/// messages come in `expected` order: the first half through a consumer (prefetch 25, each
/// acked), whose channel then closes so that what it held unacked goes back to the queue, the
/// rest with basic.get.
pub async fn drain_in_order(conn: &Connection, ch: &Channel, queue: &str, expected: &[String]) {
    let n = expected.len();
    assert_eq!(message_count(ch, queue).await as usize, n, "{queue} before");
    let half = n / 2;
    let consumer_ch = conn.create_channel().await.expect("create channel");
    consumer_ch
        .basic_qos(25, BasicQosOptions::default())
        .await
        .expect("basic.qos");
    let mut consumer = consume_from(&consumer_ch, queue).await;
    let mut got = Vec::with_capacity(n);
    while got.len() < half {
        let d = next_delivery(&mut consumer).await;
        got.push(body_str(&d));
        d.ack(Default::default()).await.expect("basic.ack");
    }
    consumer_ch
        .close(200, "bye".into())
        .await
        .expect("close the consumer's channel");
    wait_message_count(ch, queue, (n - half) as u32).await;
    got.extend(bodies(&get_all(ch, queue).await));
    assert_same_order(&got, expected, queue);
    assert_eq!(message_count(ch, queue).await, 0, "{queue} after draining");
}

/// A durable fanout exchange with a durable queue bound to it, for dead letters:
/// (exchange, queue).
pub async fn dead_letter_target(ch: &Channel, prefix: &str) -> (String, String) {
    let dlx = unique(&format!("{prefix}-dlx"));
    declare_durable_exchange(ch, &dlx, lapin::ExchangeKind::Fanout).await;
    let target = unique(&format!("{prefix}-dlq"));
    declare_durable_queue(ch, &target).await;
    bind_queue(ch, &target, &dlx, "").await;
    (dlx, target)
}

/// (reason, count, queue) of a dead-lettered message's only `x-death` entry.
pub fn only_death(props: &BasicProperties) -> (String, i64, String) {
    let headers = props.headers().as_ref().expect("a dead letter has headers");
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
        panic!("no x-death array in {headers:?}");
    };
    let [AMQPValue::FieldTable(death)] = deaths.as_slice() else {
        panic!("not one x-death entry: {deaths:?}");
    };
    let text = |key: &str| match death.inner().get(key) {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        other => panic!("x-death {key} is {other:?}"),
    };
    let count = match death.inner().get("count") {
        Some(AMQPValue::LongLongInt(n)) => *n,
        other => panic!("x-death count is {other:?}"),
    };
    (text("reason"), count, text("queue"))
}

/// Asserts `got` are the dead letters of `expected` from `queue`, in order, each dead once for
/// `reason`.
#[track_caller]
pub fn assert_dead_letters(got: &[Got], expected: &[String], queue: &str, reason: &str) {
    assert_same_order(&bodies(got), expected, &format!("dead letters of {queue}"));
    for g in got {
        let death = only_death(&g.properties);
        assert_eq!(
            death,
            (reason.to_string(), 1, queue.to_string()),
            "{}",
            g.body
        );
    }
}

/// A kind of classic queue, and the messages it is tested with.
pub struct Shape {
    /// Names its queues.
    pub name: &'static str,
    pub durable: bool,
    pub args: fn() -> Vec<(&'static str, AMQPValue)>,
    /// The i-th message's properties.
    pub props: fn(usize) -> BasicProperties,
    /// `x-max-priority` is among the arguments.
    pub priority: bool,
}

impl Shape {
    /// Declares a queue of this shape; returns its name.
    pub async fn declare(&self, ch: &Channel) -> String {
        let q = unique(self.name);
        let options = if self.durable {
            durable()
        } else {
            Default::default()
        };
        declare_queue_as(ch, &q, options, table((self.args)())).await;
        q
    }

    pub fn messages(&self, n: usize) -> Vec<Msg> {
        messages(self.name, n, self.props)
    }

    /// The order the queue delivers `msgs` in.
    pub fn delivery_order(&self, msgs: &[Msg]) -> Vec<String> {
        if self.priority {
            by_priority(msgs)
        } else {
            bodies_of(msgs)
        }
    }

    /// The most ready messages with bodies in memory once the publisher is done: the threshold
    /// (per priority level), plus the last chunk (its store writes may still be in flight).
    pub fn ram_bound(&self) -> u64 {
        let levels = if self.priority {
            u64::from(MAX_PRIORITY) + 1
        } else {
            1
        };
        levels * THRESHOLD + CHUNK as u64
    }
}

fn no_args() -> Vec<(&'static str, AMQPValue)> {
    Vec::new()
}

/// An hour, in milliseconds.
const HOUR_MS: i32 = 3_600_000;

/// A durable queue, persistent messages: the one kind that paged before issue #18.
pub const PLAIN: Shape = Shape {
    name: "plain",
    durable: true,
    args: no_args,
    props: |_| persistent(),
    priority: false,
};

/// A durable queue with x-dead-letter-exchange.
pub const DEAD_LETTERING: Shape = Shape {
    name: "dead-lettering",
    durable: true,
    args: || vec![("x-dead-letter-exchange", long_str("paging-shapes-dlx"))],
    props: |_| persistent(),
    priority: false,
};

/// A durable priority queue, mixed priorities.
pub const PRIORITIES: Shape = Shape {
    name: "priorities",
    durable: true,
    args: || vec![("x-max-priority", AMQPValue::ShortShortUInt(MAX_PRIORITY))],
    props: mixed_priority,
    priority: true,
};

/// A durable queue, persistent messages expiring in an hour.
pub const MESSAGE_EXPIRATION: Shape = Shape {
    name: "message-expiration",
    durable: true,
    args: no_args,
    props: |_| persistent().with_expiration(HOUR_MS.to_string().into()),
    priority: false,
};

/// A durable queue with an x-message-ttl of an hour.
pub const QUEUE_TTL: Shape = Shape {
    name: "queue-ttl",
    durable: true,
    args: || vec![("x-message-ttl", AMQPValue::LongInt(HOUR_MS))],
    props: |_| persistent(),
    priority: false,
};

/// A durable queue with an x-max-length-bytes it stays under.
pub const BYTE_LIMITED: Shape = Shape {
    name: "byte-limited",
    durable: true,
    args: || vec![("x-max-length-bytes", AMQPValue::LongInt(100_000_000))],
    props: |_| persistent(),
    priority: false,
};

/// A non-durable queue, transient messages.
pub const TRANSIENT: Shape = Shape {
    name: "transient",
    durable: false,
    args: no_args,
    props: |_| transient(),
    priority: false,
};

/// A durable queue, transient messages.
pub const TRANSIENT_IN_DURABLE: Shape = Shape {
    name: "transient-in-durable",
    durable: true,
    args: no_args,
    props: |_| transient(),
    priority: false,
};

pub const ALL_SHAPES: [&Shape; 8] = [
    &PLAIN,
    &DEAD_LETTERING,
    &PRIORITIES,
    &MESSAGE_EXPIRATION,
    &QUEUE_TTL,
    &BYTE_LIMITED,
    &TRANSIENT,
    &TRANSIENT_IN_DURABLE,
];

/// Where a queue's ready messages are, as the management API says.
#[derive(Debug)]
struct Residence {
    ready: u64,
    ram: u64,
    paged_out: u64,
    bytes_ram: u64,
    bytes_paged_out: u64,
}

fn field(queue: &Value, name: &str) -> Result<u64, String> {
    queue[name]
        .as_u64()
        .ok_or_else(|| format!("the queue object has no {name} (it says {:?})", queue[name]))
}

impl Residence {
    fn of(queue: &Value) -> Result<Residence, String> {
        Ok(Residence {
            ready: field(queue, "messages_ready")?,
            ram: field(queue, "messages_ram")?,
            paged_out: field(queue, "messages_paged_out")?,
            bytes_ram: field(queue, "message_bytes_ram")?,
            bytes_paged_out: field(queue, "message_bytes_paged_out")?,
        })
    }

    /// What is wrong with it for a paged queue, if anything.
    fn fault(&self, ram_bound: u64) -> Option<String> {
        let len = BODY_LEN as u64;
        if self.paged_out == 0 {
            Some("nothing is paged out".into())
        } else if self.ram > ram_bound {
            Some(format!("more than {ram_bound} messages in memory"))
        } else if self.ram + self.paged_out != self.ready {
            Some("messages_ram + messages_paged_out is not messages_ready".into())
        } else if (self.bytes_ram, self.bytes_paged_out) != (self.ram * len, self.paged_out * len) {
            Some(format!(
                "the byte counts are not the message counts x {len}"
            ))
        } else {
            None
        }
    }
}

/// Observations of how a broker pages, checked at the end of a test ([`PagingChecks::verify`]).
#[derive(Default)]
pub struct PagingChecks {
    failures: Vec<String>,
}

impl PagingChecks {
    pub fn new() -> PagingChecks {
        PagingChecks::default()
    }

    /// Waits (up to [`WAIT`]) for `queue` on `broker` to be paged: some ready messages paged out,
    /// at most `ram_bound` in memory, every ready message in one of the two, and byte counts to
    /// match. Not checked on an external broker.
    pub async fn paged(&mut self, broker: &TestBroker, queue: &str, ram_bound: u64) {
        if broker.is_external() {
            return;
        }
        let deadline = Instant::now() + WAIT;
        let mut first = None;
        loop {
            let fault = match Residence::of(&queue_object(broker, queue)) {
                Err(missing) => {
                    self.failures.push(format!("{queue}: {missing}"));
                    return;
                }
                Ok(r) => match r.fault(ram_bound) {
                    None => return,
                    Some(fault) => (fault, r),
                },
            };
            if Instant::now() > deadline {
                let (fault, last) = fault;
                self.failures.push(format!(
                    "{queue} is not paged: {fault}; first seen {first:?}, last {last:?}"
                ));
                return;
            }
            first.get_or_insert(fault.1);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to 15 s: RabbitMQ updates these every 5 s) for the management API to report
    /// `message_bytes` = `expected` for `queue`. Checked on any broker.
    pub async fn message_bytes(&mut self, broker: &TestBroker, queue: &str, expected: u64) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let seen = queue_object(broker, queue)["message_bytes"].clone();
            if seen.as_u64() == Some(expected) {
                return;
            }
            // warren serves the queue object live: a missing field will not appear later.
            if Instant::now() > deadline || (seen.is_null() && !broker.is_external()) {
                self.failures.push(format!(
                    "{queue}: message_bytes {seen}, expected {expected}"
                ));
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fails the test with every observation that went wrong.
    pub fn verify(self) {
        assert!(
            self.failures.is_empty(),
            "the behaviour was right, but paging was not:\n{}",
            self.failures.join("\n")
        );
    }
}
