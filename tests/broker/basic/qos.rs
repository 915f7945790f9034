//! basic.qos: per-consumer and global prefetch limits, and prefetch-size.

use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicQosOptions};

use crate::common::*;

#[tokio::test]
async fn per_consumer_prefetch_limits_unacked_deliveries() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    ch.basic_qos(2, BasicQosOptions { global: false })
        .await
        .unwrap();
    let mut consumer = consume_from(&ch, &q).await;
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
    let (_broker, _conn, ch, q1) = broker_with_tmp_queue().await;
    let q2 = declare_tmp_queue(&ch).await;
    ch.basic_qos(1, BasicQosOptions { global: false })
        .await
        .unwrap();
    let mut c1 = consume_from(&ch, &q1).await;
    let mut c2 = consume_from(&ch, &q2).await;
    publish_n(&ch, &q1, 2).await;
    publish_n(&ch, &q2, 2).await;
    next_delivery(&mut c1).await;
    next_delivery(&mut c2).await;
    assert_no_delivery(&mut c1, Duration::from_millis(200)).await;
    assert_no_delivery(&mut c2, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn global_prefetch_is_shared_by_the_channels_consumers() {
    let (_broker, _conn, ch, q1) = broker_with_tmp_queue().await;
    let q2 = declare_tmp_queue(&ch).await;
    publish_n(&ch, &q1, 3).await;
    publish_n(&ch, &q2, 3).await;
    ch.basic_qos(2, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut c1 = consume_from(&ch, &q1).await;
    let mut c2 = consume_from(&ch, &q2).await;
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
    let (_broker, _conn, ch, q1) = broker_with_tmp_queue().await;
    let q2 = declare_tmp_queue(&ch).await;
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let mut old = consume_from(&ch, &q1).await;
    ch.basic_qos(3, BasicQosOptions::default()).await.unwrap();
    let mut new = consume_from(&ch, &q2).await;
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
    let (_broker, _conn, ch, q1) = broker_with_tmp_queue().await;
    let q2 = declare_tmp_queue(&ch).await;
    ch.basic_qos(2, BasicQosOptions { global: false })
        .await
        .unwrap();
    ch.basic_qos(3, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut c1 = consume_from(&ch, &q1).await;
    publish_n(&ch, &q1, 5).await;
    next_delivery(&mut c1).await;
    next_delivery(&mut c1).await;
    // Per-consumer limit 2 reached although the channel allows 3.
    assert_no_delivery(&mut c1, Duration::from_millis(300)).await;
    let mut c2 = consume_from(&ch, &q2).await;
    publish_n(&ch, &q2, 5).await;
    next_delivery(&mut c2).await;
    // Channel-wide limit 3 reached although c2 alone allows 2.
    assert_no_delivery(&mut c2, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn prefetch_zero_means_unlimited() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    ch.basic_qos(0, BasicQosOptions::default()).await.unwrap();
    let mut consumer = consume_from(&ch, &q).await;
    publish_n(&ch, &q, 50).await;
    for _ in 0..50 {
        next_delivery(&mut consumer).await;
    }
}

#[tokio::test]
async fn qos_with_prefetch_size_is_540_not_implemented() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    // basic.qos: prefetch-size (long) = 1000, prefetch-count 0, global 0.
    raw.send_bytes(&raw_frame(
        1,
        1,
        &[0, 60, 0, 10, 0, 0, 0x03, 0xE8, 0, 0, 0],
        0xCE,
    ))
    .await;
    assert_eq!(
        raw.expect_connection_close().await,
        expected_close(not_implemented("prefetch_size!=0 (1000)"), 60, 10)
    );
}
