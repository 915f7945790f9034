//! Acknowledgements: basic.ack, basic.nack and basic.reject (single and multiple, with and
//! without requeue), unknown delivery tags, and basic.recover.

use lapin::options::{BasicAckOptions, BasicNackOptions, BasicRecoverOptions, BasicRejectOptions};

use super::shared_queue;
use crate::common::*;

#[tokio::test]
async fn ack_removes_message_for_good() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = shared_queue(&ch, "ack").await;
    let cch = conn.create_channel().await.unwrap();
    publish_n(&ch, &q, 1).await;
    let m = get_message(&cch, &q).await.unwrap();
    assert!(m.delivery.ack(BasicAckOptions::default()).await.unwrap());
    sync(&cch).await;
    cch.close(200, "bye".into()).await.unwrap();
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn ack_multiple_acks_all_up_to_the_tag() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = shared_queue(&ch, "ack-multi").await;
    publish_n(&ch, &q, 4).await;
    let cch = conn.create_channel().await.unwrap();
    for _ in 0..4 {
        get_message(&cch, &q).await.unwrap();
    }
    cch.basic_ack(3, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    sync(&cch).await;
    cch.close(200, "requeue the rest".into()).await.unwrap();
    wait_message_count(&ch, &q, 1).await;
    let m = get_message(&ch, &q).await.unwrap();
    assert_eq!(body_str(&m.delivery), "m3");
    assert!(m.delivery.redelivered);
}

#[tokio::test]
async fn ack_multiple_with_tag_zero_acks_everything() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = shared_queue(&ch, "ack-zero").await;
    publish_n(&ch, &q, 3).await;
    let cch = conn.create_channel().await.unwrap();
    for _ in 0..3 {
        get_message(&cch, &q).await.unwrap();
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
    let (_broker, conn, ch) = broker_with_channel().await;
    let watch = ChannelErrorWatch::new(&ch).await;
    ch.basic_ack(42, BasicAckOptions::default()).await.unwrap();
    assert_eq!(
        watch.error().await,
        precondition_failed("unknown delivery tag 42")
    );
    // A channel error: the connection lives on.
    let ch2 = conn.create_channel().await.unwrap();
    sync(&ch2).await;
}

#[tokio::test]
async fn double_ack_is_406_unknown_delivery_tag() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    publish_n(&ch, &q, 1).await;
    let m = get_message(&ch, &q).await.unwrap();
    let tag = m.delivery.delivery_tag;
    ch.basic_ack(tag, BasicAckOptions::default()).await.unwrap();
    let watch = ChannelErrorWatch::new(&ch).await;
    ch.basic_ack(tag, BasicAckOptions::default()).await.unwrap();
    assert_eq!(
        watch.error().await,
        precondition_failed(format!("unknown delivery tag {tag}"))
    );
}

#[tokio::test]
async fn ack_of_no_ack_delivery_is_406_unknown_delivery_tag() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    publish_n(&ch, &q, 1).await;
    let body = get_body(&ch, &q).await.unwrap();
    assert_eq!(body, b"m0");
    let watch = ChannelErrorWatch::new(&ch).await;
    ch.basic_ack(1, BasicAckOptions::default()).await.unwrap();
    assert_eq!(
        watch.error().await,
        precondition_failed("unknown delivery tag 1")
    );
}

#[tokio::test]
async fn unknown_delivery_tag_error_reaches_the_consumer() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let mut consumer = consume_from(&ch, &q).await;
    publish_n(&ch, &q, 1).await;
    let d = next_delivery(&mut consumer).await;
    ch.basic_ack(d.delivery_tag + 100, BasicAckOptions::default())
        .await
        .unwrap();
    assert_eq!(
        consumer_error(&mut consumer).await,
        precondition_failed(format!("unknown delivery tag {}", d.delivery_tag + 100))
    );
}

#[tokio::test]
async fn unknown_delivery_tag_nack_and_reject_are_406() {
    let (_broker, conn, ch) = broker_with_channel().await;
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
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let mut consumer = consume_from(&ch, &q).await;
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
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    publish_n(&ch, &q, 1).await;
    let m = get_message(&ch, &q).await.unwrap();
    m.delivery
        .nack(BasicNackOptions {
            requeue: false,
            multiple: false,
        })
        .await
        .unwrap();
    sync(&ch).await;
    assert!(get_message(&ch, &q).await.is_none());
}

#[tokio::test]
async fn nack_multiple_requeues_all_up_to_the_tag_in_order() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    publish_n(&ch, &q, 4).await;
    for _ in 0..3 {
        get_message(&ch, &q).await.unwrap();
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
    while let Some(m) = get_message(&ch, &q).await {
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
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    publish_n(&ch, &q, 2).await;
    let m = get_message(&ch, &q).await.unwrap();
    assert_eq!(body_str(&m.delivery), "m0");
    m.delivery
        .reject(BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    sync(&ch).await;
    let m = get_message(&ch, &q).await.unwrap();
    assert_eq!(body_str(&m.delivery), "m0");
    assert!(m.delivery.redelivered);
}

#[tokio::test]
async fn reject_without_requeue_drops_the_message() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    publish_n(&ch, &q, 2).await;
    let m = get_message(&ch, &q).await.unwrap();
    m.delivery
        .reject(BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["m1"]);
}

#[tokio::test]
async fn recover_with_requeue_redelivers_unacked_messages() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let mut consumer = consume_from(&ch, &q).await;
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
    let (_broker, conn, ch, q) = broker_with_tmp_queue().await;
    let mut consumer = consume_from(&ch, &q).await;
    publish_n(&ch, &q, 1).await;
    next_delivery(&mut consumer).await;
    assert_eq!(
        expect_amqp_error(
            ch.basic_recover(BasicRecoverOptions { requeue: false })
                .await,
        ),
        not_implemented("requeue=false")
    );
    // A connection error.
    assert!(conn.create_channel().await.is_err());
}
