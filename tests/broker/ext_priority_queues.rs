//! Priority queues (`x-max-priority`), checked against RabbitMQ 3.10.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::Channel;

use crate::common::*;

fn max_priority(v: AMQPValue) -> FieldTable {
    table(vec![("x-max-priority", v)])
}

/// Publishes (body, priority) pairs; `None` = no priority property.
async fn publish_all(ch: &Channel, q: &str, msgs: &[(&str, Option<u8>)]) {
    for (body, prio) in msgs {
        let props = match prio {
            Some(p) => BasicProperties::default().with_priority(*p),
            None => BasicProperties::default(),
        };
        publish_props(ch, "", q, body.as_bytes(), props).await;
    }
    wait_message_count(ch, q, msgs.len() as u32).await;
}

#[tokio::test]
async fn higher_priority_messages_are_delivered_first_by_basic_get() {
    let (_broker, _conn, ch, q) =
        broker_with_queue_with("pq-get", max_priority(AMQPValue::LongInt(10))).await;
    publish_all(
        &ch,
        &q,
        &[
            ("p1", Some(1)),
            ("p5", Some(5)),
            ("p3", Some(3)),
            ("p10", Some(10)),
        ],
    )
    .await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["p10", "p5", "p3", "p1"]);
}

#[tokio::test]
async fn higher_priority_messages_are_delivered_first_to_a_consumer() {
    let (_broker, _conn, ch, q) =
        broker_with_queue_with("pq-consume", max_priority(AMQPValue::LongInt(10))).await;
    publish_all(
        &ch,
        &q,
        &[
            ("p2", Some(2)),
            ("p9", Some(9)),
            ("p0", Some(0)),
            ("p4", Some(4)),
        ],
    )
    .await;
    let mut consumer = consume_no_ack(&ch, &q).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(body_str(&next_delivery(&mut consumer).await));
    }
    assert_eq!(got, vec!["p9", "p4", "p2", "p0"]);
}

#[tokio::test]
async fn messages_of_equal_priority_stay_fifo() {
    let (_broker, _conn, ch, q) =
        broker_with_queue_with("pq-fifo", max_priority(AMQPValue::LongInt(5))).await;
    publish_all(
        &ch,
        &q,
        &[
            ("a1", Some(1)),
            ("b3", Some(3)),
            ("a2", Some(1)),
            ("b4", Some(3)),
            ("a3", Some(1)),
            ("b5", Some(3)),
        ],
    )
    .await;
    assert_eq!(
        drain_bodies(&ch, &q).await,
        vec!["b3", "b4", "b5", "a1", "a2", "a3"]
    );
}

#[tokio::test]
async fn priority_above_max_counts_as_max() {
    let (_broker, _conn, ch, q) =
        broker_with_queue_with("pq-cap", max_priority(AMQPValue::LongInt(5))).await;
    // 9 and 7 are capped to 5: the three are equal and stay in publish order,
    // all ahead of priority 4.
    publish_all(
        &ch,
        &q,
        &[
            ("four", Some(4)),
            ("nine", Some(9)),
            ("five", Some(5)),
            ("seven", Some(7)),
        ],
    )
    .await;
    assert_eq!(
        drain_bodies(&ch, &q).await,
        vec!["nine", "five", "seven", "four"]
    );
}

#[tokio::test]
async fn message_without_priority_counts_as_zero() {
    let (_broker, _conn, ch, q) =
        broker_with_queue_with("pq-none", max_priority(AMQPValue::LongInt(5))).await;
    publish_all(
        &ch,
        &q,
        &[
            ("none1", None),
            ("zero", Some(0)),
            ("one", Some(1)),
            ("none2", None),
        ],
    )
    .await;
    assert_eq!(
        drain_bodies(&ch, &q).await,
        vec!["one", "none1", "zero", "none2"]
    );
}

#[tokio::test]
async fn message_count_includes_all_priorities() {
    let (_broker, _conn, ch, q) =
        broker_with_queue_with("pq-count", max_priority(AMQPValue::LongInt(3))).await;
    publish_all(
        &ch,
        &q,
        &[
            ("a", Some(0)),
            ("b", Some(3)),
            ("c", None),
            ("d", Some(200)),
        ],
    )
    .await;
    assert_eq!(message_count(&ch, &q).await, 4);
}

#[tokio::test]
async fn max_priority_255_is_accepted() {
    let (_broker, _conn, ch, q) =
        broker_with_queue_with("pq-255", max_priority(AMQPValue::LongInt(255))).await;
    publish_all(
        &ch,
        &q,
        &[("low", Some(1)), ("top", Some(255)), ("mid", Some(128))],
    )
    .await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["top", "mid", "low"]);
}

#[tokio::test]
async fn max_priority_0_is_accepted_and_queue_stays_fifo() {
    // RabbitMQ 3.10 accepts x-max-priority 0 (no 406); the queue does not
    // reorder by priority.
    let (_broker, _conn, ch, q) =
        broker_with_queue_with("pq-0", max_priority(AMQPValue::LongInt(0))).await;
    publish_all(
        &ch,
        &q,
        &[("zero", Some(0)), ("five", Some(5)), ("one", Some(1))],
    )
    .await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["zero", "five", "one"]);
}

invalid_queue_arg_tests! {
    max_priority_above_255_is_406:
        "pq-256", "x-max-priority", AMQPValue::LongInt(256) => "{max_value_exceeded,256}";
    negative_max_priority_is_406:
        "pq-neg", "x-max-priority", AMQPValue::LongInt(-1) => "{value_negative,-1}";
    non_integer_max_priority_is_406:
        "pq-str", "x-max-priority", long_str("10") => "\"expected integer, got longstr\"";
}
