//! Message TTL: the `x-message-ttl` queue argument and the per-message
//! `expiration` property (checked against RabbitMQ 3.10).

use std::time::Duration;

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable};

use crate::common::*;

/// Queue arguments: `x-message-ttl` if `ttl` is set, else none.
fn message_ttl(ttl: Option<i32>) -> FieldTable {
    match ttl {
        Some(t) => table(vec![("x-message-ttl", AMQPValue::LongInt(t))]),
        None => FieldTable::default(),
    }
}

fn expiring(ms: &str) -> BasicProperties {
    BasicProperties::default().with_expiration(ms.into())
}

#[tokio::test]
async fn queue_ttl_expired_message_is_not_returned_by_basic_get() {
    let (_broker, _conn, ch, q) = broker_with_queue_with("ttl-get", message_ttl(Some(200))).await;
    publish(&ch, "", &q, b"old").await;
    sync(&ch).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get_body(&ch, &q).await, None);
    // A fresh message is still delivered normally.
    publish(&ch, "", &q, b"new").await;
    sync(&ch).await;
    assert_eq!(get_body(&ch, &q).await, Some(b"new".to_vec()));
}

#[tokio::test]
async fn queue_ttl_expires_messages_at_rest() {
    // No publish, get or consumer after the messages arrive: the queue still
    // drops them once they expire, and the message count goes to 0.
    let (_broker, _conn, ch, q) = broker_with_queue_with("ttl-rest", message_ttl(Some(300))).await;
    publish_numbered(&ch, &q, 0..3).await;
    wait_message_count_within(&ch, &q, 3, Duration::from_millis(250)).await;
    wait_message_count_within(&ch, &q, 0, Duration::from_secs(3)).await;
}

#[tokio::test]
async fn per_message_expiration_expires_message() {
    let (_broker, _conn, ch, q) = broker_with_queue_with("ttl-msg", message_ttl(None)).await;
    publish_props(&ch, "", &q, b"short", expiring("200")).await;
    publish_props(&ch, "", &q, b"forever", BasicProperties::default()).await;
    sync(&ch).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["forever"]);
}

#[tokio::test]
async fn per_message_expiration_expires_head_at_rest() {
    let (_broker, _conn, ch, q) = broker_with_queue_with("ttl-msg-rest", message_ttl(None)).await;
    publish_props(&ch, "", &q, b"short", expiring("200")).await;
    wait_message_count_within(&ch, &q, 1, Duration::from_millis(150)).await;
    wait_message_count_within(&ch, &q, 0, Duration::from_secs(3)).await;
}

/// A message published with `expiration` to a queue with `x-message-ttl` `queue_ttl` (ms) is
/// gone 500 ms later: whichever is lower applies.
async fn assert_gone_after_500_ms(prefix: &str, queue_ttl: i32, body: &[u8], expiration: &str) {
    let (_broker, _conn, ch, q) =
        broker_with_queue_with(prefix, message_ttl(Some(queue_ttl))).await;
    publish_props(&ch, "", &q, body, expiring(expiration)).await;
    sync(&ch).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get_body(&ch, &q).await, None);
}

#[tokio::test]
async fn lower_message_expiration_wins_over_queue_ttl() {
    assert_gone_after_500_ms("ttl-msg-lower", 60_000, b"short", "200").await;
}

#[tokio::test]
async fn lower_queue_ttl_wins_over_message_expiration() {
    assert_gone_after_500_ms("ttl-queue-lower", 200, b"long", "60000").await;
}

#[tokio::test]
async fn expired_message_behind_live_head_is_counted_but_never_delivered() {
    // RabbitMQ only expires per-message TTLs at the head of the queue: a
    // short-lived message behind a long-lived one still counts as ready, but
    // is dropped (not delivered) when it reaches the head.
    let (_broker, _conn, ch, q) = broker_with_queue_with("ttl-behind", message_ttl(None)).await;
    publish_props(&ch, "", &q, b"long", expiring("60000")).await;
    publish_props(&ch, "", &q, b"short", expiring("100")).await;
    sync(&ch).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(message_count(&ch, &q).await, 2);
    assert_eq!(drain_bodies(&ch, &q).await, vec!["long"]);
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn queue_ttl_zero_drops_message_without_consumer() {
    let (_broker, _conn, ch, q) = broker_with_queue_with("ttl-zero", message_ttl(Some(0))).await;
    publish(&ch, "", &q, b"gone").await;
    sync(&ch).await;
    assert_eq!(get_body(&ch, &q).await, None);
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn queue_ttl_zero_delivers_to_waiting_consumer() {
    let (_broker, conn, ch, q) =
        broker_with_queue_with("ttl-zero-consumer", message_ttl(Some(0))).await;
    let cch = conn.create_channel().await.unwrap();
    let mut consumer = consume_no_ack(&cch, &q).await;
    publish(&ch, "", &q, b"now").await;
    assert_eq!(next_delivery(&mut consumer).await.data, b"now");
}

#[tokio::test]
async fn expiration_zero_drops_message_without_consumer() {
    let (_broker, _conn, ch, q) = broker_with_queue_with("exp-zero", message_ttl(None)).await;
    publish_props(&ch, "", &q, b"gone", expiring("0")).await;
    sync(&ch).await;
    assert_eq!(get_body(&ch, &q).await, None);
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn expiration_zero_delivers_to_waiting_consumer() {
    let (_broker, conn, ch, q) =
        broker_with_queue_with("exp-zero-consumer", message_ttl(None)).await;
    let cch = conn.create_channel().await.unwrap();
    let mut consumer = consume_no_ack(&cch, &q).await;
    publish_props(&ch, "", &q, b"now", expiring("0")).await;
    assert_eq!(next_delivery(&mut consumer).await.data, b"now");
}

async fn publish_bad_expiration(expiration: &str) -> (u16, String) {
    let (_broker, _conn, ch, q) = broker_with_queue_with("exp-bad", message_ttl(None)).await;
    let watch = ChannelErrorWatch::new(&ch).await;
    publish_props(&ch, "", &q, b"x", expiring(expiration)).await;
    watch.error().await
}

#[tokio::test]
async fn non_numeric_expiration_is_406() {
    assert_eq!(
        publish_bad_expiration("abc").await,
        precondition_failed("invalid expiration 'abc': no_integer")
    );
}

#[tokio::test]
async fn negative_expiration_is_406() {
    assert_eq!(
        publish_bad_expiration("-1").await,
        precondition_failed("invalid expiration '-1': {value_negative,-1}")
    );
}

#[tokio::test]
async fn fractional_expiration_is_406() {
    assert_eq!(
        publish_bad_expiration("1.5").await,
        precondition_failed("invalid expiration '1.5': {leftover_string,\".5\"}")
    );
}

invalid_queue_arg_tests! {
    negative_x_message_ttl_is_406:
        "ttl-neg", "x-message-ttl", AMQPValue::LongInt(-1) => "{value_negative,-1}";
}
