//! Queue length limits: `x-max-length`, `x-max-length-bytes` and
//! `x-overflow` (checked against RabbitMQ 3.10).

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::AMQPValue;
use lapin::Channel;

use crate::common::*;

/// Publishes with confirms (the channel must be in confirm mode) and returns
/// whether the broker acked (true) or nacked (false).
async fn publish_is_acked(ch: &Channel, q: &str, body: &[u8]) -> bool {
    let confirmation = publish_confirmed(ch, "", q, body, BasicProperties::default()).await;
    assert!(confirmation.is_ack() || confirmation.is_nack());
    confirmation.is_ack()
}

fn max_len(n: i32) -> (&'static str, AMQPValue) {
    ("x-max-length", AMQPValue::LongInt(n))
}

fn max_bytes(n: i32) -> (&'static str, AMQPValue) {
    ("x-max-length-bytes", AMQPValue::LongInt(n))
}

fn reject_publish() -> (&'static str, AMQPValue) {
    ("x-overflow", long_str("reject-publish"))
}

#[tokio::test]
async fn max_length_drops_oldest_messages() {
    let (_broker, _conn, ch, q) = broker_with_queue_with("maxlen", table(vec![max_len(3)])).await;
    publish_n(&ch, &q, 5).await;
    assert_eq!(message_count(&ch, &q).await, 3);
    assert_eq!(drain_bodies(&ch, &q).await, vec!["m2", "m3", "m4"]);
}

#[tokio::test]
async fn explicit_drop_head_overflow_drops_oldest() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("maxlen-drophead");
    declare_queue_with(
        &ch,
        &q,
        table(vec![max_len(2), ("x-overflow", long_str("drop-head"))]),
    )
    .await;
    ch.confirm_select(Default::default()).await.unwrap();
    for i in 0..4 {
        // drop-head never refuses a publish: every one is acked.
        assert!(publish_is_acked(&ch, &q, format!("m{i}").as_bytes()).await);
    }
    assert_eq!(drain_bodies(&ch, &q).await, vec!["m2", "m3"]);
}

/// A requeue puts the message back at the head and then the limit applies again: the head
/// (the requeued message itself) is dropped, as RabbitMQ's requeue does (`maybe_drop_head`).
#[tokio::test]
async fn requeue_into_a_full_drop_head_queue_drops_the_head() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("maxlen-requeue");
    declare_queue_with(&ch, &q, table(vec![max_len(2)])).await;
    publish(&ch, "", &q, b"m0").await;
    let m0 = get_message(&ch, &q).await.expect("m0");
    publish(&ch, "", &q, b"m1").await;
    publish(&ch, "", &q, b"m2").await;
    sync(&ch).await;
    m0.delivery
        .nack(lapin::options::BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .unwrap();
    sync(&ch).await;
    assert_eq!(message_count(&ch, &q).await, 2);
    assert_eq!(drain_bodies(&ch, &q).await, vec!["m1", "m2"]);
}

#[tokio::test]
async fn max_length_bytes_drops_oldest_by_body_size() {
    let (_broker, _conn, ch, q) =
        broker_with_queue_with("maxbytes", table(vec![max_bytes(10)])).await;
    for body in ["aaaa", "bbbb", "cccc"] {
        publish(&ch, "", &q, body.as_bytes()).await;
    }
    sync(&ch).await;
    // 12 bytes > 10: the oldest goes, 8 bytes remain.
    assert_eq!(drain_bodies(&ch, &q).await, vec!["bbbb", "cccc"]);
}

#[tokio::test]
async fn max_length_bytes_counts_body_bytes_only() {
    let (_broker, _conn, ch, q) =
        broker_with_queue_with("maxbytes-headers", table(vec![max_bytes(10)])).await;
    let big_headers = table(vec![("padding", long_str(&"p".repeat(500)))]);
    for body in ["aaaaa", "bbbbb"] {
        publish_props(
            &ch,
            "",
            &q,
            body.as_bytes(),
            BasicProperties::default().with_headers(big_headers.clone()),
        )
        .await;
    }
    sync(&ch).await;
    // 10 body bytes fit exactly, whatever the size of the properties.
    assert_eq!(drain_bodies(&ch, &q).await, vec!["aaaaa", "bbbbb"]);
}

#[tokio::test]
async fn max_length_zero_keeps_nothing_but_a_waiting_consumer_still_receives() {
    let (_broker, conn, ch, q) =
        broker_with_queue_with("maxlen-zero", table(vec![max_len(0)])).await;
    ch.confirm_select(Default::default()).await.unwrap();
    assert!(publish_is_acked(&ch, &q, b"dropped").await);
    assert_eq!(message_count(&ch, &q).await, 0);
    let cch = conn.create_channel().await.unwrap();
    let mut consumer = consume_no_ack(&cch, &q).await;
    assert!(publish_is_acked(&ch, &q, b"delivered").await);
    assert_eq!(next_delivery(&mut consumer).await.data, b"delivered");
}

#[tokio::test]
async fn reject_publish_nacks_and_keeps_old_messages() {
    let (_broker, _conn, ch, q) =
        broker_with_queue_with("maxlen-reject", table(vec![max_len(2), reject_publish()])).await;
    ch.confirm_select(Default::default()).await.unwrap();
    assert!(publish_is_acked(&ch, &q, b"m0").await);
    assert!(publish_is_acked(&ch, &q, b"m1").await);
    assert!(!publish_is_acked(&ch, &q, b"m2").await, "m2 must be nacked");
    assert!(!publish_is_acked(&ch, &q, b"m3").await, "m3 must be nacked");
    assert_eq!(message_count(&ch, &q).await, 2);
    assert_eq!(drain_bodies(&ch, &q).await, vec!["m0", "m1"]);
    // Room again: publishes are accepted again.
    assert!(publish_is_acked(&ch, &q, b"m4").await);
    assert_eq!(drain_bodies(&ch, &q).await, vec!["m4"]);
}

#[tokio::test]
async fn reject_publish_applies_to_max_length_bytes() {
    let (_broker, _conn, ch, q) = broker_with_queue_with(
        "maxbytes-reject",
        table(vec![max_bytes(8), reject_publish()]),
    )
    .await;
    ch.confirm_select(Default::default()).await.unwrap();
    assert!(publish_is_acked(&ch, &q, b"aaaa").await);
    assert!(publish_is_acked(&ch, &q, b"bbbb").await);
    assert!(!publish_is_acked(&ch, &q, b"c").await);
    assert_eq!(drain_bodies(&ch, &q).await, vec!["aaaa", "bbbb"]);
}

#[tokio::test]
async fn reject_publish_without_confirms_silently_drops() {
    let (_broker, _conn, ch, q) = broker_with_queue_with(
        "maxlen-reject-noconfirm",
        table(vec![max_len(1), reject_publish()]),
    )
    .await;
    publish_n(&ch, &q, 3).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["m0"]);
}

invalid_queue_arg_tests! {
    invalid_x_overflow_is_406:
        "overflow-bad", "x-overflow", long_str("bogus") => "invalid_overflow";
    negative_max_length_is_406:
        "limit-neg", "x-max-length", AMQPValue::LongInt(-1) => "{value_negative,-1}";
    negative_max_length_bytes_is_406:
        "limit-neg", "x-max-length-bytes", AMQPValue::LongInt(-1) => "{value_negative,-1}";
}

#[tokio::test]
async fn reject_publish_dlx_overflow_is_accepted() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("overflow-rpdlx");
    declare_queue_with(
        &ch,
        &q,
        table(vec![
            max_len(1),
            ("x-overflow", long_str("reject-publish-dlx")),
        ]),
    )
    .await;
    ch.confirm_select(Default::default()).await.unwrap();
    assert!(publish_is_acked(&ch, &q, b"m0").await);
    assert!(!publish_is_acked(&ch, &q, b"m1").await);
    assert_eq!(drain_bodies(&ch, &q).await, vec!["m0"]);
}
