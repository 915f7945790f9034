//! Messages through lapin: publish, basic.get, consume, count, and wait for what the broker
//! does asynchronously.

use std::ops::Range;
use std::time::{Duration, Instant};

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::FieldTable;
use futures_lite::StreamExt;
use lapin::message::{BasicGetMessage, Delivery};
use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicRejectOptions,
};
use lapin::{Channel, Confirmation, Consumer};

use super::{WAIT, declare_queue_passive, expect_amqp_error};

/// delivery_mode 2: a message that survives a restart in a durable queue.
pub fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

/// delivery_mode 1.
pub fn transient() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(1)
}

/// Publishes `body` without properties and waits until lapin sent it.
pub async fn publish(ch: &Channel, exchange: &str, routing_key: &str, body: &[u8]) {
    publish_props(ch, exchange, routing_key, body, BasicProperties::default()).await
}

pub async fn publish_props(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    // The PublisherConfirm is dropped: without confirm.select it resolves
    // immediately; with it, wait_for_confirms collects it.
    drop(
        ch.basic_publish(
            exchange.into(),
            routing_key.into(),
            Default::default(),
            body,
            props,
        )
        .await
        .expect("basic.publish"),
    );
}

/// Publishes on a channel in confirm mode and waits (at most [`WAIT`]) for the broker's confirm.
pub async fn publish_confirmed(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) -> Confirmation {
    publish_and_confirm(ch, exchange, routing_key, false, body, props).await
}

/// Like [`publish_confirmed`] with `mandatory`: an unroutable message comes back as a
/// basic.return before its confirm ([`Confirmation::take_message`]).
pub async fn publish_mandatory_confirmed(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) -> Confirmation {
    publish_and_confirm(ch, exchange, routing_key, true, body, props).await
}

async fn publish_and_confirm(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    mandatory: bool,
    body: &[u8],
    props: BasicProperties,
) -> Confirmation {
    let options = BasicPublishOptions {
        mandatory,
        ..Default::default()
    };
    let confirm = ch
        .basic_publish(exchange.into(), routing_key.into(), options, body, props)
        .await
        .expect("basic.publish");
    tokio::time::timeout(WAIT, confirm)
        .await
        .expect("no publisher confirm in time")
        .expect("publisher confirm")
}

/// Publishes on a channel in confirm mode and asserts the broker acks it.
pub async fn publish_acked(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    let confirmation = publish_confirmed(ch, exchange, routing_key, body, props).await;
    assert!(
        confirmation.is_ack(),
        "broker nacked {:?}: {confirmation:?}",
        String::from_utf8_lossy(body)
    );
}

/// Publishes bodies "m{i}" for each `i` in `numbers` to `queue` through the default exchange.
pub async fn publish_numbered(ch: &Channel, queue: &str, numbers: Range<usize>) {
    for i in numbers {
        publish(ch, "", queue, format!("m{i}").as_bytes()).await;
    }
}

/// Publishes "m0" … "m{n-1}" to `queue` and waits until the broker has routed them.
pub async fn publish_n(ch: &Channel, queue: &str, n: usize) {
    publish_numbered(ch, queue, 0..n).await;
    sync(ch).await;
}

/// Publishing is asynchronous: a round-trip on the same channel guarantees
/// the broker has processed everything published before it (RabbitMQ
/// processes a channel's methods in order; routing is done by then).
/// The round-trip is a passive declare of amq.direct, which changes nothing
/// (unlike e.g. basic.qos, which would reset the channel's prefetch).
pub async fn sync(ch: &Channel) {
    ch.exchange_declare(
        "amq.direct".into(),
        lapin::ExchangeKind::Direct,
        lapin::options::ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("sync round-trip (passive declare of amq.direct)");
}

/// basic.get in ack mode: the message stays unacked until acked, rejected or requeued.
pub async fn get_message(ch: &Channel, queue: &str) -> Option<BasicGetMessage> {
    basic_get(ch, queue, false).await
}

/// basic.get with no-ack: the message is gone once delivered.
pub async fn get_message_no_ack(ch: &Channel, queue: &str) -> Option<BasicGetMessage> {
    basic_get(ch, queue, true).await
}

async fn basic_get(ch: &Channel, queue: &str, no_ack: bool) -> Option<BasicGetMessage> {
    ch.basic_get(queue.into(), BasicGetOptions { no_ack })
        .await
        .expect("basic.get")
}

/// basic.get (ack mode) that must fail: the (code, text) of the error.
pub async fn get_error(ch: &Channel, queue: &str) -> (u16, String) {
    expect_amqp_error(ch.basic_get(queue.into(), BasicGetOptions::default()).await)
}

/// basic.get with no-ack; returns the body, or None on get-empty.
pub async fn get_body(ch: &Channel, queue: &str) -> Option<Vec<u8>> {
    get_message_no_ack(ch, queue).await.map(|m| m.delivery.data)
}

/// Drains a queue with no-ack basic.get and returns the bodies as strings.
pub async fn drain_bodies(ch: &Channel, queue: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(body) = get_body(ch, queue).await {
        out.push(String::from_utf8(body).unwrap());
        assert!(out.len() < 10_000, "queue {queue} never drains");
    }
    out
}

/// Polls basic.get (no-ack) until a message arrives in `queue` (dead-lettered, expired into
/// it, …), failing the test after [`WAIT`].
pub async fn wait_for_message(ch: &Channel, queue: &str) -> BasicGetMessage {
    poll_get(ch, queue, true).await
}

/// Like [`wait_for_message`], but in ack mode: the message stays unacked.
pub async fn wait_for_message_to_ack(ch: &Channel, queue: &str) -> BasicGetMessage {
    poll_get(ch, queue, false).await
}

async fn poll_get(ch: &Channel, queue: &str, no_ack: bool) -> BasicGetMessage {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(m) = basic_get(ch, queue, no_ack).await {
            return m;
        }
        assert!(Instant::now() < deadline, "nothing arrived in {queue}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Takes the next message of `queue` (waiting for it, ack mode) and rejects it without requeue.
pub async fn get_and_reject(ch: &Channel, queue: &str) {
    let m = wait_for_message_to_ack(ch, queue).await;
    m.delivery
        .reject(BasicRejectOptions { requeue: false })
        .await
        .expect("basic.reject");
}

/// A consumer (server-named tag) in ack mode: deliveries stay unacked until acked.
pub async fn consume_from(ch: &Channel, queue: &str) -> Consumer {
    consume_with(ch, queue, BasicConsumeOptions::default()).await
}

/// A no-ack consumer (server-named tag): deliveries are settled as they are sent.
pub async fn consume_no_ack(ch: &Channel, queue: &str) -> Consumer {
    let options = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    consume_with(ch, queue, options).await
}

async fn consume_with(ch: &Channel, queue: &str, options: BasicConsumeOptions) -> Consumer {
    ch.basic_consume(queue.into(), "".into(), options, FieldTable::default())
        .await
        .unwrap_or_else(|e| panic!("consume {queue}: {e:?}"))
}

/// basic.consume (server-named tag) that must fail: the (code, text) of the error.
pub async fn consume_error(
    ch: &Channel,
    queue: &str,
    options: BasicConsumeOptions,
    args: FieldTable,
) -> (u16, String) {
    expect_amqp_error(
        ch.basic_consume(queue.into(), "".into(), options, args)
            .await,
    )
}

/// A delivery's body as a string.
pub fn body_str(d: &Delivery) -> String {
    String::from_utf8(d.data.clone()).unwrap()
}

/// Current message count of a queue (passive declare).
pub async fn message_count(ch: &Channel, queue: &str) -> u32 {
    declare_queue_passive(ch, queue)
        .await
        .unwrap_or_else(|e| panic!("passive declare {queue}: {e:?}"))
        .message_count()
}

/// Waits until a queue holds `n` ready messages (routing/requeue from other
/// channels or connections is asynchronous with respect to this channel).
pub async fn wait_message_count(ch: &Channel, queue: &str, n: u32) {
    wait_message_count_within(ch, queue, n, WAIT).await
}

/// Polls the ready count (passive declare) until it is `n`, for at most `within`.
pub async fn wait_message_count_within(ch: &Channel, queue: &str, n: u32, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let c = message_count(ch, queue).await;
        if c == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queue {queue} still has {c} messages after {within:?}, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Next delivery of a consumer, failing the test after `WAIT`.
pub async fn next_delivery(consumer: &mut Consumer) -> Delivery {
    match tokio::time::timeout(WAIT, consumer.next()).await {
        Err(_) => panic!("no delivery within {WAIT:?}"),
        Ok(None) => panic!("consumer ended instead of delivering"),
        Ok(Some(Err(e))) => panic!("consumer error: {e:?}"),
        Ok(Some(Ok(d))) => d,
    }
}

/// Collects exactly `n` deliveries, acking none.
pub async fn next_deliveries(consumer: &mut Consumer, n: usize) -> Vec<Delivery> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(next_delivery(consumer).await);
    }
    out
}

/// Asserts the consumer gets nothing for `wait`.
pub async fn assert_no_delivery(consumer: &mut Consumer, wait: Duration) {
    if let Ok(Some(item)) = tokio::time::timeout(wait, consumer.next()).await {
        match item {
            Ok(d) => panic!("unexpected delivery {:?}", String::from_utf8_lossy(&d.data)),
            Err(e) => panic!("unexpected consumer error {e:?}"),
        }
    }
}

/// Asserts the consumer's stream ends (the broker cancelled it, or the client did) within
/// [`WAIT`], with nothing delivered first.
pub async fn assert_consumer_ends(consumer: &mut Consumer, why: &str) {
    match tokio::time::timeout(WAIT, consumer.next()).await {
        Ok(None) => {}
        other => panic!("{why}, got {other:?}"),
    }
}
