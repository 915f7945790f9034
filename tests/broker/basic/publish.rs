//! basic.publish: mandatory and immediate, the user-id check, bodies from empty to the
//! 128 MiB limit, and every property and header type delivered exactly as published.

use std::time::Duration;

use amq_protocol::protocol::{AMQPClass, basic};
use amq_protocol::types::{AMQPValue, ByteArray, DecimalValue, FieldArray, FieldTable};
use lapin::BasicProperties;

use crate::common::*;

#[tokio::test]
async fn mandatory_unroutable_publish_is_returned_with_312_no_route() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
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
    assert_eq!(raw.recv_content_header(1).await, 6);
    assert_eq!(raw.recv_content_body(1).await, b"bounce");
}

#[tokio::test]
async fn mandatory_unroutable_publish_is_returned_before_confirm() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let key = unique("nobody");
    let props = BasicProperties::default().with_message_id("mid-1".into());
    let confirm = publish_mandatory_confirmed(&ch, "", &key, b"returned", props.clone()).await;
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
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let confirm =
        publish_mandatory_confirmed(&ch, "", &q, b"kept", BasicProperties::default()).await;
    assert!(confirm.is_ack());
    assert!(confirm.take_message().is_none());
    assert_eq!(drain_bodies(&ch, &q).await, vec!["kept"]);
}

#[tokio::test]
async fn mandatory_publish_reaching_only_an_empty_exchange_is_returned() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let src = unique("mand-src");
    let dst = unique("mand-dst");
    for x in [&src, &dst] {
        declare_exchange(&ch, x, lapin::ExchangeKind::Fanout).await;
    }
    bind_exchange(&ch, &dst, &src, "").await;
    ch.confirm_select(Default::default()).await.unwrap();
    let confirm =
        publish_mandatory_confirmed(&ch, &src, "k", b"nowhere", BasicProperties::default()).await;
    let ret = confirm
        .take_message()
        .expect("no queue reached: basic.return");
    assert_eq!(ret.reply_code, 312);
    assert_eq!(ret.delivery.exchange.as_str(), src);
    for x in [&src, &dst] {
        delete_exchange(&ch, x).await;
    }
}

#[tokio::test]
async fn immediate_publish_is_540_not_implemented() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    raw.publish(1, "", "anything", false, true, b"now").await;
    assert_eq!(
        raw.expect_connection_close().await,
        expected_close(not_implemented("immediate=true"), 60, 40)
    );
}

#[tokio::test]
async fn user_id_property_must_match_authenticated_user() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let from = |user: &str| BasicProperties::default().with_user_id(user.into());
    publish_props(&ch, "", &q, b"ok", from("guest")).await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["ok"]);
    let watch = ChannelErrorWatch::new(&ch).await;
    publish_props(&ch, "", &q, b"forged", from("mallory")).await;
    assert_eq!(
        watch.error().await,
        precondition_failed("user_id property set to 'mallory' but authenticated user was 'guest'")
    );
}

#[tokio::test]
async fn empty_body_is_delivered_as_empty() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    publish(&ch, "", &q, b"").await;
    sync(&ch).await;
    let body = get_body(&ch, &q).await.expect("the empty message");
    assert!(body.is_empty());
}

async fn roundtrip_large_body(size: usize) {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let body: Vec<u8> = (0..size)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 13)) as u8)
        .collect();
    let mut consumer = consume_no_ack(&ch, &q).await;
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
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let body = vec![7u8; (128 << 20) + 1];
    let watch = ChannelErrorWatch::new(&ch).await;
    publish(&ch, "", &q, &body).await;
    assert_eq!(
        watch.error().await,
        precondition_failed("message size 134217729 is larger than configured max size 134217728")
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
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let props = all_properties();
    publish_props(&ch, "", &q, b"props", props.clone()).await;
    let mut consumer = consume_no_ack(&ch, &q).await;
    let d = next_delivery(&mut consumer).await;
    assert_eq!(d.data, b"props");
    assert_eq!(d.properties, props);
    // And through basic.get as well.
    ch.basic_cancel(consumer.tag(), Default::default())
        .await
        .unwrap();
    publish_props(&ch, "", &q, b"props", props.clone()).await;
    sync(&ch).await;
    let m = get_message(&ch, &q).await.expect("message for basic.get");
    assert_eq!(m.delivery.properties, props);
}

#[tokio::test]
async fn message_without_properties_has_no_properties() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    publish(&ch, "", &q, b"bare").await;
    sync(&ch).await;
    let m = get_message(&ch, &q).await.unwrap();
    assert_eq!(m.delivery.properties, BasicProperties::default());
}
