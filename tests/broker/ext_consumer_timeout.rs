//! Consumer (delivery acknowledgement) timeout, per queue via the
//! `x-consumer-timeout` argument (ms).
//!
//! RabbitMQ 3.10 IGNORES the `x-consumer-timeout` queue argument (it is
//! accepted, unvalidated, and has no effect; the per-queue argument/policy
//! arrived in later releases); 3.10 only has the global `consumer_timeout`
//! setting, checked on each channel tick (`channel_tick_interval`, 60 s by
//! default). To run these tests against RabbitMQ 3.10, start it with
//! advanced.config `[{rabbit, [{consumer_timeout, 1000}, {channel_tick_interval, 500}]}].`
//! (or `rabbitmqctl eval 'application:set_env(rabbit, consumer_timeout, 1000).'`
//! before the test, which affects channels opened afterwards): the queue
//! argument used here equals that global value, so the observable behaviour
//! (close text, timing, requeue) is the same.

use std::time::Duration;

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::options::BasicAckOptions;

use crate::common::*;

const TIMEOUT_MS: i32 = 1000;

/// Queue arguments: `x-consumer-timeout` [`TIMEOUT_MS`].
fn consumer_timeout() -> FieldTable {
    table(vec![("x-consumer-timeout", AMQPValue::LongInt(TIMEOUT_MS))])
}

/// Waits (up to 10 s: the broker checks timeouts periodically) for the
/// consumer's channel to be closed by the broker; returns (code, text).
async fn channel_closed(consumer: &mut lapin::Consumer) -> (u16, String) {
    consumer_error_within(consumer, Duration::from_secs(10)).await
}

fn timeout_text(channel_id: u16) -> String {
    format!(
        "PRECONDITION_FAILED - delivery acknowledgement on channel {channel_id} timed out. \
         Timeout value used: {TIMEOUT_MS} ms. This timeout value can be configured, \
         see consumers doc guide to learn more"
    )
}

#[tokio::test]
async fn unacked_delivery_past_timeout_closes_channel_with_406() {
    let (_broker, conn, ch, q) = broker_with_queue_with("ctimeout", consumer_timeout()).await;
    publish(&ch, "", &q, b"held").await;
    let cch = conn.create_channel().await.unwrap();
    let mut consumer = consume_from(&cch, &q).await;
    let started = std::time::Instant::now();
    let d = next_delivery(&mut consumer).await;
    assert_eq!(d.data, b"held");
    let (code, text) = channel_closed(&mut consumer).await;
    assert!(
        started.elapsed() >= Duration::from_millis(TIMEOUT_MS as u64),
        "closed after {:?}, before the timeout",
        started.elapsed()
    );
    assert_eq!(code, 406);
    assert_eq!(text, timeout_text(cch.id()));
    // Only the channel is closed: the connection and other channels live on.
    sync(&ch).await;
}

#[tokio::test]
async fn timed_out_delivery_is_requeued_as_redelivered() {
    let (_broker, conn, ch, q) =
        broker_with_queue_with("ctimeout-requeue", consumer_timeout()).await;
    publish(&ch, "", &q, b"held").await;
    let cch = conn.create_channel().await.unwrap();
    let mut consumer = consume_from(&cch, &q).await;
    let _d = next_delivery(&mut consumer).await;
    let (code, _) = channel_closed(&mut consumer).await;
    assert_eq!(code, 406);
    let m = get_message_no_ack(&ch, &q)
        .await
        .expect("the timed-out delivery is back in the queue");
    assert_eq!(m.delivery.data, b"held");
    assert!(m.delivery.redelivered);
}

#[tokio::test]
async fn promptly_acked_deliveries_do_not_time_out() {
    let (_broker, conn, ch, q) = broker_with_queue_with("ctimeout-acked", consumer_timeout()).await;
    let cch = conn.create_channel().await.unwrap();
    let mut consumer = consume_from(&cch, &q).await;
    // 3 s of traffic, each delivery acked at once.
    for i in 0..6 {
        publish(&ch, "", &q, format!("m{i}").as_bytes()).await;
        let d = next_delivery(&mut consumer).await;
        d.ack(BasicAckOptions::default()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    sync(&cch).await;
    assert!(cch.status().connected());
}

/// The check runs only while deliveries are out: after a quiet spell with everything acked,
/// the next unacked delivery must still time out.
#[tokio::test]
async fn a_delivery_after_a_quiet_spell_still_times_out() {
    let (_broker, conn, ch, q) = broker_with_queue_with("ctimeout-quiet", consumer_timeout()).await;
    let cch = conn.create_channel().await.unwrap();
    let mut consumer = consume_from(&cch, &q).await;
    publish(&ch, "", &q, b"acked").await;
    let d = next_delivery(&mut consumer).await;
    d.ack(BasicAckOptions::default()).await.unwrap();
    sync(&cch).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    publish(&ch, "", &q, b"held").await;
    let d = next_delivery(&mut consumer).await;
    assert_eq!(d.data, b"held");
    let (code, text) = channel_closed(&mut consumer).await;
    assert_eq!(code, 406);
    assert_eq!(text, timeout_text(cch.id()));
}

#[tokio::test]
async fn no_ack_consumer_never_times_out() {
    let (_broker, conn, ch, q) = broker_with_queue_with("ctimeout-noack", consumer_timeout()).await;
    publish(&ch, "", &q, b"m").await;
    let cch = conn.create_channel().await.unwrap();
    let mut consumer = consume_no_ack(&cch, &q).await;
    assert_eq!(next_delivery(&mut consumer).await.data, b"m");
    assert_no_delivery(&mut consumer, Duration::from_millis(3000)).await;
    sync(&cch).await;
}
