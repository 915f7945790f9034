//! Dead lettering (`x-dead-letter-exchange`, `x-dead-letter-routing-key`)
//! and the headers RabbitMQ 3.10 adds to a dead-lettered message.
//!
//! Layout (RabbitMQ 3.10; there are NO `x-last-death-*` headers in 3.10):
//!   x-death: array ('A') of tables ('F'), most recent death first, one entry
//!     per (queue, reason); each table:
//!       count 'l' (i64), reason 'S' ("rejected" | "expired" | "maxlen"),
//!       queue 'S', time 'T' (timestamp, seconds), exchange 'S' (the
//!       exchange the message was originally published to, "" for the
//!       default exchange), routing-keys 'A' of 'S' (routing key plus any CC
//!       header keys), and, for a message that had an `expiration` property,
//!       original-expiration 'S' (the property itself is removed).
//!   x-first-death-reason / x-first-death-queue / x-first-death-exchange 'S'.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldArray, FieldTable};
use lapin::{
    Channel, ExchangeKind,
    message::BasicGetMessage,
    options::{BasicNackOptions, BasicRejectOptions},
};

use crate::common::*;

/// A fanout DLX with one queue bound to it: (exchange, queue).
async fn dlx_with_queue(ch: &Channel) -> (String, String) {
    let dlx = unique("dlx");
    declare_auto_delete_exchange(ch, &dlx, ExchangeKind::Fanout).await;
    let dlq = unique("dlq");
    declare_queue(ch, &dlq).await;
    bind_queue(ch, &dlq, &dlx, "").await;
    (dlx, dlq)
}

/// Arguments that dead-letter into the exchange `dlx`.
fn dead_letter_exchange(dlx: &str) -> FieldTable {
    table(vec![("x-dead-letter-exchange", long_str(dlx))])
}

fn headers(m: &BasicGetMessage) -> FieldTable {
    m.delivery
        .properties
        .headers()
        .clone()
        .expect("dead-lettered message has headers")
}

fn string(v: Option<&AMQPValue>) -> String {
    match v {
        Some(AMQPValue::LongString(s)) => String::from_utf8(s.as_bytes().to_vec()).unwrap(),
        other => panic!("expected a long string ('S'), got {other:?}"),
    }
}

fn x_death(h: &FieldTable) -> Vec<FieldTable> {
    match h.inner().get("x-death") {
        Some(AMQPValue::FieldArray(a)) => a
            .as_slice()
            .iter()
            .map(|v| match v {
                AMQPValue::FieldTable(t) => t.clone(),
                other => panic!("x-death entry is not a table: {other:?}"),
            })
            .collect(),
        other => panic!("x-death missing or not an array: {other:?}"),
    }
}

fn long_strings(keys: &[&str]) -> AMQPValue {
    let mut a = FieldArray::default();
    for k in keys {
        a.push(long_str(k));
    }
    AMQPValue::FieldArray(a)
}

/// Checks one x-death entry exactly (time only for type and plausibility).
#[track_caller]
fn assert_death(
    entry: &FieldTable,
    count: i64,
    reason: &str,
    queue: &str,
    exchange: &str,
    routing_keys: &[&str],
    original_expiration: Option<&str>,
) {
    let e = entry.inner();
    let mut keys: Vec<&str> = e.keys().map(|k| k.as_str()).collect();
    keys.sort();
    let mut want = vec![
        "count",
        "exchange",
        "queue",
        "reason",
        "routing-keys",
        "time",
    ];
    if original_expiration.is_some() {
        want.push("original-expiration");
        want.sort();
    }
    assert_eq!(keys, want, "x-death entry fields");
    assert_eq!(e.get("count"), Some(&AMQPValue::LongLongInt(count)));
    assert_eq!(string(e.get("reason")), reason);
    assert_eq!(string(e.get("queue")), queue);
    assert_eq!(string(e.get("exchange")), exchange);
    assert_eq!(e.get("routing-keys"), Some(&long_strings(routing_keys)));
    match e.get("time") {
        Some(AMQPValue::Timestamp(t)) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            assert!(
                *t + 60 >= now && *t <= now + 60,
                "time {t} is not a current timestamp in seconds (now {now})"
            );
        }
        other => panic!("time must be a timestamp ('T'), got {other:?}"),
    }
    if let Some(exp) = original_expiration {
        assert_eq!(string(e.get("original-expiration")), exp);
    }
}

#[track_caller]
fn assert_first_death(h: &FieldTable, reason: &str, queue: &str, exchange: &str) {
    assert_eq!(string(h.inner().get("x-first-death-reason")), reason);
    assert_eq!(string(h.inner().get("x-first-death-queue")), queue);
    assert_eq!(string(h.inner().get("x-first-death-exchange")), exchange);
    for k in [
        "x-last-death-reason",
        "x-last-death-queue",
        "x-last-death-exchange",
    ] {
        assert!(!h.contains_key(k), "RabbitMQ 3.10 sets no {k}");
    }
}

#[tokio::test]
async fn rejected_message_is_dead_lettered_with_x_death_headers() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let (dlx, dlq) = dlx_with_queue(&ch).await;
    let src = unique("dl-src");
    declare_queue_with(&ch, &src, dead_letter_exchange(&dlx)).await;
    let app_headers = table(vec![("app", long_str("kept"))]);
    publish_props(
        &ch,
        "",
        &src,
        b"body",
        BasicProperties::default()
            .with_headers(app_headers)
            .with_message_id("mid-1".into()),
    )
    .await;
    get_and_reject(&ch, &src).await;
    let m = wait_for_message(&ch, &dlq).await;
    assert_eq!(m.delivery.data, b"body");
    // Delivered from the DLX, with the original routing key.
    assert_eq!(m.delivery.exchange.as_str(), dlx);
    assert_eq!(m.delivery.routing_key.as_str(), src);
    assert!(!m.delivery.redelivered);
    assert_eq!(
        m.delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str()),
        Some("mid-1")
    );
    let h = headers(&m);
    assert_eq!(string(h.inner().get("app")), "kept");
    let deaths = x_death(&h);
    assert_eq!(deaths.len(), 1);
    assert_death(&deaths[0], 1, "rejected", &src, "", &[&src], None);
    assert_first_death(&h, "rejected", &src, "");
    let mut keys: Vec<&str> = h.inner().keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "app",
            "x-death",
            "x-first-death-exchange",
            "x-first-death-queue",
            "x-first-death-reason"
        ]
    );
}

#[tokio::test]
async fn nack_without_requeue_dead_letters_with_reason_rejected() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let (dlx, dlq) = dlx_with_queue(&ch).await;
    let src = unique("dl-nack");
    declare_queue_with(&ch, &src, dead_letter_exchange(&dlx)).await;
    publish(&ch, "", &src, b"n").await;
    let m = wait_for_message_to_ack(&ch, &src).await;
    m.delivery
        .nack(BasicNackOptions {
            multiple: false,
            requeue: false,
        })
        .await
        .unwrap();
    let m = wait_for_message(&ch, &dlq).await;
    let deaths = x_death(&headers(&m));
    assert_death(&deaths[0], 1, "rejected", &src, "", &[&src], None);
}

#[tokio::test]
async fn requeued_message_is_not_dead_lettered() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let (dlx, dlq) = dlx_with_queue(&ch).await;
    let src = unique("dl-requeue");
    declare_queue_with(&ch, &src, dead_letter_exchange(&dlx)).await;
    publish(&ch, "", &src, b"r").await;
    let m = wait_for_message_to_ack(&ch, &src).await;
    m.delivery
        .reject(BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    sync(&ch).await;
    let again = wait_for_message(&ch, &src).await;
    assert!(again.delivery.redelivered);
    assert!(again.delivery.properties.headers().is_none());
    assert_eq!(get_body(&ch, &dlq).await, None);
}

#[tokio::test]
async fn expired_message_is_dead_lettered_with_reason_expired() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let (dlx, dlq) = dlx_with_queue(&ch).await;
    let src = unique("dl-ttl");
    let mut args = dead_letter_exchange(&dlx);
    args.insert("x-message-ttl".into(), AMQPValue::LongInt(100));
    declare_queue_with(&ch, &src, args).await;
    publish(&ch, "", &src, b"old").await;
    // Nobody touches the source queue: it expires the message by itself.
    let m = wait_for_message(&ch, &dlq).await;
    assert_eq!(m.delivery.data, b"old");
    let h = headers(&m);
    let deaths = x_death(&h);
    assert_eq!(deaths.len(), 1);
    assert_death(&deaths[0], 1, "expired", &src, "", &[&src], None);
    assert_first_death(&h, "expired", &src, "");
}

#[tokio::test]
async fn per_message_expiration_is_moved_to_original_expiration() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let (dlx, dlq) = dlx_with_queue(&ch).await;
    let src = unique("dl-exp");
    declare_queue_with(&ch, &src, dead_letter_exchange(&dlx)).await;
    let expires_in_100_ms = BasicProperties::default().with_expiration("100".into());
    publish_props(&ch, "", &src, b"short", expires_in_100_ms).await;
    let m = wait_for_message(&ch, &dlq).await;
    assert_eq!(m.delivery.properties.expiration(), &None);
    let deaths = x_death(&headers(&m));
    assert_death(&deaths[0], 1, "expired", &src, "", &[&src], Some("100"));
}

#[tokio::test]
async fn max_length_overflow_dead_letters_head_with_reason_maxlen() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let (dlx, dlq) = dlx_with_queue(&ch).await;
    let src = unique("dl-maxlen");
    let mut args = dead_letter_exchange(&dlx);
    args.insert("x-max-length".into(), AMQPValue::LongInt(1));
    declare_queue_with(&ch, &src, args).await;
    publish(&ch, "", &src, b"first").await;
    publish(&ch, "", &src, b"second").await;
    let m = wait_for_message(&ch, &dlq).await;
    assert_eq!(m.delivery.data, b"first");
    let h = headers(&m);
    assert_death(&x_death(&h)[0], 1, "maxlen", &src, "", &[&src], None);
    assert_first_death(&h, "maxlen", &src, "");
    assert_eq!(drain_bodies(&ch, &src).await, vec!["second"]);
}

#[tokio::test]
async fn dead_letter_routing_key_replaces_routing_key() {
    let (_broker, _conn, ch, target) = broker_with_queue("dl-target").await;
    let src = unique("dl-rk");
    // Dead-letter through the default exchange to `target`.
    declare_queue_with(&ch, &src, table(dead_letter_to(&target))).await;
    publish(&ch, "", &src, b"m").await;
    get_and_reject(&ch, &src).await;
    let m = wait_for_message(&ch, &target).await;
    assert_eq!(m.delivery.exchange.as_str(), "");
    assert_eq!(m.delivery.routing_key.as_str(), target);
    // routing-keys records the ORIGINAL routing key.
    assert_death(
        &x_death(&headers(&m))[0],
        1,
        "rejected",
        &src,
        "",
        &[&src],
        None,
    );
}

#[tokio::test]
async fn x_death_records_original_exchange_and_cc_routing_keys() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let (dlx, dlq) = dlx_with_queue(&ch).await;
    let src = unique("dl-cc");
    declare_queue_with(&ch, &src, dead_letter_exchange(&dlx)).await;
    let ex = unique("dl-cc-ex");
    declare_auto_delete_exchange(&ch, &ex, ExchangeKind::Direct).await;
    bind_queue(&ch, &src, &ex, "k1").await;
    let mut cc = FieldArray::default();
    cc.push(long_str("k2"));
    publish_props(
        &ch,
        &ex,
        "k1",
        b"cc",
        BasicProperties::default().with_headers(table(vec![("CC", AMQPValue::FieldArray(cc))])),
    )
    .await;
    get_and_reject(&ch, &src).await;
    let m = wait_for_message(&ch, &dlq).await;
    let h = headers(&m);
    assert_death(
        &x_death(&h)[0],
        1,
        "rejected",
        &src,
        &ex,
        &["k1", "k2"],
        None,
    );
    assert_first_death(&h, "rejected", &src, &ex);
}

#[tokio::test]
async fn count_increments_when_dead_lettered_again_from_same_queue_for_same_reason() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("dl-loop");
    // Rejections may cycle: q dead-letters back into itself.
    declare_queue_with(&ch, &q, table(dead_letter_to(&q))).await;
    publish(&ch, "", &q, b"again").await;
    get_and_reject(&ch, &q).await;
    get_and_reject(&ch, &q).await;
    let m = wait_for_message(&ch, &q).await;
    let h = headers(&m);
    let deaths = x_death(&h);
    assert_eq!(deaths.len(), 1, "same queue + reason: one entry");
    assert_death(&deaths[0], 2, "rejected", &q, "", &[&q], None);
    assert_first_death(&h, "rejected", &q, "");
}

#[tokio::test]
async fn death_in_another_queue_prepends_a_new_x_death_entry() {
    let (_broker, _conn, ch, dlq) = broker_with_queue("dl-final").await;
    let q2 = unique("dl-q2");
    declare_queue_with(&ch, &q2, table(dead_letter_to(&dlq))).await;
    let q1 = unique("dl-q1");
    let mut args = dead_letter_to(&q2);
    args.push(("x-message-ttl", AMQPValue::LongInt(100)));
    declare_queue_with(&ch, &q1, table(args)).await;
    publish(&ch, "", &q1, b"twice").await;
    // Expires from q1 into q2, then is rejected from q2 into dlq.
    get_and_reject(&ch, &q2).await;
    let m = wait_for_message(&ch, &dlq).await;
    let h = headers(&m);
    let deaths = x_death(&h);
    assert_eq!(deaths.len(), 2);
    // Most recent first; the routing keys are those the message had when it
    // entered each queue.
    assert_death(&deaths[0], 1, "rejected", &q2, "", &[&q2], None);
    assert_death(&deaths[1], 1, "expired", &q1, "", &[&q1], None);
    assert_first_death(&h, "expired", &q1, "");
}

#[tokio::test]
async fn expiry_cycle_back_into_same_queue_is_dropped() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("dl-cycle");
    let mut args = dead_letter_to(&q);
    args.push(("x-message-ttl", AMQPValue::LongInt(200)));
    declare_queue_with(&ch, &q, table(args)).await;
    publish(&ch, "", &q, b"cycle").await;
    sync(&ch).await;
    // RabbitMQ detects the cycle on the first expiry (the new x-death entry
    // names the queue it would be routed to, and no rejection is involved)
    // and drops the message: it never re-enters the queue.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(get_body(&ch, &q).await, None);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn dead_letter_exchange_that_does_not_exist_drops_the_message() {
    let (_broker, _conn, ch, src) =
        broker_with_queue_with("dl-missing", dead_letter_exchange(&unique("no-such-dlx"))).await;
    publish(&ch, "", &src, b"m").await;
    get_and_reject(&ch, &src).await;
    sync(&ch).await;
    assert_eq!(message_count(&ch, &src).await, 0);
}

invalid_queue_arg_tests! {
    dead_letter_routing_key_without_exchange_is_406:
        "dl-rk-only", "x-dead-letter-routing-key", long_str("k")
        => "routing_key_but_no_dlx_defined";
}
