//! Consumer priorities: the `x-priority` argument of basic.consume (checked
//! against RabbitMQ 3.10). Messages go to the highest-priority consumer that
//! has credit (prefetch room); lower-priority consumers only get messages
//! while every higher one is blocked; equal priorities share round-robin.

use std::time::Duration;

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::{
    Channel, Connection,
    options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions},
};

use crate::common::*;

async fn consume_with_priority(ch: &Channel, q: &str, priority: Option<i32>) -> lapin::Consumer {
    let args = match priority {
        Some(p) => table(vec![("x-priority", AMQPValue::LongInt(p))]),
        None => FieldTable::default(),
    };
    ch.basic_consume(q.into(), "".into(), BasicConsumeOptions::default(), args)
        .await
        .unwrap_or_else(|e| panic!("consume {q}: {e:?}"))
}

async fn channel_with_prefetch(conn: &Connection, prefetch: u16) -> Channel {
    let ch = conn.create_channel().await.expect("create channel");
    ch.basic_qos(prefetch, BasicQosOptions::default())
        .await
        .expect("basic.qos");
    ch
}

fn bodies(ds: &[lapin::message::Delivery]) -> Vec<String> {
    ds.iter().map(body_str).collect()
}

#[tokio::test]
async fn capability_consumer_priorities_is_advertised() {
    assert_capability_advertised("consumer_priorities").await;
}

#[tokio::test]
async fn higher_priority_consumer_gets_all_messages_while_it_has_credit() {
    let (_broker, conn, ch, q) = broker_with_queue("cprio-all").await;
    let low_ch = channel_with_prefetch(&conn, 100).await;
    let high_ch = channel_with_prefetch(&conn, 100).await;
    // The low-priority consumer registers first: registration order must not matter.
    let mut low = consume_with_priority(&low_ch, &q, Some(1)).await;
    let mut high = consume_with_priority(&high_ch, &q, Some(10)).await;
    publish_numbered(&ch, &q, 0..10).await;
    let got = next_deliveries(&mut high, 10).await;
    assert_eq!(
        bodies(&got),
        (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert_no_delivery(&mut low, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn lower_priority_consumer_gets_messages_only_when_higher_has_no_credit() {
    let (_broker, conn, ch, q) = broker_with_queue("cprio-credit").await;
    let high_ch = channel_with_prefetch(&conn, 2).await;
    let low_ch = channel_with_prefetch(&conn, 100).await;
    let mut high = consume_with_priority(&high_ch, &q, Some(10)).await;
    let mut low = consume_with_priority(&low_ch, &q, Some(1)).await;
    publish_numbered(&ch, &q, 0..6).await;
    // The high-priority consumer fills its prefetch window (2); the rest
    // overflows to the low-priority one.
    let high_got = next_deliveries(&mut high, 2).await;
    assert_eq!(bodies(&high_got), vec!["m0", "m1"]);
    let low_got = next_deliveries(&mut low, 4).await;
    assert_eq!(bodies(&low_got), vec!["m2", "m3", "m4", "m5"]);
    assert_no_delivery(&mut high, Duration::from_millis(200)).await;
    // Once the high-priority consumer has credit again it is preferred again,
    // although the low-priority one still has plenty of credit.
    for d in &high_got {
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    sync(&high_ch).await;
    publish_numbered(&ch, &q, 6..8).await;
    let high_got = next_deliveries(&mut high, 2).await;
    assert_eq!(bodies(&high_got), vec!["m6", "m7"]);
    assert_no_delivery(&mut low, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn blocked_high_priority_consumer_gets_next_message_after_ack() {
    let (_broker, conn, ch, q) = broker_with_queue("cprio-unblock").await;
    let high_ch = channel_with_prefetch(&conn, 1).await;
    let low_ch = channel_with_prefetch(&conn, 1).await;
    let mut high = consume_with_priority(&high_ch, &q, Some(5)).await;
    let mut low = consume_with_priority(&low_ch, &q, Some(-5)).await;
    publish_numbered(&ch, &q, 0..4).await;
    let h0 = next_delivery(&mut high).await;
    let l0 = next_delivery(&mut low).await;
    assert_eq!(
        (h0.data.as_slice(), l0.data.as_slice()),
        (&b"m0"[..], &b"m1"[..])
    );
    wait_message_count(&ch, &q, 2).await;
    // Both are blocked; the first to get credit back is the high one.
    h0.ack(BasicAckOptions::default()).await.unwrap();
    let h1 = next_delivery(&mut high).await;
    assert_eq!(h1.data, b"m2");
    assert_no_delivery(&mut low, Duration::from_millis(200)).await;
    l0.ack(BasicAckOptions::default()).await.unwrap();
    let l1 = next_delivery(&mut low).await;
    assert_eq!(l1.data, b"m3");
}

#[tokio::test]
async fn same_priority_consumers_get_messages_round_robin() {
    let (_broker, conn, ch, q) = broker_with_queue("cprio-rr").await;
    let a_ch = channel_with_prefetch(&conn, 100).await;
    let b_ch = channel_with_prefetch(&conn, 100).await;
    let c_ch = channel_with_prefetch(&conn, 100).await;
    let mut a = consume_with_priority(&a_ch, &q, Some(7)).await;
    let mut b = consume_with_priority(&b_ch, &q, Some(7)).await;
    // A lower-priority consumer gets nothing while both have credit.
    let mut c = consume_with_priority(&c_ch, &q, Some(3)).await;
    publish_numbered(&ch, &q, 0..6).await;
    let mut got_a = bodies(&next_deliveries(&mut a, 3).await);
    let mut got_b = bodies(&next_deliveries(&mut b, 3).await);
    // Strict alternation: one of them got the even messages, the other the odd ones.
    if got_a[0] != "m0" {
        std::mem::swap(&mut got_a, &mut got_b);
    }
    assert_eq!(got_a, vec!["m0", "m2", "m4"]);
    assert_eq!(got_b, vec!["m1", "m3", "m5"]);
    assert_no_delivery(&mut c, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn negative_priority_is_below_default_priority() {
    let (_broker, conn, ch, q) = broker_with_queue("cprio-neg").await;
    let neg_ch = channel_with_prefetch(&conn, 100).await;
    let def_ch = channel_with_prefetch(&conn, 100).await;
    let mut neg = consume_with_priority(&neg_ch, &q, Some(-1)).await;
    // No x-priority = priority 0.
    let mut def = consume_with_priority(&def_ch, &q, None).await;
    publish_numbered(&ch, &q, 0..4).await;
    assert_eq!(
        bodies(&next_deliveries(&mut def, 4).await),
        vec!["m0", "m1", "m2", "m3"]
    );
    assert_no_delivery(&mut neg, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn cancelling_high_priority_consumer_lets_lower_one_receive() {
    let (_broker, conn, ch, q) = broker_with_queue("cprio-cancel").await;
    let high_ch = channel_with_prefetch(&conn, 100).await;
    let low_ch = channel_with_prefetch(&conn, 100).await;
    let mut high = consume_with_priority(&high_ch, &q, Some(2)).await;
    let mut low = consume_with_priority(&low_ch, &q, Some(1)).await;
    publish(&ch, "", &q, b"first").await;
    assert_eq!(next_delivery(&mut high).await.data, b"first");
    high_ch
        .basic_cancel(high.tag(), Default::default())
        .await
        .unwrap();
    publish(&ch, "", &q, b"second").await;
    assert_eq!(next_delivery(&mut low).await.data, b"second");
}

#[tokio::test]
async fn non_integer_x_priority_is_406() {
    let (_broker, _conn, ch, q) = broker_with_queue("cprio-bad").await;
    let args = table(vec![("x-priority", long_str("high"))]);
    assert_eq!(
        consume_error(&ch, &q, Default::default(), args).await,
        invalid_queue_arg(&q, "x-priority", "\"expected integer, got longstr\"")
    );
}
