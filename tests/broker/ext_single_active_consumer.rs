//! Single active consumer (`x-single-active-consumer: true` queues), checked
//! against RabbitMQ 3.10: only the first registered consumer receives; when
//! it goes away the next registered one takes over, including the messages
//! requeued from the old one's channel.

use std::time::Duration;

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, Consumer, options::BasicAckOptions};

use crate::common::*;

fn sac_args(v: bool) -> FieldTable {
    table(vec![("x-single-active-consumer", AMQPValue::Boolean(v))])
}

/// Consumers `a` and then `b` on `q`, each on a channel of its own: (channel, consumer) each.
async fn two_consumers(conn: &Connection, q: &str) -> ((Channel, Consumer), (Channel, Consumer)) {
    let a_ch = conn.create_channel().await.unwrap();
    let b_ch = conn.create_channel().await.unwrap();
    let a = consume_from(&a_ch, q).await;
    let b = consume_from(&b_ch, q).await;
    ((a_ch, a), (b_ch, b))
}

async fn declare_sac(ch: &Channel, q: &str) -> lapin::Queue {
    declare_queue_with(ch, q, sac_args(true)).await
}

#[tokio::test]
async fn only_first_registered_consumer_receives() {
    let (_broker, conn, ch, q) = broker_with_queue_with("sac-first", sac_args(true)).await;
    let ((_a_ch, mut a), (_b_ch, mut b)) = two_consumers(&conn, &q).await;
    publish_numbered(&ch, &q, 0..5).await;
    for i in 0..5 {
        let d = next_delivery(&mut a).await;
        assert_eq!(d.data, format!("m{i}").as_bytes());
    }
    assert_no_delivery(&mut b, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn next_consumer_takes_over_when_active_one_cancels() {
    let (_broker, conn, ch, q) = broker_with_queue_with("sac-cancel", sac_args(true)).await;
    let ((a_ch, mut a), (_b_ch, mut b)) = two_consumers(&conn, &q).await;
    publish(&ch, "", &q, b"m0").await;
    let d = next_delivery(&mut a).await;
    assert_eq!(d.data, b"m0");
    d.ack(BasicAckOptions::default()).await.unwrap();
    a_ch.basic_cancel(a.tag(), Default::default())
        .await
        .unwrap();
    publish(&ch, "", &q, b"m1").await;
    publish(&ch, "", &q, b"m2").await;
    let d1 = next_delivery(&mut b).await;
    let d2 = next_delivery(&mut b).await;
    assert_eq!(
        (d1.data.as_slice(), d2.data.as_slice()),
        (&b"m1"[..], &b"m2"[..])
    );
    assert!(!d1.redelivered);
}

#[tokio::test]
async fn next_consumer_takes_over_requeued_messages_when_active_channel_closes() {
    let (_broker, conn, ch, q) = broker_with_queue_with("sac-close", sac_args(true)).await;
    let ((a_ch, mut a), (_b_ch, mut b)) = two_consumers(&conn, &q).await;
    publish_numbered(&ch, &q, 0..3).await;
    for i in 0..3 {
        let d = next_delivery(&mut a).await;
        assert_eq!(d.data, format!("m{i}").as_bytes());
    }
    assert_no_delivery(&mut b, Duration::from_millis(200)).await;
    // Closing the active consumer's channel requeues its 3 unacked deliveries;
    // the waiting consumer becomes active and gets them, in order, redelivered.
    a_ch.close(200, "bye".into()).await.unwrap();
    for i in 0..3 {
        let d = next_delivery(&mut b).await;
        assert_eq!(d.data, format!("m{i}").as_bytes());
        assert!(d.redelivered, "requeued m{i} must be flagged redelivered");
    }
    publish(&ch, "", &q, b"m3").await;
    let d = next_delivery(&mut b).await;
    assert_eq!(d.data, b"m3");
    assert!(!d.redelivered);
}

#[tokio::test]
async fn takeover_follows_registration_order() {
    let (_broker, conn, ch, q) = broker_with_queue_with("sac-order", sac_args(true)).await;
    let a_ch = conn.create_channel().await.unwrap();
    let b_ch = conn.create_channel().await.unwrap();
    let c_ch = conn.create_channel().await.unwrap();
    let a = consume_from(&a_ch, &q).await;
    let mut b = consume_from(&b_ch, &q).await;
    let mut c = consume_from(&c_ch, &q).await;
    a_ch.basic_cancel(a.tag(), Default::default())
        .await
        .unwrap();
    publish_numbered(&ch, &q, 0..3).await;
    for i in 0..3 {
        assert_eq!(next_delivery(&mut b).await.data, format!("m{i}").as_bytes());
    }
    assert_no_delivery(&mut c, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn consumer_registered_after_messages_arrive_gets_them_only_if_first() {
    let (_broker, conn, ch, q) = broker_with_queue_with("sac-late", sac_args(true)).await;
    publish_n(&ch, &q, 3).await;
    let ((_a_ch, mut a), (_b_ch, mut b)) = two_consumers(&conn, &q).await;
    for i in 0..3 {
        assert_eq!(next_delivery(&mut a).await.data, format!("m{i}").as_bytes());
    }
    assert_no_delivery(&mut b, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn declare_ok_counts_every_registered_consumer() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = unique("sac-count");
    let ok = declare_sac(&ch, &q).await;
    assert_eq!((ok.message_count(), ok.consumer_count()), (0, 0));
    let mut chans = Vec::new();
    let mut consumers = Vec::new();
    for _ in 0..3 {
        let c = conn.create_channel().await.unwrap();
        consumers.push(consume_from(&c, &q).await);
        chans.push(c);
    }
    // RabbitMQ counts all registered consumers, not just the active one,
    // in both a passive and a full (equivalent) redeclare.
    let passive = declare_queue_passive(&ch, &q).await.unwrap();
    assert_eq!(passive.consumer_count(), 3);
    let redeclared = declare_sac(&ch, &q).await;
    assert_eq!(redeclared.consumer_count(), 3);
    chans[0]
        .basic_cancel(consumers[0].tag(), Default::default())
        .await
        .unwrap();
    let redeclared = declare_sac(&ch, &q).await;
    assert_eq!(redeclared.consumer_count(), 2);
}

#[tokio::test]
async fn sac_false_queue_round_robins() {
    let (_broker, conn, ch, q) = broker_with_queue_with("sac-false", sac_args(false)).await;
    let ((_a_ch, mut a), (_b_ch, mut b)) = two_consumers(&conn, &q).await;
    publish_numbered(&ch, &q, 0..4).await;
    let a_got = [next_delivery(&mut a).await, next_delivery(&mut a).await];
    let b_got = [next_delivery(&mut b).await, next_delivery(&mut b).await];
    assert_eq!(a_got.len() + b_got.len(), 4);
}

invalid_queue_arg_tests! {
    non_boolean_sac_argument_is_406:
        "sac-bad", "x-single-active-consumer", long_str("yes") => "{unacceptable_type,longstr}";
}

#[tokio::test]
async fn redeclare_without_sac_argument_is_inequivalent() {
    let (_broker, _conn, ch, q) = broker_with_queue_with("sac-equiv", sac_args(true)).await;
    assert_eq!(
        declare_queue_error(&ch, &q, FieldTable::default()).await,
        precondition_failed(format!(
            "inequivalent arg 'x-single-active-consumer' for queue '{q}' in vhost '/': received none but current is the value 'true' of type 'bool'"
        ))
    );
}
