//! basic.consume, basic.cancel and basic.get: consumer tags, delivery tags, exclusive
//! consumers, round-robin and publish order.

use amq_protocol::protocol::{AMQPClass, basic};
use amq_protocol::types::FieldTable;
use lapin::Channel;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions};

use super::shared_queue;
use crate::common::*;

/// basic.consume with a consumer tag of the client's choosing.
async fn consume_tagged(
    ch: &Channel,
    q: &str,
    tag: &str,
    options: BasicConsumeOptions,
) -> lapin::Result<lapin::Consumer> {
    ch.basic_consume(q.into(), tag.into(), options, FieldTable::default())
        .await
}

fn exclusive_consumer() -> BasicConsumeOptions {
    BasicConsumeOptions {
        exclusive: true,
        ..Default::default()
    }
}

/// RabbitMQ's 403 for a consumer that cannot share its queue with another.
fn in_exclusive_use(q: &str) -> (u16, String) {
    access_refused(format!("queue '{q}' in vhost '/' in exclusive use"))
}

#[tokio::test]
async fn server_generates_amq_ctag_consumer_tags() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let c1 = consume_from(&ch, &q).await;
    let c2 = consume_from(&ch, &q).await;
    assert!(c1.tag().as_str().starts_with("amq.ctag-"), "{}", c1.tag());
    assert!(c2.tag().as_str().starts_with("amq.ctag-"), "{}", c2.tag());
    assert_ne!(c1.tag(), c2.tag());
}

#[tokio::test]
async fn consume_delivers_with_tag_exchange_routing_key_and_increasing_delivery_tags() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let mut consumer = consume_tagged(&ch, &q, "my-tag", Default::default())
        .await
        .unwrap();
    assert_eq!(consumer.tag().as_str(), "my-tag");
    publish_n(&ch, &q, 3).await;
    for i in 0..3u64 {
        let d = next_delivery(&mut consumer).await;
        assert_eq!(d.delivery_tag, i + 1);
        assert_eq!(d.exchange.as_str(), "");
        assert_eq!(d.routing_key.as_str(), q);
        assert!(!d.redelivered);
        assert_eq!(body_str(&d), format!("m{i}"));
    }
}

#[tokio::test]
async fn no_ack_consumer_removes_messages_on_delivery() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = shared_queue(&ch, "noack").await;
    let cch = conn.create_channel().await.unwrap();
    let mut consumer = consume_no_ack(&cch, &q).await;
    publish_n(&ch, &q, 3).await;
    for _ in 0..3 {
        next_delivery(&mut consumer).await;
    }
    // Closing the consumer's channel requeues nothing.
    cch.close(200, "bye".into()).await.unwrap();
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn nowait_consume_delivers_messages() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let nowait = BasicConsumeOptions {
        nowait: true,
        ..Default::default()
    };
    let mut consumer = consume_tagged(&ch, &q, "nowait-tag", nowait).await.unwrap();
    publish_n(&ch, &q, 1).await;
    let d = next_delivery(&mut consumer).await;
    assert_eq!(body_str(&d), "m0");
}

#[tokio::test]
async fn exclusive_consumer_blocks_other_consumers_with_403() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = shared_queue(&ch, "excl-consume").await;
    let _exclusive = ch
        .basic_consume(
            q.as_str().into(),
            "".into(),
            exclusive_consumer(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let ch2 = conn.create_channel().await.unwrap();
    assert_eq!(
        consume_error(&ch2, &q, Default::default(), FieldTable::default()).await,
        in_exclusive_use(&q)
    );
}

#[tokio::test]
async fn exclusive_consume_on_queue_with_consumers_is_403() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = shared_queue(&ch, "excl-late").await;
    let _c = consume_from(&ch, &q).await;
    let ch2 = conn.create_channel().await.unwrap();
    assert_eq!(
        consume_error(&ch2, &q, exclusive_consumer(), FieldTable::default()).await,
        in_exclusive_use(&q)
    );
}

#[tokio::test]
async fn consuming_from_missing_queue_is_404() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("no-q");
    assert_eq!(
        consume_error(&ch, &q, Default::default(), FieldTable::default()).await,
        no_queue(&q)
    );
}

#[tokio::test]
async fn reusing_a_consumer_tag_on_a_channel_is_530_not_allowed() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    let consume = |q: &str| {
        AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
            queue: q.into(),
            consumer_tag: "dup-tag".into(),
            no_local: false,
            no_ack: false,
            exclusive: false,
            nowait: false,
            arguments: FieldTable::default(),
        }))
    };
    let q = unique("dup-tag-q");
    let (_, ok) = raw.rpc(1, queue_declare_exclusive(&q)).await;
    assert!(matches!(ok, AMQPClass::Queue(_)), "{ok:?}");
    let (_, ok) = raw.rpc(1, consume(&q)).await;
    assert!(
        matches!(ok, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))),
        "{ok:?}"
    );
    raw.send_method(1, consume(&q)).await;
    assert_eq!(
        raw.expect_connection_close().await,
        expected_close(
            not_allowed("attempt to reuse consumer tag 'dup-tag'"),
            60,
            20
        )
    );
}

#[tokio::test]
async fn same_consumer_tag_may_be_used_on_different_channels() {
    let (_broker, conn, ch, q) = broker_with_tmp_queue().await;
    let ch2 = conn.create_channel().await.unwrap();
    let c1 = consume_tagged(&ch, &q, "shared-tag", Default::default()).await;
    let c2 = consume_tagged(&ch2, &q, "shared-tag", Default::default()).await;
    assert!(c1.is_ok() && c2.is_ok(), "{c1:?} {c2:?}");
}

#[tokio::test]
async fn delivery_tags_are_per_channel() {
    let (_broker, conn, ch, q) = broker_with_tmp_queue().await;
    publish_n(&ch, &q, 2).await;
    let ch2 = conn.create_channel().await.unwrap();
    let a = get_message(&ch, &q).await.unwrap();
    let b = get_message(&ch2, &q).await.unwrap();
    assert_eq!((a.delivery.delivery_tag, b.delivery.delivery_tag), (1, 1));
}

#[tokio::test]
async fn nowait_cancel_stops_deliveries() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let consumer = consume_no_ack(&ch, &q).await;
    ch.basic_cancel(consumer.tag(), BasicCancelOptions { nowait: true })
        .await
        .unwrap();
    sync(&ch).await;
    publish_n(&ch, &q, 1).await;
    assert_eq!(message_count(&ch, &q).await, 1);
    let info = declare_queue_passive(&ch, &q).await.unwrap();
    assert_eq!(info.consumer_count(), 0);
}

#[tokio::test]
async fn cancel_stops_deliveries_and_ends_the_consumer() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let mut consumer = consume_no_ack(&ch, &q).await;
    publish_n(&ch, &q, 1).await;
    next_delivery(&mut consumer).await;
    ch.basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    publish_n(&ch, &q, 2).await;
    assert_consumer_ends(&mut consumer, "cancelled consumer must end").await;
    assert_eq!(
        message_count(&ch, &q).await,
        2,
        "messages after cancel stay in the queue"
    );
}

#[tokio::test]
async fn cancel_of_unknown_consumer_tag_is_ok() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    let (_, reply) = raw
        .rpc(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
                consumer_tag: "never-existed".into(),
                nowait: false,
            })),
        )
        .await;
    match reply {
        AMQPClass::Basic(basic::AMQPMethod::CancelOk(ok)) => {
            assert_eq!(ok.consumer_tag.as_str(), "never-existed")
        }
        other => panic!("expected basic.cancel-ok, got {other:?}"),
    }
}

#[tokio::test]
async fn consumers_on_one_queue_get_messages_round_robin() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = shared_queue(&ch, "rr").await;
    let c1ch = conn.create_channel().await.unwrap();
    let c2ch = conn.create_channel().await.unwrap();
    let mut c1 = consume_no_ack(&c1ch, &q).await;
    let mut c2 = consume_no_ack(&c2ch, &q).await;
    publish_n(&ch, &q, 6).await;
    let mut got1 = Vec::new();
    let mut got2 = Vec::new();
    for _ in 0..3 {
        got1.push(body_str(&next_delivery(&mut c1).await));
        got2.push(body_str(&next_delivery(&mut c2).await));
    }
    assert_eq!(got1, vec!["m0", "m2", "m4"]);
    assert_eq!(got2, vec!["m1", "m3", "m5"]);
}

#[tokio::test]
async fn messages_are_delivered_in_publish_order() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    publish_n(&ch, &q, 200).await;
    let mut consumer = consume_no_ack(&ch, &q).await;
    for i in 0..200 {
        let d = next_delivery(&mut consumer).await;
        assert_eq!(body_str(&d), format!("m{i}"));
    }
}

#[tokio::test]
async fn get_returns_message_with_remaining_count_then_get_empty() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    publish_n(&ch, &q, 2).await;
    let m = get_message(&ch, &q).await.expect("first");
    assert_eq!(m.message_count, 1);
    assert_eq!(m.delivery.delivery_tag, 1);
    assert_eq!(m.delivery.routing_key.as_str(), q);
    assert!(!m.delivery.redelivered);
    assert_eq!(body_str(&m.delivery), "m0");
    let m = get_message(&ch, &q).await.expect("second");
    assert_eq!(m.message_count, 0);
    assert_eq!(m.delivery.delivery_tag, 2);
    assert!(get_message(&ch, &q).await.is_none(), "basic.get-empty");
}

#[tokio::test]
async fn get_on_missing_queue_is_404() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("no-q");
    assert_eq!(get_error(&ch, &q).await, no_queue(&q));
}

#[tokio::test]
async fn get_ignores_prefetch_limit() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    publish_n(&ch, &q, 3).await;
    for i in 0..3 {
        let m = get_message(&ch, &q)
            .await
            .unwrap_or_else(|| panic!("get {i} despite prefetch 1"));
        assert_eq!(body_str(&m.delivery), format!("m{i}"));
    }
}

/// Round-robin after a cancel: with a, b and c consuming and m0 gone to a, cancelling a leaves
/// b next in turn (RabbitMQ puts the consumer that just received at the back of the line).
#[tokio::test]
async fn a_cancel_leaves_the_turn_with_the_next_consumer() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = declare_tmp_queue(&ch).await;
    let mut consumers = Vec::new();
    for _ in 0..3 {
        let consumer_ch = conn.create_channel().await.unwrap();
        let consumer = consume_no_ack(&consumer_ch, &q).await;
        consumers.push((consumer_ch, consumer));
    }
    publish(&ch, "", &q, b"m0").await;
    let first = next_delivery(&mut consumers[0].1).await;
    assert_eq!(first.data, b"m0");
    let (a_ch, a) = &consumers[0];
    a_ch.basic_cancel(a.tag().as_str().into(), Default::default())
        .await
        .unwrap();
    for body in ["m1", "m2", "m3"] {
        publish(&ch, "", &q, body.as_bytes()).await;
    }
    let b = &mut consumers[1].1;
    assert_eq!(next_delivery(b).await.data, b"m1");
    assert_eq!(next_delivery(b).await.data, b"m3");
    let c = &mut consumers[2].1;
    assert_eq!(next_delivery(c).await.data, b"m2");
}
