//! What the in-process queue and routing tests share: an in-memory vhost, the one way they
//! declare queues ([`declare`]), publishing through [`VHost::publish`], and a fake delivery
//! target ([`FakeTarget`]) that stands in for a channel — it records what the queue hands it
//! and can refuse deliveries while it is "full" (as a channel does when flow is off, its
//! channel-wide prefetch is used up or its write buffer is over its limit).
//!
//! Nothing here opens a socket or a store: a test builds its own vhost, so tests run in
//! parallel without sharing anything.

use std::sync::Arc;

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable, LongString};
use bytes::Bytes;
use parking_lot::Mutex;
use warren_protocol::{AmqpError, Properties, ShortStr};

use crate::broker::clock;
use crate::broker::consumer::{Consumer, DeliveryTarget};
use crate::broker::exchange::{Binding, Destination, ExchangeKind, ExchangeOptions};
use crate::broker::message::QueuedMessage;
use crate::broker::publish::{PublishOutcome, PublishRequest, Publisher};
use crate::broker::queue::{Queue, QueueOptions};
use crate::broker::vhost::VHost;

/// The connection every test consumer and declaration belongs to.
pub const CONNECTION: u64 = 1;

/// A fresh in-memory vhost `/` with the standard exchanges.
pub fn vhost() -> Arc<VHost> {
    VHost::new(
        "/",
        None,
        Default::default(),
        Default::default(),
        Default::default(),
        Default::default(),
    )
}

/// Declares a plain (non-durable, non-exclusive, not auto-delete) queue with these `x-*`
/// arguments. The only place the tests create queues, so a change to how queues are built
/// is absorbed here.
pub fn declare(vhost: &VHost, name: &str, arguments: &[(&str, AMQPValue)]) -> Arc<Queue> {
    let options = QueueOptions {
        durable: false,
        exclusive_owner: None,
        auto_delete: false,
        arguments: table(arguments),
    };
    vhost
        .declare_queue(name, options, false, CONNECTION)
        .unwrap_or_else(|e| panic!("declare {name}: {}", e.text))
        .queue
}

pub fn table(pairs: &[(&str, AMQPValue)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert((*k).into(), v.clone());
    }
    t
}

/// An integer argument or header value.
pub fn int(n: i64) -> AMQPValue {
    AMQPValue::LongLongInt(n)
}

/// A string argument or header value.
pub fn text(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// An array of strings (CC / BCC headers, x-death routing-keys).
pub fn texts(items: &[&str]) -> AMQPValue {
    let mut a = FieldArray::default();
    for s in items {
        a.push(text(s));
    }
    AMQPValue::FieldArray(a)
}

/// The `x-death` history of a dead letter's headers, newest first (fails the test if there is
/// none, or an entry is not a table).
pub fn x_death(headers: &FieldTable) -> Vec<FieldTable> {
    match headers.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a
            .as_slice()
            .iter()
            .map(|v| match v {
                AMQPValue::FieldTable(t) => t.clone(),
                other => panic!("x-death entry is not a table: {other:?}"),
            })
            .collect(),
        other => panic!("x-death missing or not an array: {other:?}"),
    }
}

pub fn short(s: &str) -> ShortStr {
    ShortStr::from_slice(s.as_bytes()).expect("a short string")
}

pub fn declare_exchange(
    vhost: &VHost,
    name: &str,
    kind: ExchangeKind,
    arguments: &[(&str, AMQPValue)],
) {
    let options = ExchangeOptions {
        kind,
        durable: false,
        auto_delete: false,
        internal: false,
        arguments: table(arguments),
    };
    vhost
        .declare_exchange(name, options, false)
        .unwrap_or_else(|e| panic!("declare exchange {name}: {}", e.text));
}

/// queue.bind.
pub fn bind(vhost: &VHost, exchange: &str, queue: &str, key: &str) {
    let binding = Binding {
        destination: Destination::Queue(Arc::from(queue)),
        routing_key: key.to_string(),
        arguments: FieldTable::default(),
    };
    vhost
        .bind(exchange, binding, CONNECTION)
        .unwrap_or_else(|e| panic!("bind {queue} to {exchange}: {}", e.text));
}

/// Publishes one message as a client would (not mandatory); returns how many queues took it.
pub fn publish(
    vhost: &VHost,
    exchange: &str,
    routing_key: &str,
    body: &str,
    properties: BasicProperties,
) -> usize {
    publish_request(vhost, exchange, routing_key, body, properties, false).routed
}

/// Publishes one message; the whole outcome (returned, rejected).
pub fn publish_request(
    vhost: &VHost,
    exchange: &str,
    routing_key: &str,
    body: &str,
    properties: BasicProperties,
    mandatory: bool,
) -> PublishOutcome {
    let request = PublishRequest {
        exchange: short(exchange),
        routing_key: short(routing_key),
        mandatory,
        properties: Properties::from_basic(&properties),
        body: Bytes::from(body.as_bytes().to_vec()),
        user: guest(),
        reply_address: None,
    };
    vhost
        .publish(request, &mut Publisher::default())
        .unwrap_or_else(|e| panic!("publish to {exchange:?}/{routing_key:?}: {}", e.text))
}

/// Publishes `body` to `queue` through the default exchange; asserts that it was routed.
pub fn send(vhost: &VHost, queue: &str, body: &str) {
    send_with(vhost, queue, body, BasicProperties::default());
}

pub fn send_with(vhost: &VHost, queue: &str, body: &str, properties: BasicProperties) {
    let _ = try_send_with(vhost, queue, body, properties);
}

/// [`send`], for the outcome: whether a full queue refused the message.
pub fn try_send(vhost: &VHost, queue: &str, body: &str) -> PublishOutcome {
    try_send_with(vhost, queue, body, BasicProperties::default())
}

pub fn try_send_with(
    vhost: &VHost,
    queue: &str,
    body: &str,
    properties: BasicProperties,
) -> PublishOutcome {
    let outcome = publish_request(vhost, "", queue, body, properties, false);
    assert_eq!(outcome.routed, 1, "{body} reached {queue}");
    outcome
}

/// Publishes `m<i>` for each `i` in `range` to `queue`, in order.
pub fn send_numbered(vhost: &VHost, queue: &str, range: std::ops::Range<u32>) {
    for i in range {
        send(vhost, queue, &format!("m{i}"));
    }
}

/// A message with this `priority` property.
pub fn priority(p: u8) -> BasicProperties {
    BasicProperties::default().with_priority(p)
}

/// A message with this `expiration` property.
pub fn expiring(ms: &str) -> BasicProperties {
    BasicProperties::default().with_expiration(ms.into())
}

pub fn body(m: &QueuedMessage) -> String {
    String::from_utf8(m.message.body.to_vec()).expect("utf-8 body")
}

pub fn bodies(ms: &[QueuedMessage]) -> Vec<String> {
    ms.iter().map(body).collect()
}

/// Takes every ready message with basic.get no-ack, in delivery order.
pub fn drain(queue: &Arc<Queue>) -> Vec<String> {
    std::iter::from_fn(|| queue.get(true).map(|(m, _)| body(&m))).collect()
}

/// Housekeeping as if `ms` milliseconds had passed: expires the head of `queue` at rest.
pub fn expire_after(queue: &Arc<Queue>, ms: u64) {
    let _ = queue.expire_at_rest(clock::now_ms() + ms);
}

/// One message handed to a consumer through a [`FakeTarget`].
#[derive(Clone)]
pub struct Delivered {
    pub consumer: String,
    pub message: QueuedMessage,
}

/// A channel as a queue sees it: takes deliveries and records them, unless it is full.
#[derive(Default)]
pub struct FakeTarget {
    state: Mutex<TargetState>,
}

#[derive(Default)]
struct TargetState {
    /// Delivered and not yet taken by the test (see [`FakeTarget::take_for`]).
    delivered: Vec<Delivered>,
    /// Refuse every delivery while set.
    full: bool,
    /// Take this many more, then refuse (a channel-wide window); `None` = no limit.
    room: Option<usize>,
    refused: usize,
    cancelled: Vec<String>,
}

impl FakeTarget {
    pub fn new() -> Arc<Self> {
        Arc::new(FakeTarget::default())
    }

    /// While full, every delivery is refused and handed back to the queue.
    pub fn set_full(&self, full: bool) {
        self.state.lock().full = full;
    }

    /// Accepts `n` more deliveries, then refuses until given room again.
    pub fn set_room(&self, n: usize) {
        self.state.lock().room = Some(n);
    }

    /// How many deliveries were refused so far.
    pub fn refused(&self) -> usize {
        self.state.lock().refused
    }

    /// Consumer tags the queue cancelled (it was deleted).
    pub fn cancelled(&self) -> Vec<String> {
        self.state.lock().cancelled.clone()
    }

    /// Every delivery not yet taken, in the order they came, as (consumer tag, body).
    pub fn log(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .delivered
            .iter()
            .map(|d| (d.consumer.clone(), body(&d.message)))
            .collect()
    }

    /// Removes and returns the deliveries to `consumer` not yet taken.
    pub fn take_for(&self, consumer: &str) -> Vec<QueuedMessage> {
        let mut st = self.state.lock();
        let (mine, rest) = std::mem::take(&mut st.delivered)
            .into_iter()
            .partition(|d| d.consumer == consumer);
        st.delivered = rest;
        mine.into_iter().map(|d: Delivered| d.message).collect()
    }
}

impl DeliveryTarget for FakeTarget {
    fn try_deliver(
        &self,
        consumer: &Arc<Consumer>,
        _queue: &Arc<Queue>,
        message: QueuedMessage,
    ) -> Result<(), QueuedMessage> {
        let mut st = self.state.lock();
        if st.full || st.room == Some(0) {
            st.refused += 1;
            return Err(message);
        }
        if let Some(room) = &mut st.room {
            *room -= 1;
        }
        st.delivered.push(Delivered {
            consumer: consumer.tag.clone(),
            message,
        });
        Ok(())
    }

    fn cancelled_by_broker(&self, consumer_tag: &str) {
        self.state.lock().cancelled.push(consumer_tag.to_string());
    }
}

/// basic.consume options for [`consume`].
pub struct ConsumeSpec {
    queue: Arc<Queue>,
    tag: String,
    no_ack: bool,
    exclusive: bool,
    prefetch: u32,
    priority: i32,
    target: Option<Arc<FakeTarget>>,
}

/// Starts describing a consumer of `queue` (ack mode, no prefetch limit, priority 0, on its own
/// fake channel); finish with [`ConsumeSpec::attach`].
pub fn consume(queue: &Arc<Queue>, tag: &str) -> ConsumeSpec {
    ConsumeSpec {
        queue: queue.clone(),
        tag: tag.to_string(),
        no_ack: false,
        exclusive: false,
        prefetch: 0,
        priority: 0,
        target: None,
    }
}

impl ConsumeSpec {
    pub fn prefetch(mut self, n: u32) -> Self {
        self.prefetch = n;
        self
    }

    /// `x-priority`.
    pub fn priority(mut self, p: i32) -> Self {
        self.priority = p;
        self
    }

    pub fn no_ack(mut self) -> Self {
        self.no_ack = true;
        self
    }

    pub fn exclusive(mut self) -> Self {
        self.exclusive = true;
        self
    }

    /// Consume on this (shared) channel rather than a channel of its own.
    pub fn on(mut self, target: &Arc<FakeTarget>) -> Self {
        self.target = Some(target.clone());
        self
    }

    /// Adds the consumer as basic.consume does, then lets the queue deliver (consume-ok first,
    /// then deliveries).
    pub fn try_attach(self) -> Result<TestConsumer, AmqpError> {
        let target = self.target.unwrap_or_default();
        let channel: Arc<dyn DeliveryTarget> = target.clone();
        let consumer = Arc::new(Consumer::new(
            self.tag,
            self.no_ack,
            self.exclusive,
            self.prefetch,
            self.priority,
            CONNECTION,
            channel,
        ));
        self.queue.add_consumer(consumer.clone())?;
        self.queue.resume(std::slice::from_ref(&consumer));
        Ok(TestConsumer {
            queue: self.queue,
            consumer,
            target,
        })
    }

    pub fn attach(self) -> TestConsumer {
        let tag = self.tag.clone();
        self.try_attach()
            .unwrap_or_else(|e| panic!("consume as {tag}: {}", e.text))
    }
}

/// A consumer attached to a queue, with its fake channel.
pub struct TestConsumer {
    pub queue: Arc<Queue>,
    pub consumer: Arc<Consumer>,
    pub target: Arc<FakeTarget>,
}

impl TestConsumer {
    pub fn tag(&self) -> &str {
        &self.consumer.tag
    }

    /// Removes and returns what this consumer was handed and the test has not taken yet.
    pub fn take(&self) -> Vec<QueuedMessage> {
        self.target.take_for(&self.consumer.tag)
    }

    /// The bodies of [`TestConsumer::take`].
    pub fn take_bodies(&self) -> Vec<String> {
        bodies(&self.take())
    }

    /// basic.ack of these deliveries.
    pub fn ack(&self, messages: &[QueuedMessage]) {
        self.queue.settle(Some(&self.consumer), messages);
    }

    /// basic.reject / basic.nack with requeue=false.
    pub fn reject(&self, messages: &[QueuedMessage]) {
        self.queue.reject(Some(&self.consumer), messages);
    }

    /// basic.reject / basic.nack with requeue=true (or basic.recover, or the channel closing).
    pub fn requeue(&self, messages: Vec<QueuedMessage>) {
        self.queue.requeue(Some(&self.consumer), messages);
    }

    /// basic.cancel.
    pub fn cancel(&self) {
        self.queue.remove_consumer(&self.consumer.tag, CONNECTION);
    }

    /// The channel closes: the consumer goes, then its unacked deliveries are requeued.
    pub fn close(&self, unacked: Vec<QueuedMessage>) {
        self.cancel();
        self.requeue(unacked);
    }
}

/// The user test publishes come from: `guest`, no tags.
pub fn guest() -> &'static crate::auth::User {
    static GUEST: std::sync::OnceLock<crate::auth::User> = std::sync::OnceLock::new();
    GUEST.get_or_init(|| crate::auth::User::new("guest", None, &[]))
}
