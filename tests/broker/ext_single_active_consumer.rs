//! Single active consumer (`x-single-active-consumer: true` queues), checked
//! against RabbitMQ 3.10: only the first registered consumer receives; when
//! it goes away the next registered one takes over, including the messages
//! requeued from the old one's channel.

use std::time::Duration;

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::{
    Channel,
    options::{BasicAckOptions, BasicConsumeOptions, QueueDeclareOptions},
};

use crate::common::*;

fn sac_args(v: bool) -> FieldTable {
    table(vec![("x-single-active-consumer", AMQPValue::Boolean(v))])
}

async fn declare_sac(ch: &Channel, q: &str) -> lapin::Queue {
    ch.queue_declare(q.into(), QueueDeclareOptions::default(), sac_args(true))
        .await
        .unwrap_or_else(|e| panic!("declare {q}: {e:?}"))
}

async fn consume(ch: &Channel, q: &str) -> lapin::Consumer {
    ch.basic_consume(
        q.into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("consume {q}: {e:?}"))
}

#[tokio::test]
async fn only_first_registered_consumer_receives() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("sac-first");
    declare_sac(&ch, &q).await;
    let a_ch = conn.create_channel().await.unwrap();
    let b_ch = conn.create_channel().await.unwrap();
    let mut a = consume(&a_ch, &q).await;
    let mut b = consume(&b_ch, &q).await;
    for i in 0..5 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    for i in 0..5 {
        let d = next_delivery(&mut a).await;
        assert_eq!(d.data, format!("m{i}").as_bytes());
    }
    assert_no_delivery(&mut b, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn next_consumer_takes_over_when_active_one_cancels() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("sac-cancel");
    declare_sac(&ch, &q).await;
    let a_ch = conn.create_channel().await.unwrap();
    let b_ch = conn.create_channel().await.unwrap();
    let mut a = consume(&a_ch, &q).await;
    let mut b = consume(&b_ch, &q).await;
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
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("sac-close");
    declare_sac(&ch, &q).await;
    let a_ch = conn.create_channel().await.unwrap();
    let b_ch = conn.create_channel().await.unwrap();
    let mut a = consume(&a_ch, &q).await;
    let mut b = consume(&b_ch, &q).await;
    for i in 0..3 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
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
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("sac-order");
    declare_sac(&ch, &q).await;
    let a_ch = conn.create_channel().await.unwrap();
    let b_ch = conn.create_channel().await.unwrap();
    let c_ch = conn.create_channel().await.unwrap();
    let a = consume(&a_ch, &q).await;
    let mut b = consume(&b_ch, &q).await;
    let mut c = consume(&c_ch, &q).await;
    a_ch.basic_cancel(a.tag(), Default::default())
        .await
        .unwrap();
    for i in 0..3 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    for i in 0..3 {
        assert_eq!(next_delivery(&mut b).await.data, format!("m{i}").as_bytes());
    }
    assert_no_delivery(&mut c, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn consumer_registered_after_messages_arrive_gets_them_only_if_first() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("sac-late");
    declare_sac(&ch, &q).await;
    for i in 0..3 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    sync(&ch).await;
    let a_ch = conn.create_channel().await.unwrap();
    let b_ch = conn.create_channel().await.unwrap();
    let mut a = consume(&a_ch, &q).await;
    let mut b = consume(&b_ch, &q).await;
    for i in 0..3 {
        assert_eq!(next_delivery(&mut a).await.data, format!("m{i}").as_bytes());
    }
    assert_no_delivery(&mut b, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn declare_ok_counts_every_registered_consumer() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("sac-count");
    let ok = declare_sac(&ch, &q).await;
    assert_eq!((ok.message_count(), ok.consumer_count()), (0, 0));
    let mut chans = Vec::new();
    let mut consumers = Vec::new();
    for _ in 0..3 {
        let c = conn.create_channel().await.unwrap();
        consumers.push(consume(&c, &q).await);
        chans.push(c);
    }
    // RabbitMQ counts all registered consumers, not just the active one,
    // in both a passive and a full (equivalent) redeclare.
    let passive = ch
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
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
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = unique("sac-false");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions::default(),
        sac_args(false),
    )
    .await
    .unwrap();
    let a_ch = conn.create_channel().await.unwrap();
    let b_ch = conn.create_channel().await.unwrap();
    let mut a = consume(&a_ch, &q).await;
    let mut b = consume(&b_ch, &q).await;
    for i in 0..4 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
    }
    let a_got = [next_delivery(&mut a).await, next_delivery(&mut a).await];
    let b_got = [next_delivery(&mut b).await, next_delivery(&mut b).await];
    assert_eq!(a_got.len() + b_got.len(), 4);
}

#[tokio::test]
async fn non_boolean_sac_argument_is_406() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = unique("sac-bad");
    let (code, text) = expect_amqp_error(
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default(),
            table(vec![("x-single-active-consumer", long_str("yes"))]),
        )
        .await,
    );
    assert_eq!(code, 406);
    assert_eq!(
        text,
        format!(
            "PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue '{q}' in vhost '/': {{unacceptable_type,longstr}}"
        )
    );
}

#[tokio::test]
async fn redeclare_without_sac_argument_is_inequivalent() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = unique("sac-equiv");
    declare_sac(&ch, &q).await;
    let (code, text) = expect_amqp_error(
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 406);
    assert_eq!(
        text,
        format!(
            "PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer' for queue '{q}' in vhost '/': received none but current is the value 'true' of type 'bool'"
        )
    );
}
