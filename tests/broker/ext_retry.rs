//! Retry with back-off (`x-retry-delays`, a warren extension): a reject or nack with requeue
//! makes the message wait the queue's next delay, counted in `x-delivery-count`; after the
//! last it is dead-lettered as `rejected`. Without the argument, requeue is RabbitMQ's (the
//! last test, which also runs against RabbitMQ). Restarts: tests/durability/delayed.rs.

use std::time::{Duration, Instant};

use amq_protocol::types::{AMQPValue, FieldArray, FieldTable};
use lapin::options::{BasicNackOptions, BasicRejectOptions};
use lapin::{Channel, ExchangeKind};

use crate::common::http::Http;
use crate::common::*;

fn delays(ms: &[i64]) -> (&'static str, AMQPValue) {
    let items = ms
        .iter()
        .map(|d| AMQPValue::LongLongInt(*d))
        .collect::<Vec<_>>();
    (
        "x-retry-delays",
        AMQPValue::FieldArray(FieldArray::from(items)),
    )
}

fn delivery_count(d: &lapin::message::BasicGetMessage) -> Option<i64> {
    let headers = d.delivery.properties.headers().clone()?;
    match headers.inner().get("x-delivery-count")? {
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::LongLongInt(n) => Some(*n),
        _ => None,
    }
}

/// basic.get (manual ack) within `within`, polling.
async fn get_within(
    ch: &Channel,
    q: &str,
    within: Duration,
) -> Option<lapin::message::BasicGetMessage> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(m) = get_message(ch, q).await {
            return Some(m);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn nack_requeue(m: &lapin::message::BasicGetMessage) {
    m.delivery
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await
        .expect("nack");
}

#[tokio::test]
async fn each_requeue_waits_the_next_delay_then_the_message_is_dead_lettered() {
    if external() {
        return; // a warren extension
    }
    let (_broker, _conn, ch) = broker_with_channel().await;
    let dlx = unique("retry-dlx");
    declare_exchange(&ch, &dlx, ExchangeKind::Fanout).await;
    let dead = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &dead, &dlx, "").await;
    let mut args = vec![delays(&[200, 600])];
    args.push(("x-dead-letter-exchange", long_str(&dlx)));
    let q = unique("retry");
    declare_queue_with(&ch, &q, table(args)).await;
    publish(&ch, "", &q, b"job").await;

    let first = get_within(&ch, &q, WAIT).await.expect("first delivery");
    assert_eq!(delivery_count(&first), None);
    let failed = Instant::now();
    nack_requeue(&first).await;
    assert!(get_message(&ch, &q).await.is_none(), "not back at once");
    let second = get_within(&ch, &q, WAIT)
        .await
        .expect("back after the first delay");
    let waited = failed.elapsed();
    assert!(
        waited >= Duration::from_millis(190),
        "came back after {waited:?}"
    );
    assert_eq!(delivery_count(&second), Some(1));

    let failed = Instant::now();
    second
        .delivery
        .reject(BasicRejectOptions { requeue: true })
        .await
        .expect("reject");
    let third = get_within(&ch, &q, WAIT)
        .await
        .expect("back after the second delay");
    assert!(
        failed.elapsed() >= Duration::from_millis(590),
        "came back after {:?}",
        failed.elapsed()
    );
    assert_eq!(delivery_count(&third), Some(2));

    // Delays used up: dead-lettered as rejected, not requeued.
    nack_requeue(&third).await;
    let dead_letter = get_within(&ch, &dead, WAIT).await.expect("dead-lettered");
    assert_eq!(dead_letter.delivery.data, b"job");
    let headers = dead_letter
        .delivery
        .properties
        .headers()
        .clone()
        .unwrap_or_default();
    let Some(AMQPValue::FieldArray(deaths)) = headers.inner().get("x-death") else {
        panic!("no x-death: {headers:?}");
    };
    let Some(AMQPValue::FieldTable(death)) = deaths.as_slice().first() else {
        panic!("empty x-death");
    };
    assert_eq!(
        death.inner().get("reason"),
        Some(&AMQPValue::LongString("rejected".into()))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn without_a_dead_letter_exchange_the_last_failure_drops_the_message() {
    if external() {
        return;
    }
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("retry-drop");
    declare_queue_with(&ch, &q, table(vec![delays(&[100])])).await;
    publish(&ch, "", &q, b"job").await;
    nack_requeue(&get_within(&ch, &q, WAIT).await.expect("first")).await;
    nack_requeue(&get_within(&ch, &q, WAIT).await.expect("retried")).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn a_closed_channel_requeues_at_once_and_acks_settle_as_usual() {
    if external() {
        return;
    }
    let (broker, _conn, ch) = broker_with_channel().await;
    let q = unique("retry-close");
    declare_queue_with(&ch, &q, table(vec![delays(&[60_000])])).await;
    publish(&ch, "", &q, b"job").await;
    sync(&ch).await;
    {
        let (other_conn, other) = broker.channel().await;
        let m = get_within(&other, &q, WAIT).await.expect("delivery");
        assert_eq!(m.delivery.data, b"job");
        other_conn.close(200, "bye".into()).await.ok();
    }
    // Not a failed attempt: back at once, no count.
    let m = get_within(&ch, &q, Duration::from_secs(2))
        .await
        .expect("requeued at once");
    assert_eq!(delivery_count(&m), None);
    assert!(m.delivery.redelivered);
    m.delivery.ack(Default::default()).await.expect("ack");
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn bad_retry_delays_are_refused() {
    if external() {
        return;
    }
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("retry-bad");
    let (code, text) =
        declare_queue_error(&ch, &q, table(vec![("x-retry-delays", long_str("1s"))])).await;
    assert_eq!(code, 406, "{text}");
    assert!(text.contains("invalid arg 'x-retry-delays'"), "{text}");
    let (_c2, ch) = _broker.channel().await;
    let (code, text) = declare_queue_error(&ch, &q, table(vec![delays(&[-1])])).await;
    assert_eq!(code, 406, "{text}");
    let (_c3, ch) = _broker.channel().await;
    let quorum = table(vec![delays(&[100]), ("x-queue-type", long_str("quorum"))]);
    let (code, text) = declare_queue_error(&ch, &q, quorum).await;
    assert_eq!(code, 406, "{text}");
}

#[tokio::test]
async fn without_the_argument_a_requeue_is_rabbitmqs() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("no-retry");
    declare_queue_with(&ch, &q, FieldTable::default()).await;
    publish(&ch, "", &q, b"job").await;
    let m = get_within(&ch, &q, WAIT).await.expect("delivery");
    nack_requeue(&m).await;
    let again = get_within(&ch, &q, Duration::from_millis(500))
        .await
        .expect("back at once");
    assert!(again.delivery.redelivered);
    assert_eq!(delivery_count(&again), None, "classic queues add no count");
}

#[tokio::test]
async fn the_retry_delays_policy_key_gives_a_queue_retries() {
    if external() {
        return;
    }
    let (broker, _conn, ch) = broker_with_channel().await;
    let q = unique("retry-policy");
    declare_queue_with(&ch, &q, FieldTable::default()).await;
    let http = Http::new(&broker.management_url());
    let body = serde_json::json!({"pattern": format!("^{q}$"), "apply-to": "queues",
                                  "definition": {"retry-delays": [300]}});
    let status = http.put(&format!("/api/policies/%2F/{q}"), &body).status;
    assert!(status == 201 || status == 204, "policy put: {status}");
    let bad = serde_json::json!({"pattern": "^x$", "definition": {"retry-delays": "soon"}});
    assert_eq!(http.put("/api/policies/%2F/bad-retry", &bad).status, 400);
    publish(&ch, "", &q, b"job").await;
    let m = get_within(&ch, &q, WAIT).await.expect("delivery");
    let failed = Instant::now();
    nack_requeue(&m).await;
    let again = get_within(&ch, &q, WAIT)
        .await
        .expect("back after the policy's delay");
    assert!(
        failed.elapsed() >= Duration::from_millis(290),
        "after {:?}",
        failed.elapsed()
    );
    assert_eq!(delivery_count(&again), Some(1));
}
