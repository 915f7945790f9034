//! Direct reply-to (`amq.rabbitmq.reply-to`), checked against RabbitMQ 3.10.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::FieldTable;
use lapin::{Channel, options::BasicConsumeOptions};

use crate::common::*;

const REPLY_TO: &str = "amq.rabbitmq.reply-to";

async fn consume_reply_to(ch: &Channel, no_ack: bool) -> lapin::Result<lapin::Consumer> {
    ch.basic_consume(
        REPLY_TO.into(),
        "".into(),
        BasicConsumeOptions {
            no_ack,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
}

/// Publishes `body` to queue `q` with reply_to = amq.rabbitmq.reply-to.
async fn publish_request(requester: &Channel, q: &str, body: &[u8]) {
    let props = BasicProperties::default().with_reply_to(REPLY_TO.into());
    publish_props(requester, "", q, body, props).await;
}

/// Requester publishes a request with reply_to = amq.rabbitmq.reply-to to a
/// fresh server queue; returns (server queue, reply_to the server sees).
async fn request(requester: &Channel, server: &Channel, body: &[u8]) -> (String, String) {
    let q = unique("rpc-server");
    declare_queue(server, &q).await;
    publish_request(requester, &q, body).await;
    sync(requester).await;
    let m = get_message_no_ack(server, &q)
        .await
        .expect("request reached the server queue");
    assert_eq!(m.delivery.data, body);
    let reply_to = m
        .delivery
        .properties
        .reply_to()
        .as_ref()
        .expect("request has reply_to")
        .as_str()
        .to_string();
    (q, reply_to)
}

#[tokio::test]
async fn capability_direct_reply_to_is_advertised() {
    assert_capability_advertised("direct_reply_to").await;
}

#[tokio::test]
async fn reply_to_is_rewritten_and_reply_reaches_the_requester() {
    let (broker, _rconn, requester) = broker_with_channel().await;
    let (_sconn, server) = broker.channel().await;
    let mut replies = consume_reply_to(&requester, true)
        .await
        .expect("consume reply-to");
    let (_q, reply_to) = request(&requester, &server, b"ping").await;
    let suffix = reply_to
        .strip_prefix("amq.rabbitmq.reply-to.")
        .unwrap_or_else(|| panic!("reply_to not rewritten: {reply_to:?}"));
    assert!(!suffix.is_empty());
    let props = BasicProperties::default().with_correlation_id("c-1".into());
    publish_props(&server, "", &reply_to, b"pong", props).await;
    let d = next_delivery(&mut replies).await;
    assert_eq!(d.data, b"pong");
    assert_eq!(d.exchange.as_str(), "");
    assert_eq!(d.routing_key.as_str(), reply_to);
    assert!(!d.redelivered);
    assert_eq!(
        d.properties.correlation_id().as_ref().map(|s| s.as_str()),
        Some("c-1")
    );
}

#[tokio::test]
async fn each_request_on_the_channel_gets_a_working_reply_address() {
    let (broker, _rconn, requester) = broker_with_channel().await;
    let (_sconn, server) = broker.channel().await;
    let mut replies = consume_reply_to(&requester, true).await.unwrap();
    let (_, a) = request(&requester, &server, b"one").await;
    let (_, b) = request(&requester, &server, b"two").await;
    publish(&server, "", &b, b"reply-two").await;
    publish(&server, "", &a, b"reply-one").await;
    assert_eq!(next_delivery(&mut replies).await.data, b"reply-two");
    assert_eq!(next_delivery(&mut replies).await.data, b"reply-one");
}

#[tokio::test]
async fn consuming_reply_to_without_no_ack_is_406() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    assert_eq!(
        expect_amqp_error(consume_reply_to(&ch, false).await),
        precondition_failed("reply consumer cannot acknowledge")
    );
}

#[tokio::test]
async fn consuming_reply_to_twice_on_a_channel_is_406() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let _first = consume_reply_to(&ch, true).await.unwrap();
    assert_eq!(
        expect_amqp_error(consume_reply_to(&ch, true).await),
        precondition_failed("reply consumer already set")
    );
}

#[tokio::test]
async fn publishing_with_reply_to_without_reply_consumer_is_406() {
    let (_broker, _conn, ch, q) = broker_with_queue("rpc-noconsumer").await;
    let watch = ChannelErrorWatch::new(&ch).await;
    publish_request(&ch, &q, b"req").await;
    assert_eq!(
        watch.error().await,
        precondition_failed("fast reply consumer does not exist")
    );
}

#[tokio::test]
async fn reply_to_an_unknown_reply_address_is_silently_dropped() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    publish(&ch, "", "amq.rabbitmq.reply-to.garbage", b"lost").await;
    sync(&ch).await;
}

#[tokio::test]
async fn reply_after_the_requester_cancelled_is_silently_dropped() {
    let (broker, _rconn, requester) = broker_with_channel().await;
    let (_sconn, server) = broker.channel().await;
    let replies = consume_reply_to(&requester, true).await.unwrap();
    let (_, reply_to) = request(&requester, &server, b"req").await;
    requester
        .basic_cancel(replies.tag(), Default::default())
        .await
        .unwrap();
    publish(&server, "", &reply_to, b"late").await;
    sync(&server).await;
}
