//! basic.*: publish (mandatory/immediate), consume/cancel, get, ack/nack/
//! reject, recover, qos, ordering, requeue on close, large bodies and
//! properties round-trip.

use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic};
use amq_protocol::types::{AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable};
use lapin::{
    BasicProperties, Channel, Connection,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions,
        BasicNackOptions, BasicPublishOptions, BasicQosOptions, BasicRecoverOptions,
        BasicRejectOptions, QueueDeclareOptions,
    },
};

use crate::common::*;

async fn tmp_queue(ch: &Channel) -> String {
    ch.queue_declare(
        "".into(),
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("declare server-named queue")
    .name()
    .as_str()
    .to_string()
}

/// A named, non-exclusive queue (usable from other connections, and not
/// deleted when its consumers go away).
async fn shared_queue(ch: &Channel, prefix: &str) -> String {
    let q = unique(prefix);
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    q
}

async fn consume(ch: &Channel, q: &str, no_ack: bool) -> lapin::Consumer {
    ch.basic_consume(
        q.into(),
        "".into(),
        BasicConsumeOptions {
            no_ack,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("consume {q}: {e:?}"))
}

async fn publish_n(ch: &Channel, q: &str, n: usize) {
    for i in 0..n {
        publish(ch, "", q, format!("m{i}").as_bytes()).await;
    }
    sync(ch).await;
}

fn body_str(d: &lapin::message::Delivery) -> String {
    String::from_utf8(d.data.clone()).unwrap()
}

async fn get(ch: &Channel, q: &str) -> Option<lapin::message::BasicGetMessage> {
    ch.basic_get(q.into(), BasicGetOptions { no_ack: false })
        .await
        .expect("basic.get")
}

// --- publish -----------------------------------------------------------------

#[tokio::test]
async fn mandatory_unroutable_publish_is_returned_with_312_no_route() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    let x = "amq.direct";
    let key = unique("nobody-bound");
    raw.publish(1, x, &key, true, false, b"bounce").await;
    match raw.recv_method().await {
        (1, AMQPClass::Basic(basic::AMQPMethod::Return(r))) => {
            assert_eq!(r.reply_code, 312);
            assert_eq!(r.reply_text.as_str(), "NO_ROUTE");
            assert_eq!(r.exchange.as_str(), x);
            assert_eq!(r.routing_key.as_str(), key);
        }
        other => panic!("expected basic.return, got {other:?}"),
    }
    match raw.recv().await {
        AMQPFrame::Header(1, h) => assert_eq!(h.body_size, 6),
        other => panic!("expected content header, got {other:?}"),
    }
    match raw.recv().await {
        AMQPFrame::Body(1, b) => assert_eq!(b, b"bounce"),
        other => panic!("expected content body, got {other:?}"),
    }
}

#[tokio::test]
async fn mandatory_unroutable_publish_is_returned_before_confirm() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let key = unique("nobody");
    let props = BasicProperties::default().with_message_id("mid-1".into());
    let confirm = ch
        .basic_publish(
            "".into(),
            key.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"returned",
            props.clone(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(
        confirm.is_ack(),
        "unroutable messages are still confirmed with ack"
    );
    let ret = confirm
        .take_message()
        .expect("basic.return before basic.ack");
    assert_eq!(ret.reply_code, 312);
    assert_eq!(ret.reply_text.as_str(), "NO_ROUTE");
    assert_eq!(ret.delivery.exchange.as_str(), "");
    assert_eq!(ret.delivery.routing_key.as_str(), key);
    assert_eq!(ret.delivery.data, b"returned");
    assert_eq!(ret.delivery.properties, props);
}

#[tokio::test]
async fn mandatory_routable_publish_is_not_returned() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    ch.confirm_select(Default::default()).await.unwrap();
    let confirm = ch
        .basic_publish(
            "".into(),
            q.as_str().into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"kept",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    assert!(confirm.take_message().is_none());
    assert_eq!(drain_bodies(&ch, &q).await, vec!["kept"]);
}

#[tokio::test]
async fn mandatory_publish_reaching_only_an_empty_exchange_is_returned() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let src = unique("mand-src");
    let dst = unique("mand-dst");
    for x in [&src, &dst] {
        ch.exchange_declare(
            x.as_str().into(),
            lapin::ExchangeKind::Fanout,
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    ch.exchange_bind(
        dst.as_str().into(),
        src.as_str().into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let confirm = ch
        .basic_publish(
            src.as_str().into(),
            "k".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"nowhere",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let ret = confirm
        .take_message()
        .expect("no queue reached: basic.return");
    assert_eq!(ret.reply_code, 312);
    assert_eq!(ret.delivery.exchange.as_str(), src);
    for x in [&src, &dst] {
        ch.exchange_delete(x.as_str().into(), Default::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn immediate_publish_is_540_not_implemented() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    raw.publish(1, "", "anything", false, true, b"now").await;
    let (code, text, class_id, method_id) = raw.expect_connection_close().await;
    assert_eq!(code, 540);
    assert_eq!(text, "NOT_IMPLEMENTED - immediate=true");
    assert_eq!((class_id, method_id), (60, 40));
}

#[tokio::test]
async fn user_id_property_must_match_authenticated_user() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    publish_props(
        &ch,
        "",
        &q,
        b"ok",
        BasicProperties::default().with_user_id("guest".into()),
    )
    .await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["ok"]);
    let watch = ChannelErrorWatch::new(&ch).await;
    publish_props(
        &ch,
        "",
        &q,
        b"forged",
        BasicProperties::default().with_user_id("mallory".into()),
    )
    .await;
    let (code, text) = watch.error().await;
    assert_eq!(code, 406);
    assert_eq!(
        text,
        "PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was 'guest'"
    );
}

#[tokio::test]
async fn empty_body_is_delivered_as_empty() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    publish(&ch, "", &q, b"").await;
    sync(&ch).await;
    let body = get_body(&ch, &q).await.expect("the empty message");
    assert!(body.is_empty());
}

async fn roundtrip_large_body(size: usize) {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let body: Vec<u8> = (0..size)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 13)) as u8)
        .collect();
    let mut consumer = consume(&ch, &q, true).await;
    publish(&ch, "", &q, &body).await;
    let d = tokio::time::timeout(
        Duration::from_secs(60),
        futures_lite::StreamExt::next(&mut consumer),
    )
    .await
    .expect("large message not delivered within 60 s")
    .expect("consumer ended")
    .expect("consumer error");
    assert_eq!(d.data.len(), body.len());
    assert!(d.data == body, "body differs");
}

#[tokio::test]
async fn one_mib_body_is_delivered_byte_exact_across_frames() {
    roundtrip_large_body(1 << 20).await;
}

#[tokio::test]
async fn body_of_128_mib_is_delivered_byte_exact() {
    // RabbitMQ 3.10's default max_message_size is 128 MiB (inclusive).
    roundtrip_large_body(128 << 20).await;
}

#[tokio::test]
async fn body_over_128_mib_is_406_precondition_failed() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let body = vec![7u8; (128 << 20) + 1];
    let watch = ChannelErrorWatch::new(&ch).await;
    publish(&ch, "", &q, &body).await;
    let (code, text) = watch.error().await;
    assert_eq!(code, 406);
    assert_eq!(
        text,
        "PRECONDITION_FAILED - message size 134217729 is larger than configured max size 134217728"
    );
}

fn all_properties() -> BasicProperties {
    let nested = table(vec![
        ("inner-str", long_str("nested")),
        (
            "inner-table",
            AMQPValue::FieldTable(table(vec![("deep", AMQPValue::Boolean(false))])),
        ),
    ]);
    let array = FieldArray::from(vec![
        AMQPValue::LongInt(1),
        long_str("two"),
        AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::Boolean(true)])),
        AMQPValue::FieldTable(table(vec![("k", AMQPValue::ShortShortInt(-1))])),
        AMQPValue::Void,
    ]);
    let headers = table(vec![
        ("bool-true", AMQPValue::Boolean(true)),
        ("bool-false", AMQPValue::Boolean(false)),
        ("i8", AMQPValue::ShortShortInt(-128)),
        ("u8", AMQPValue::ShortShortUInt(255)),
        ("i16", AMQPValue::ShortInt(-32768)),
        ("u16", AMQPValue::ShortUInt(65535)),
        ("i32", AMQPValue::LongInt(i32::MIN)),
        ("u32", AMQPValue::LongUInt(u32::MAX)),
        ("i64", AMQPValue::LongLongInt(i64::MIN)),
        ("f32", AMQPValue::Float(1.5)),
        ("f64", AMQPValue::Double(-2.25e100)),
        (
            "decimal",
            AMQPValue::DecimalValue(DecimalValue {
                scale: 3,
                value: 123_456,
            }),
        ),
        ("long-string", long_str("héllo wörld")),
        ("empty-string", long_str("")),
        ("array", AMQPValue::FieldArray(array)),
        ("empty-array", AMQPValue::FieldArray(FieldArray::default())),
        ("timestamp", AMQPValue::Timestamp(1_700_000_000)),
        ("table", AMQPValue::FieldTable(nested)),
        ("empty-table", AMQPValue::FieldTable(FieldTable::default())),
        (
            "bytes",
            AMQPValue::ByteArray(ByteArray::from(vec![0u8, 1, 2, 0xCE, 0xFF])),
        ),
        ("void", AMQPValue::Void),
    ]);
    BasicProperties::default()
        .with_content_type("application/x-test".into())
        .with_content_encoding("gzip".into())
        .with_headers(headers)
        .with_delivery_mode(2)
        .with_priority(7)
        .with_correlation_id("corr-42".into())
        .with_reply_to("reply-queue".into())
        .with_expiration("600000".into())
        .with_message_id("msg-1".into())
        .with_timestamp(1_234_567_890)
        .with_type("test.type".into())
        .with_user_id("guest".into())
        .with_app_id("warren-tests".into())
        .with_cluster_id("cluster-x".into())
}

#[tokio::test]
async fn every_property_and_header_type_is_delivered_exactly_as_published() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let props = all_properties();
    publish_props(&ch, "", &q, b"props", props.clone()).await;
    let mut consumer = consume(&ch, &q, true).await;
    let d = next_delivery(&mut consumer).await;
    assert_eq!(d.data, b"props");
    assert_eq!(d.properties, props);
    // And through basic.get as well.
    ch.basic_cancel(consumer.tag(), Default::default())
        .await
        .unwrap();
    publish_props(&ch, "", &q, b"props", props.clone()).await;
    sync(&ch).await;
    let m = get(&ch, &q).await.expect("message for basic.get");
    assert_eq!(m.delivery.properties, props);
}

#[tokio::test]
async fn message_without_properties_has_no_properties() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    publish(&ch, "", &q, b"bare").await;
    sync(&ch).await;
    let m = get(&ch, &q).await.unwrap();
    assert_eq!(m.delivery.properties, BasicProperties::default());
}

// --- consume / cancel ----------------------------------------------------------

#[tokio::test]
async fn server_generates_amq_ctag_consumer_tags() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let c1 = consume(&ch, &q, false).await;
    let c2 = consume(&ch, &q, false).await;
    assert!(c1.tag().as_str().starts_with("amq.ctag-"), "{}", c1.tag());
    assert!(c2.tag().as_str().starts_with("amq.ctag-"), "{}", c2.tag());
    assert_ne!(c1.tag(), c2.tag());
}

#[tokio::test]
async fn consume_delivers_with_tag_exchange_routing_key_and_increasing_delivery_tags() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let mut consumer = ch
        .basic_consume(
            q.as_str().into(),
            "my-tag".into(),
            Default::default(),
            FieldTable::default(),
        )
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
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = shared_queue(&ch, "noack").await;
    let cch = conn.create_channel().await.unwrap();
    let mut consumer = consume(&cch, &q, true).await;
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
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let mut consumer = ch
        .basic_consume(
            q.as_str().into(),
            "nowait-tag".into(),
            BasicConsumeOptions {
                nowait: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    publish_n(&ch, &q, 1).await;
    let d = next_delivery(&mut consumer).await;
    assert_eq!(body_str(&d), "m0");
}

#[tokio::test]
async fn exclusive_consumer_blocks_other_consumers_with_403() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = shared_queue(&ch, "excl-consume").await;
    let _exclusive = ch
        .basic_consume(
            q.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let ch2 = conn.create_channel().await.unwrap();
    let (code, text) = expect_amqp_error(
        ch2.basic_consume(
            q.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        text,
        format!("ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use")
    );
}

#[tokio::test]
async fn exclusive_consume_on_queue_with_consumers_is_403() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = shared_queue(&ch, "excl-late").await;
    let _c = consume(&ch, &q, false).await;
    let ch2 = conn.create_channel().await.unwrap();
    let (code, text) = expect_amqp_error(
        ch2.basic_consume(
            q.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        text,
        format!("ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use")
    );
}

#[tokio::test]
async fn consuming_from_missing_queue_is_404() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = unique("no-q");
    let (code, text) = expect_amqp_error(
        ch.basic_consume(
            q.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 404);
    assert_eq!(text, format!("NOT_FOUND - no queue '{q}' in vhost '/'"));
}

#[tokio::test]
async fn reusing_a_consumer_tag_on_a_channel_is_530_not_allowed() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
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
    let (_, ok) = raw
        .rpc(
            1,
            AMQPClass::Queue(amq_protocol::protocol::queue::AMQPMethod::Declare(
                amq_protocol::protocol::queue::Declare {
                    queue: q.as_str().into(),
                    exclusive: true,
                    ..Default::default()
                },
            )),
        )
        .await;
    assert!(matches!(ok, AMQPClass::Queue(_)), "{ok:?}");
    let (_, ok) = raw.rpc(1, consume(&q)).await;
    assert!(
        matches!(ok, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))),
        "{ok:?}"
    );
    raw.send_method(1, consume(&q)).await;
    let (code, text, class_id, method_id) = raw.expect_connection_close().await;
    assert_eq!(code, 530);
    assert_eq!(
        text,
        "NOT_ALLOWED - attempt to reuse consumer tag 'dup-tag'"
    );
    assert_eq!((class_id, method_id), (60, 20));
}

#[tokio::test]
async fn same_consumer_tag_may_be_used_on_different_channels() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let ch2 = conn.create_channel().await.unwrap();
    let c1 = ch
        .basic_consume(
            q.as_str().into(),
            "shared-tag".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await;
    let c2 = ch2
        .basic_consume(
            q.as_str().into(),
            "shared-tag".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await;
    assert!(c1.is_ok() && c2.is_ok(), "{c1:?} {c2:?}");
}

#[tokio::test]
async fn delivery_tags_are_per_channel() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    publish_n(&ch, &q, 2).await;
    let ch2 = conn.create_channel().await.unwrap();
    let a = get(&ch, &q).await.unwrap();
    let b = get(&ch2, &q).await.unwrap();
    assert_eq!((a.delivery.delivery_tag, b.delivery.delivery_tag), (1, 1));
}

#[tokio::test]
async fn nowait_cancel_stops_deliveries() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let consumer = consume(&ch, &q, true).await;
    ch.basic_cancel(consumer.tag(), BasicCancelOptions { nowait: true })
        .await
        .unwrap();
    sync(&ch).await;
    publish_n(&ch, &q, 1).await;
    assert_eq!(message_count(&ch, &q).await, 1);
    let info = ch
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
    assert_eq!(info.consumer_count(), 0);
}

#[tokio::test]
async fn cancel_stops_deliveries_and_ends_the_consumer() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let mut consumer = consume(&ch, &q, true).await;
    publish_n(&ch, &q, 1).await;
    next_delivery(&mut consumer).await;
    ch.basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    publish_n(&ch, &q, 2).await;
    match tokio::time::timeout(WAIT, futures_lite::StreamExt::next(&mut consumer)).await {
        Ok(None) => {}
        other => panic!("cancelled consumer must end, got {other:?}"),
    }
    assert_eq!(
        message_count(&ch, &q).await,
        2,
        "messages after cancel stay in the queue"
    );
}

#[tokio::test]
async fn cancel_of_unknown_consumer_tag_is_ok() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
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
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = shared_queue(&ch, "rr").await;
    let c1ch = conn.create_channel().await.unwrap();
    let c2ch = conn.create_channel().await.unwrap();
    let mut c1 = consume(&c1ch, &q, true).await;
    let mut c2 = consume(&c2ch, &q, true).await;
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
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    publish_n(&ch, &q, 200).await;
    let mut consumer = consume(&ch, &q, true).await;
    for i in 0..200 {
        let d = next_delivery(&mut consumer).await;
        assert_eq!(body_str(&d), format!("m{i}"));
    }
}

// --- get -------------------------------------------------------------------------

#[tokio::test]
async fn get_returns_message_with_remaining_count_then_get_empty() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    publish_n(&ch, &q, 2).await;
    let m = get(&ch, &q).await.expect("first");
    assert_eq!(m.message_count, 1);
    assert_eq!(m.delivery.delivery_tag, 1);
    assert_eq!(m.delivery.routing_key.as_str(), q);
    assert!(!m.delivery.redelivered);
    assert_eq!(body_str(&m.delivery), "m0");
    let m = get(&ch, &q).await.expect("second");
    assert_eq!(m.message_count, 0);
    assert_eq!(m.delivery.delivery_tag, 2);
    assert!(get(&ch, &q).await.is_none(), "basic.get-empty");
}

#[tokio::test]
async fn get_on_missing_queue_is_404() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = unique("no-q");
    let (code, text) = expect_amqp_error(
        ch.basic_get(q.as_str().into(), BasicGetOptions::default())
            .await,
    );
    assert_eq!(code, 404);
    assert_eq!(text, format!("NOT_FOUND - no queue '{q}' in vhost '/'"));
}

#[tokio::test]
async fn get_ignores_prefetch_limit() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    publish_n(&ch, &q, 3).await;
    for i in 0..3 {
        let m = get(&ch, &q)
            .await
            .unwrap_or_else(|| panic!("get {i} despite prefetch 1"));
        assert_eq!(body_str(&m.delivery), format!("m{i}"));
    }
}

// --- ack / nack / reject -------------------------------------------------------------

#[tokio::test]
async fn ack_removes_message_for_good() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = shared_queue(&ch, "ack").await;
    let cch = conn.create_channel().await.unwrap();
    publish_n(&ch, &q, 1).await;
    let m = get(&cch, &q).await.unwrap();
    assert!(m.delivery.ack(BasicAckOptions::default()).await.unwrap());
    sync(&cch).await;
    cch.close(200, "bye".into()).await.unwrap();
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn ack_multiple_acks_all_up_to_the_tag() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = shared_queue(&ch, "ack-multi").await;
    publish_n(&ch, &q, 4).await;
    let cch = conn.create_channel().await.unwrap();
    for _ in 0..4 {
        get(&cch, &q).await.unwrap();
    }
    cch.basic_ack(3, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    sync(&cch).await;
    cch.close(200, "requeue the rest".into()).await.unwrap();
    wait_message_count(&ch, &q, 1).await;
    let m = get(&ch, &q).await.unwrap();
    assert_eq!(body_str(&m.delivery), "m3");
    assert!(m.delivery.redelivered);
}

#[tokio::test]
async fn ack_multiple_with_tag_zero_acks_everything() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = shared_queue(&ch, "ack-zero").await;
    publish_n(&ch, &q, 3).await;
    let cch = conn.create_channel().await.unwrap();
    for _ in 0..3 {
        get(&cch, &q).await.unwrap();
    }
    cch.basic_ack(0, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    sync(&cch).await;
    assert!(cch.status().connected());
    cch.close(200, "bye".into()).await.unwrap();
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn unknown_delivery_tag_ack_is_406_precondition_failed() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let watch = ChannelErrorWatch::new(&ch).await;
    ch.basic_ack(42, BasicAckOptions::default()).await.unwrap();
    let (code, text) = watch.error().await;
    assert_eq!(code, 406);
    assert_eq!(text, "PRECONDITION_FAILED - unknown delivery tag 42");
    // A channel error: the connection lives on.
    let ch2 = conn.create_channel().await.unwrap();
    sync(&ch2).await;
}

#[tokio::test]
async fn double_ack_is_406_unknown_delivery_tag() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    publish_n(&ch, &q, 1).await;
    let m = get(&ch, &q).await.unwrap();
    let tag = m.delivery.delivery_tag;
    ch.basic_ack(tag, BasicAckOptions::default()).await.unwrap();
    let watch = ChannelErrorWatch::new(&ch).await;
    ch.basic_ack(tag, BasicAckOptions::default()).await.unwrap();
    let (code, text) = watch.error().await;
    assert_eq!(code, 406);
    assert_eq!(
        text,
        format!("PRECONDITION_FAILED - unknown delivery tag {tag}")
    );
}

#[tokio::test]
async fn ack_of_no_ack_delivery_is_406_unknown_delivery_tag() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    publish_n(&ch, &q, 1).await;
    let body = get_body(&ch, &q).await.unwrap();
    assert_eq!(body, b"m0");
    let watch = ChannelErrorWatch::new(&ch).await;
    ch.basic_ack(1, BasicAckOptions::default()).await.unwrap();
    let (code, text) = watch.error().await;
    assert_eq!(code, 406);
    assert_eq!(text, "PRECONDITION_FAILED - unknown delivery tag 1");
}

#[tokio::test]
async fn unknown_delivery_tag_error_reaches_the_consumer() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let mut consumer = consume(&ch, &q, false).await;
    publish_n(&ch, &q, 1).await;
    let d = next_delivery(&mut consumer).await;
    ch.basic_ack(d.delivery_tag + 100, BasicAckOptions::default())
        .await
        .unwrap();
    let (code, text) = consumer_error(&mut consumer).await;
    assert_eq!(code, 406);
    assert_eq!(
        text,
        format!(
            "PRECONDITION_FAILED - unknown delivery tag {}",
            d.delivery_tag + 100
        )
    );
}

#[tokio::test]
async fn unknown_delivery_tag_nack_and_reject_are_406() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let watch = ChannelErrorWatch::new(&ch).await;
    ch.basic_nack(7, BasicNackOptions::default()).await.unwrap();
    let (code, text) = watch.error().await;
    assert_eq!(
        (code, text.as_str()),
        (406, "PRECONDITION_FAILED - unknown delivery tag 7")
    );
    let ch = conn.create_channel().await.unwrap();
    let watch = ChannelErrorWatch::new(&ch).await;
    ch.basic_reject(9, BasicRejectOptions::default())
        .await
        .unwrap();
    let (code, text) = watch.error().await;
    assert_eq!(
        (code, text.as_str()),
        (406, "PRECONDITION_FAILED - unknown delivery tag 9")
    );
}

#[tokio::test]
async fn nack_with_requeue_redelivers_with_redelivered_flag() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let mut consumer = consume(&ch, &q, false).await;
    publish_n(&ch, &q, 1).await;
    let d = next_delivery(&mut consumer).await;
    assert!(!d.redelivered);
    d.nack(BasicNackOptions {
        requeue: true,
        multiple: false,
    })
    .await
    .unwrap();
    let again = next_delivery(&mut consumer).await;
    assert_eq!(body_str(&again), "m0");
    assert!(again.redelivered);
    assert!(
        again.delivery_tag > d.delivery_tag,
        "a redelivery gets a new delivery tag"
    );
}

#[tokio::test]
async fn nack_without_requeue_drops_the_message() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    publish_n(&ch, &q, 1).await;
    let m = get(&ch, &q).await.unwrap();
    m.delivery
        .nack(BasicNackOptions {
            requeue: false,
            multiple: false,
        })
        .await
        .unwrap();
    sync(&ch).await;
    assert!(get(&ch, &q).await.is_none());
}

#[tokio::test]
async fn nack_multiple_requeues_all_up_to_the_tag_in_order() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    publish_n(&ch, &q, 4).await;
    for _ in 0..3 {
        get(&ch, &q).await.unwrap();
    }
    ch.basic_nack(
        3,
        BasicNackOptions {
            multiple: true,
            requeue: true,
        },
    )
    .await
    .unwrap();
    sync(&ch).await;
    let mut got = Vec::new();
    while let Some(m) = get(&ch, &q).await {
        got.push((body_str(&m.delivery), m.delivery.redelivered));
        m.delivery.ack(Default::default()).await.unwrap();
    }
    assert_eq!(
        got,
        vec![
            ("m0".to_string(), true),
            ("m1".to_string(), true),
            ("m2".to_string(), true),
            ("m3".to_string(), false)
        ]
    );
}

#[tokio::test]
async fn reject_with_requeue_puts_message_back_at_the_head() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    publish_n(&ch, &q, 2).await;
    let m = get(&ch, &q).await.unwrap();
    assert_eq!(body_str(&m.delivery), "m0");
    m.delivery
        .reject(BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    sync(&ch).await;
    let m = get(&ch, &q).await.unwrap();
    assert_eq!(body_str(&m.delivery), "m0");
    assert!(m.delivery.redelivered);
}

#[tokio::test]
async fn reject_without_requeue_drops_the_message() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    publish_n(&ch, &q, 2).await;
    let m = get(&ch, &q).await.unwrap();
    m.delivery
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["m1"]);
}

// --- recover ---------------------------------------------------------------------

#[tokio::test]
async fn recover_with_requeue_redelivers_unacked_messages() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let mut consumer = consume(&ch, &q, false).await;
    publish_n(&ch, &q, 2).await;
    let d0 = next_delivery(&mut consumer).await;
    let d1 = next_delivery(&mut consumer).await;
    assert!(!d0.redelivered && !d1.redelivered);
    ch.basic_recover(BasicRecoverOptions { requeue: true })
        .await
        .expect("basic.recover");
    let r0 = next_delivery(&mut consumer).await;
    let r1 = next_delivery(&mut consumer).await;
    assert_eq!((body_str(&r0), body_str(&r1)), ("m0".into(), "m1".into()));
    assert!(r0.redelivered && r1.redelivered);
}

#[tokio::test]
async fn recover_without_requeue_is_540_not_implemented() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let mut consumer = consume(&ch, &q, false).await;
    publish_n(&ch, &q, 1).await;
    next_delivery(&mut consumer).await;
    let (code, text) = expect_amqp_error(
        ch.basic_recover(BasicRecoverOptions { requeue: false })
            .await,
    );
    assert_eq!(code, 540);
    assert_eq!(text, "NOT_IMPLEMENTED - requeue=false");
    // A connection error.
    assert!(conn.create_channel().await.is_err());
}

// --- qos ---------------------------------------------------------------------------

#[tokio::test]
async fn per_consumer_prefetch_limits_unacked_deliveries() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    ch.basic_qos(2, BasicQosOptions { global: false })
        .await
        .unwrap();
    let mut consumer = consume(&ch, &q, false).await;
    publish_n(&ch, &q, 5).await;
    let d0 = next_delivery(&mut consumer).await;
    let _d1 = next_delivery(&mut consumer).await;
    assert_no_delivery(&mut consumer, Duration::from_millis(300)).await;
    d0.ack(Default::default()).await.unwrap();
    let d2 = next_delivery(&mut consumer).await;
    assert_eq!(body_str(&d2), "m2");
    assert_no_delivery(&mut consumer, Duration::from_millis(300)).await;
    // Multiple ack frees both slots.
    ch.basic_ack(d2.delivery_tag, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    assert_eq!(body_str(&next_delivery(&mut consumer).await), "m3");
    assert_eq!(body_str(&next_delivery(&mut consumer).await), "m4");
}

#[tokio::test]
async fn per_consumer_prefetch_applies_to_each_consumer_separately() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q1 = tmp_queue(&ch).await;
    let q2 = tmp_queue(&ch).await;
    ch.basic_qos(1, BasicQosOptions { global: false })
        .await
        .unwrap();
    let mut c1 = consume(&ch, &q1, false).await;
    let mut c2 = consume(&ch, &q2, false).await;
    publish_n(&ch, &q1, 2).await;
    publish_n(&ch, &q2, 2).await;
    next_delivery(&mut c1).await;
    next_delivery(&mut c2).await;
    assert_no_delivery(&mut c1, Duration::from_millis(200)).await;
    assert_no_delivery(&mut c2, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn global_prefetch_is_shared_by_the_channels_consumers() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q1 = tmp_queue(&ch).await;
    let q2 = tmp_queue(&ch).await;
    publish_n(&ch, &q1, 3).await;
    publish_n(&ch, &q2, 3).await;
    ch.basic_qos(2, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut c1 = consume(&ch, &q1, false).await;
    let mut c2 = consume(&ch, &q2, false).await;
    // Exactly two deliveries in total across both consumers.
    let mut delivered = Vec::new();
    loop {
        tokio::select! {
            Some(Ok(d)) = futures_lite::StreamExt::next(&mut c1) => delivered.push(d),
            Some(Ok(d)) = futures_lite::StreamExt::next(&mut c2) => delivered.push(d),
            _ = tokio::time::sleep(Duration::from_millis(500)) => break,
        }
    }
    assert_eq!(
        delivered.len(),
        2,
        "global prefetch 2 must cap the whole channel"
    );
    delivered[0].ack(Default::default()).await.unwrap();
    let more = tokio::select! {
        Some(Ok(d)) = futures_lite::StreamExt::next(&mut c1) => d,
        Some(Ok(d)) = futures_lite::StreamExt::next(&mut c2) => d,
        _ = tokio::time::sleep(WAIT) => panic!("no delivery after ack freed a slot"),
    };
    assert!(!more.redelivered);
}

#[tokio::test]
async fn changing_prefetch_does_not_affect_existing_consumers() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q1 = tmp_queue(&ch).await;
    let q2 = tmp_queue(&ch).await;
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let mut old = consume(&ch, &q1, false).await;
    ch.basic_qos(3, BasicQosOptions::default()).await.unwrap();
    let mut new = consume(&ch, &q2, false).await;
    publish_n(&ch, &q1, 5).await;
    publish_n(&ch, &q2, 5).await;
    next_delivery(&mut old).await;
    for _ in 0..3 {
        next_delivery(&mut new).await;
    }
    assert_no_delivery(&mut old, Duration::from_millis(300)).await;
    assert_no_delivery(&mut new, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn global_and_per_consumer_prefetch_both_apply() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q1 = tmp_queue(&ch).await;
    let q2 = tmp_queue(&ch).await;
    ch.basic_qos(2, BasicQosOptions { global: false })
        .await
        .unwrap();
    ch.basic_qos(3, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut c1 = consume(&ch, &q1, false).await;
    publish_n(&ch, &q1, 5).await;
    next_delivery(&mut c1).await;
    next_delivery(&mut c1).await;
    // Per-consumer limit 2 reached although the channel allows 3.
    assert_no_delivery(&mut c1, Duration::from_millis(300)).await;
    let mut c2 = consume(&ch, &q2, false).await;
    publish_n(&ch, &q2, 5).await;
    next_delivery(&mut c2).await;
    // Channel-wide limit 3 reached although c2 alone allows 2.
    assert_no_delivery(&mut c2, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn prefetch_zero_means_unlimited() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    ch.basic_qos(0, BasicQosOptions::default()).await.unwrap();
    let mut consumer = consume(&ch, &q, false).await;
    publish_n(&ch, &q, 50).await;
    for _ in 0..50 {
        next_delivery(&mut consumer).await;
    }
}

#[tokio::test]
async fn qos_with_prefetch_size_is_540_not_implemented() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    // basic.qos: prefetch-size (long) = 1000, prefetch-count 0, global 0.
    raw.send_bytes(&raw_frame(
        1,
        1,
        &[0, 60, 0, 10, 0, 0, 0x03, 0xE8, 0, 0, 0],
        0xCE,
    ))
    .await;
    let (code, text, class_id, method_id) = raw.expect_connection_close().await;
    assert_eq!(code, 540);
    assert_eq!(text, "NOT_IMPLEMENTED - prefetch_size!=0 (1000)");
    assert_eq!((class_id, method_id), (60, 10));
}

// --- requeue on close -------------------------------------------------------------

#[tokio::test]
async fn unacked_messages_are_requeued_with_redelivered_on_channel_close() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = shared_queue(&ch, "requeue-ch").await;
    publish_n(&ch, &q, 3).await;
    let cch = conn.create_channel().await.unwrap();
    let mut consumer = consume(&cch, &q, false).await;
    let d0 = next_delivery(&mut consumer).await;
    next_delivery(&mut consumer).await;
    next_delivery(&mut consumer).await;
    d0.ack(Default::default()).await.unwrap();
    sync(&cch).await;
    cch.close(200, "bye".into()).await.unwrap();
    wait_message_count(&ch, &q, 2).await;
    let m1 = get(&ch, &q).await.unwrap();
    let m2 = get(&ch, &q).await.unwrap();
    assert_eq!(
        (body_str(&m1.delivery), body_str(&m2.delivery)),
        ("m1".into(), "m2".into())
    );
    assert!(m1.delivery.redelivered && m2.delivery.redelivered);
}

#[tokio::test]
async fn unacked_messages_are_requeued_with_redelivered_on_connection_close() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = shared_queue(&ch, "requeue-conn").await;
    publish_n(&ch, &q, 2).await;
    {
        let other: Connection = broker.connect().await;
        let och = other.create_channel().await.unwrap();
        let mut consumer = consume(&och, &q, false).await;
        next_delivery(&mut consumer).await;
        next_delivery(&mut consumer).await;
        other.close(200, "bye".into()).await.unwrap();
    }
    wait_message_count(&ch, &q, 2).await;
    let mut consumer = consume(&ch, &q, true).await;
    for i in 0..2 {
        let d = next_delivery(&mut consumer).await;
        assert_eq!(body_str(&d), format!("m{i}"));
        assert!(d.redelivered);
    }
}

#[tokio::test]
async fn unacked_messages_are_requeued_when_the_socket_drops() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = shared_queue(&ch, "requeue-drop").await;
    publish_n(&ch, &q, 1).await;
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    let (_, reply) = raw
        .rpc(
            1,
            AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
                queue: q.as_str().into(),
                no_ack: false,
            })),
        )
        .await;
    assert!(
        matches!(reply, AMQPClass::Basic(basic::AMQPMethod::GetOk(_))),
        "{reply:?}"
    );
    drop(raw); // no connection.close: just the TCP socket going away
    wait_message_count(&ch, &q, 1).await;
    let m = get(&ch, &q).await.unwrap();
    assert!(m.delivery.redelivered);
}

#[tokio::test]
async fn requeued_message_goes_to_another_consumer() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = shared_queue(&ch, "requeue-other").await;
    let ch1 = conn.create_channel().await.unwrap();
    ch1.basic_qos(1, Default::default()).await.unwrap();
    let mut c1 = consume(&ch1, &q, false).await;
    publish_n(&ch, &q, 1).await;
    let d = next_delivery(&mut c1).await;
    assert!(!d.redelivered);
    let ch2 = conn.create_channel().await.unwrap();
    let mut c2 = consume(&ch2, &q, false).await;
    ch1.close(200, "bye".into()).await.unwrap();
    let d2 = next_delivery(&mut c2).await;
    assert_eq!(body_str(&d2), "m0");
    assert!(d2.redelivered);
}
