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

/// Collects exactly `n` deliveries (bodies as strings), acking none.
async fn take(consumer: &mut lapin::Consumer, n: usize) -> Vec<lapin::message::Delivery> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(next_delivery(consumer).await);
    }
    out
}

fn bodies(ds: &[lapin::message::Delivery]) -> Vec<String> {
    ds.iter()
        .map(|d| String::from_utf8(d.data.clone()).unwrap())
        .collect()
}

#[tokio::test]
async fn capability_consumer_priorities_is_advertised() {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    let start = raw.start().await;
    let caps = match start.server_properties.inner().get("capabilities") {
        Some(AMQPValue::FieldTable(t)) => t.clone(),
        other => panic!("capabilities missing: {other:?}"),
    };
    assert_eq!(
        caps.inner().get("consumer_priorities"),
        Some(&AMQPValue::Boolean(true))
    );
}

#[tokio::test]
async fn higher_priority_consumer_gets_all_messages_while_it_has_credit() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("cprio-all");
    declare_queue(&ch, &q).await;
    let low_ch = channel_with_prefetch(&conn, 100).await;
    let high_ch = channel_with_prefetch(&conn, 100).await;
    // The low-priority consumer registers first: registration order must not matter.
    let mut low = consume_with_priority(&low_ch, &q, Some(1)).await;
    let mut high = consume_with_priority(&high_ch, &q, Some(10)).await;
    for i in 0..10 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    let got = take(&mut high, 10).await;
    assert_eq!(
        bodies(&got),
        (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert_no_delivery(&mut low, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn lower_priority_consumer_gets_messages_only_when_higher_has_no_credit() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("cprio-credit");
    declare_queue(&ch, &q).await;
    let high_ch = channel_with_prefetch(&conn, 2).await;
    let low_ch = channel_with_prefetch(&conn, 100).await;
    let mut high = consume_with_priority(&high_ch, &q, Some(10)).await;
    let mut low = consume_with_priority(&low_ch, &q, Some(1)).await;
    for i in 0..6 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    // The high-priority consumer fills its prefetch window (2); the rest
    // overflows to the low-priority one.
    let high_got = take(&mut high, 2).await;
    assert_eq!(bodies(&high_got), vec!["m0", "m1"]);
    let low_got = take(&mut low, 4).await;
    assert_eq!(bodies(&low_got), vec!["m2", "m3", "m4", "m5"]);
    assert_no_delivery(&mut high, Duration::from_millis(200)).await;
    // Once the high-priority consumer has credit again it is preferred again,
    // although the low-priority one still has plenty of credit.
    for d in &high_got {
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    sync(&high_ch).await;
    for i in 6..8 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    let high_got = take(&mut high, 2).await;
    assert_eq!(bodies(&high_got), vec!["m6", "m7"]);
    assert_no_delivery(&mut low, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn blocked_high_priority_consumer_gets_next_message_after_ack() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("cprio-unblock");
    declare_queue(&ch, &q).await;
    let high_ch = channel_with_prefetch(&conn, 1).await;
    let low_ch = channel_with_prefetch(&conn, 1).await;
    let mut high = consume_with_priority(&high_ch, &q, Some(5)).await;
    let mut low = consume_with_priority(&low_ch, &q, Some(-5)).await;
    for i in 0..4 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
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
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("cprio-rr");
    declare_queue(&ch, &q).await;
    let a_ch = channel_with_prefetch(&conn, 100).await;
    let b_ch = channel_with_prefetch(&conn, 100).await;
    let c_ch = channel_with_prefetch(&conn, 100).await;
    let mut a = consume_with_priority(&a_ch, &q, Some(7)).await;
    let mut b = consume_with_priority(&b_ch, &q, Some(7)).await;
    // A lower-priority consumer gets nothing while both have credit.
    let mut c = consume_with_priority(&c_ch, &q, Some(3)).await;
    for i in 0..6 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    let mut got_a = bodies(&take(&mut a, 3).await);
    let mut got_b = bodies(&take(&mut b, 3).await);
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
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("cprio-neg");
    declare_queue(&ch, &q).await;
    let neg_ch = channel_with_prefetch(&conn, 100).await;
    let def_ch = channel_with_prefetch(&conn, 100).await;
    let mut neg = consume_with_priority(&neg_ch, &q, Some(-1)).await;
    // No x-priority = priority 0.
    let mut def = consume_with_priority(&def_ch, &q, None).await;
    for i in 0..4 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    assert_eq!(
        bodies(&take(&mut def, 4).await),
        vec!["m0", "m1", "m2", "m3"]
    );
    assert_no_delivery(&mut neg, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn cancelling_high_priority_consumer_lets_lower_one_receive() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("cprio-cancel");
    declare_queue(&ch, &q).await;
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
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = unique("cprio-bad");
    declare_queue(&ch, &q).await;
    let (code, text) = expect_amqp_error(
        ch.basic_consume(
            q.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            table(vec![("x-priority", long_str("high"))]),
        )
        .await,
    );
    assert_eq!(code, 406);
    assert_eq!(
        text,
        format!(
            "PRECONDITION_FAILED - invalid arg 'x-priority' for queue '{q}' in vhost '/': \"expected integer, got longstr\""
        )
    );
}
