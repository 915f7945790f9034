//! Half messages (two-phase publish, a warren extension): held by `x-half: true`, routed by a
//! later `x-half-commit`, dropped by `x-half-rollback`, and checked back through `reply_to`
//! when neither comes. Restarts: tests/durability/delayed.rs. RabbitMQ has none of this.

use std::time::{Duration, Instant};

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::AMQPValue;
use lapin::{Channel, ExchangeKind};

use crate::common::*;

fn half(id: &str, extra: Vec<(&str, AMQPValue)>) -> BasicProperties {
    let mut headers = vec![("x-half", AMQPValue::Boolean(true))];
    headers.extend(extra);
    BasicProperties::default()
        .with_message_id(id.into())
        .with_headers(table(headers))
}

fn settle(id: &str, key: &str) -> BasicProperties {
    BasicProperties::default()
        .with_message_id(id.into())
        .with_headers(table(vec![(key, AMQPValue::Boolean(true))]))
}

/// A confirm channel, an exchange, and a queue bound to it with "k".
async fn setup(broker: &TestBroker) -> (lapin::Connection, Channel, String, String) {
    let (conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default())
        .await
        .expect("confirm.select");
    let x = unique("half-x");
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
    let q = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &q, &x, "k").await;
    (conn, ch, x, q)
}

fn header(m: &lapin::message::BasicGetMessage, key: &str) -> Option<AMQPValue> {
    m.delivery
        .properties
        .headers()
        .clone()
        .unwrap_or_default()
        .inner()
        .get(key)
        .cloned()
}

#[tokio::test]
async fn a_half_message_is_confirmed_held_and_routed_at_its_commit_from_another_connection() {
    if external() {
        return;
    }
    let broker = TestBroker::start();
    let (_conn, ch, x, q) = setup(&broker).await;
    let props = half("order-1", vec![("kept", AMQPValue::LongInt(7))]);
    let held = publish_confirmed(&ch, &x, "k", b"order created", props).await;
    assert!(held.is_ack(), "{held:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(message_count(&ch, &q).await, 0, "held, not routed");
    // The producer restarted: a new connection commits.
    let (_conn2, other) = broker.channel().await;
    other
        .confirm_select(Default::default())
        .await
        .expect("confirm.select");
    let committed = publish_confirmed(
        &other,
        "",
        "anything",
        b"",
        settle("order-1", "x-half-commit"),
    )
    .await;
    assert!(committed.is_ack(), "{committed:?}");
    let m = get_message_no_ack(&ch, &q)
        .await
        .expect("routed at the commit");
    assert_eq!(m.delivery.data, b"order created");
    assert_eq!(m.delivery.routing_key.as_str(), "k");
    assert_eq!(header(&m, "kept"), Some(AMQPValue::LongInt(7)));
    assert_eq!(header(&m, "x-half"), None, "the half headers are gone");
    // Committing twice routes nothing more; the commit itself is never routed.
    publish_confirmed(
        &other,
        "",
        "anything",
        b"",
        settle("order-1", "x-half-commit"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn a_rolled_back_half_message_is_dropped() {
    if external() {
        return;
    }
    let broker = TestBroker::start();
    let (_conn, ch, x, q) = setup(&broker).await;
    publish_confirmed(&ch, &x, "k", b"never", half("order-2", vec![])).await;
    publish_confirmed(&ch, &x, "k", b"", settle("order-2", "x-half-rollback")).await;
    publish_confirmed(&ch, &x, "k", b"", settle("order-2", "x-half-commit")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(message_count(&ch, &q).await, 0);
    // The id is free again.
    let again = publish_confirmed(&ch, &x, "k", b"again", half("order-2", vec![])).await;
    assert!(again.is_ack());
}

#[tokio::test]
async fn a_half_message_needs_an_id_of_its_own() {
    if external() {
        return;
    }
    let broker = TestBroker::start();
    let (_conn, ch, x, _q) = setup(&broker).await;
    let no_id =
        BasicProperties::default().with_headers(table(vec![("x-half", AMQPValue::Boolean(true))]));
    ch.basic_publish(
        x.as_str().into(),
        "k".into(),
        Default::default(),
        b"m",
        no_id,
    )
    .await
    .expect("publish");
    let (code, text) = expect_amqp_error(ch.basic_qos(1, Default::default()).await);
    assert_eq!(
        (code, text.as_str()),
        (
            406,
            "PRECONDITION_FAILED - a half message needs a message_id"
        )
    );
    let (_conn2, ch) = broker.channel().await;
    publish(&ch, &x, "k", b"m").await;
    // The second hold of the same id is refused.
    for _ in 0..2 {
        ch.basic_publish(
            x.as_str().into(),
            "k".into(),
            Default::default(),
            b"m",
            half("dup", vec![]),
        )
        .await
        .expect("publish");
    }
    let (code, text) = expect_amqp_error(ch.basic_qos(1, Default::default()).await);
    assert_eq!(code, 406, "{text}");
    assert!(
        text.contains("half message 'dup' is pending already"),
        "{text}"
    );
}

#[tokio::test]
async fn unanswered_half_messages_are_checked_back_then_committed_by_the_answer() {
    if external() {
        return;
    }
    let broker = TestBroker::start();
    let (_conn, ch, x, q) = setup(&broker).await;
    let checks = declare_tmp_queue(&ch).await;
    let props = half(
        "order-3",
        vec![("x-half-check-after", AMQPValue::LongInt(300))],
    )
    .with_reply_to(checks.as_str().into());
    let sent = Instant::now();
    publish_confirmed(&ch, &x, "k", b"payload", props).await;
    let check = wait_for_message(&ch, &checks).await;
    assert!(
        sent.elapsed() >= Duration::from_millis(290),
        "checked after {:?}",
        sent.elapsed()
    );
    assert_eq!(check.delivery.data, b"payload");
    assert_eq!(
        check
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str()),
        Some("order-3")
    );
    assert_eq!(header(&check, "x-half-check"), Some(AMQPValue::LongInt(1)));
    // The producer's check handler answers: the transaction happened.
    publish_confirmed(&ch, "", "", b"", settle("order-3", "x-half-commit")).await;
    wait_message_count_within(&ch, &q, 1, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn after_its_check_limit_a_half_message_is_rolled_back_to_its_dead_letter_exchange() {
    if external() {
        return;
    }
    let broker = TestBroker::start();
    let (_conn, ch, x, q) = setup(&broker).await;
    let checks = declare_tmp_queue(&ch).await;
    let dlx = unique("half-dlx");
    declare_exchange(&ch, &dlx, ExchangeKind::Fanout).await;
    let dead = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &dead, &dlx, "").await;
    let props = half(
        "order-4",
        vec![
            ("x-half-check-after", AMQPValue::LongInt(100)),
            ("x-half-check-limit", AMQPValue::LongInt(2)),
            ("x-half-dead-letter-exchange", long_str(&dlx)),
        ],
    )
    .with_reply_to(checks.as_str().into());
    publish_confirmed(&ch, &x, "k", b"abandoned", props).await;
    // Checks at about 100 ms and 300 ms, then rolled back at about 700 ms.
    wait_message_count_within(&ch, &dead, 1, Duration::from_secs(5)).await;
    assert_eq!(message_count(&ch, &checks).await, 2);
    assert_eq!(message_count(&ch, &q).await, 0);
    let m = get_message_no_ack(&ch, &dead).await.expect("dead letter");
    assert_eq!(m.delivery.data, b"abandoned");
}
