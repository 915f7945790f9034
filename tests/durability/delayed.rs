//! Delayed messages across restarts: persistent messages confirmed by a durable delayed exchange
//! come back after SIGTERM and after SIGKILL, each routed at its own due time (or right after
//! the start when it fell due while the broker was down); a schedule much larger than what a
//! delayed exchange keeps in memory is routed whole and in due order; a deleted exchange's
//! messages go through one declared again under its name, after a restart too, and once routed
//! (or due with no exchange of the name) leave nothing behind, as a non-durable one's. A message waiting for a retry (`x-retry-delays`)
//! keeps its attempt count across a restart.

use std::time::{Duration, Instant};

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use warren::store::{RecordCounts, count_in_dir};

use crate::common::*;
use crate::support::*;

fn delayed_kind() -> ExchangeKind {
    ExchangeKind::Custom("x-delayed-message".into())
}

fn delayed_direct() -> FieldTable {
    table(vec![("x-delayed-type", long_str("direct"))])
}

fn persistent_delay(ms: i64) -> BasicProperties {
    persistent().with_headers(table(vec![("x-delay", AMQPValue::LongLongInt(ms))]))
}

/// A durable delayed exchange (direct) and a durable queue bound to it with key "k".
async fn durable_delayed_topology(ch: &Channel, prefix: &str) -> (String, String) {
    let x = unique(&format!("{prefix}-x"));
    let q = unique(&format!("{prefix}-q"));
    declare_exchange_as(ch, &x, delayed_kind(), durable_exchange(), delayed_direct()).await;
    declare_durable_queue(ch, &q).await;
    bind_queue(ch, &q, &x, "k").await;
    (x, q)
}

/// Publishes each (body, delay) persistently and waits for every confirm.
async fn publish_delayed(ch: &Channel, x: &str, messages: &[(String, i64)]) {
    let batch: Vec<(&str, BasicProperties)> = messages
        .iter()
        .map(|(body, delay)| (body.as_str(), persistent_delay(*delay)))
        .collect();
    for confirmation in publish_batch(ch, x, "k", &batch).await {
        assert!(confirmation.is_ack(), "{confirmation:?}");
    }
}

async fn delayed_messages_survive(mut node: Node, stop: Stop) {
    let (x, q) = {
        let (conn, ch) = node.confirm_channel().await;
        let topology = durable_delayed_topology(&ch, "delayed-restart").await;
        let messages: Vec<(String, i64)> = vec![
            ("b".into(), 4_000),
            ("a".into(), 3_000),
            ("while-down".into(), 300),
        ];
        publish_delayed(&ch, &topology.0, &messages).await;
        conn.close(200, "bye".into()).await.ok();
        topology
    };
    // Down long enough for the shortest delay to pass.
    node.stop(stop);
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    node.restart_after_stop();
    let (_conn, ch) = node.channel().await;
    assert!(exchange_exists(&_conn, &x).await);
    // The one that fell due while the broker was down comes right after the start.
    wait_message_count_within(&ch, &q, 1, Duration::from_secs(2)).await;
    assert_eq!(drain_bodies(&ch, &q).await, ["while-down"]);
    // The others at their own due times, not before.
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "restart took too long to judge"
    );
    assert_eq!(message_count(&ch, &q).await, 0, "not due yet");
    wait_message_count_within(&ch, &q, 2, Duration::from_secs(6)).await;
    assert_eq!(drain_bodies(&ch, &q).await, ["a", "b"]);
}
both_stops!(
    delayed_messages_survive,
    delayed_messages_survive_a_graceful_restart,
    confirmed_delayed_messages_survive_kill9
);

/// More delayed messages than the exchange keeps in memory (8,192): the rest are read back from
/// the store as the window runs low, after a restart too; every one arrives, in due order.
/// Published in chunks, each later chunk delayed 700 ms less than the one before. Within a
/// chunk the due order is the publish order; across chunks, a message must not come after one
/// that was certainly due later (the window of each chunk's publishing is measured).
async fn a_large_schedule_is_routed_whole_and_in_order(node: Node, stop: Stop) {
    large_schedule(node, Some(stop)).await
}

#[tokio::test]
async fn a_large_schedule_is_routed_whole_without_a_restart() {
    large_schedule(Node::start(), None).await
}

both_stops!(
    a_large_schedule_is_routed_whole_and_in_order,
    a_large_schedule_is_routed_whole_after_a_graceful_restart,
    a_large_schedule_is_routed_whole_after_kill9
);

const CHUNKS: usize = 8;
const PER_CHUNK: usize = 1_500;

async fn large_schedule(mut node: Node, stop: Option<Stop>) {
    let delay_of = |c: usize| 2_000 + (CHUNKS - 1 - c) as i64 * 700;
    // Per chunk: when its publishing started and ended (ms after the first publish).
    let mut windows = Vec::new();
    let q = {
        let (conn, ch) = node.confirm_channel().await;
        let (x, q) = durable_delayed_topology(&ch, "delayed-large").await;
        let origin = Instant::now();
        for c in 0..CHUNKS {
            let chunk: Vec<(String, i64)> = (0..PER_CHUNK)
                .map(|i| (format!("{c}-{i:04}"), delay_of(c)))
                .collect();
            let start = origin.elapsed().as_millis() as i64;
            publish_delayed(&ch, &x, &chunk).await;
            windows.push((start, origin.elapsed().as_millis() as i64));
        }
        conn.close(200, "bye".into()).await.ok();
        q
    };
    if let Some(stop) = stop {
        node.restart(stop);
    }
    let (_conn, ch) = node.channel().await;
    let total = CHUNKS * PER_CHUNK;
    wait_message_count_within(&ch, &q, total as u32, Duration::from_secs(30)).await;
    let got = bodies(&get_all(&ch, &q).await);
    assert_eq!(got.len(), total);
    let mut next_in_chunk = [0usize; CHUNKS];
    let mut latest_certain_due = i64::MIN;
    for (n, body) in got.iter().enumerate() {
        let (c, i) = body.split_once('-').expect("chunk-index");
        let (c, i): (usize, usize) = (c.parse().unwrap(), i.parse().unwrap());
        assert_eq!(
            i, next_in_chunk[c],
            "delivery {n} ({body}): out of publish order in its chunk"
        );
        next_in_chunk[c] += 1;
        let (start, end) = windows[c];
        let (earliest, latest) = (start + delay_of(c), end + delay_of(c));
        assert!(
            latest + 5 >= latest_certain_due,
            "delivery {n} ({body}) was due by {latest} ms, after one due at {latest_certain_due} ms"
        );
        latest_certain_due = latest_certain_due.max(earliest);
    }
}

#[tokio::test]
async fn a_deleted_or_non_durable_delayed_exchange_leaves_nothing_behind() {
    let mut node = Node::start();
    let (q, kept) = {
        let (conn, ch) = node.confirm_channel().await;
        // Deleted, and nothing of its name when its message falls due: that goes nowhere.
        let (deleted, q) = durable_delayed_topology(&ch, "delayed-deleted").await;
        publish_delayed(&ch, &deleted, &[("deleted".into(), 300)]).await;
        delete_exchange(&ch, &deleted).await;
        let transient = unique("delayed-transient-x");
        declare_exchange_as(
            &ch,
            &transient,
            delayed_kind(),
            Default::default(),
            delayed_direct(),
        )
        .await;
        bind_queue(&ch, &q, &transient, "k").await;
        publish_delayed(&ch, &transient, &[("transient".into(), 60_000)]).await;
        let (kept, _) = durable_delayed_topology(&ch, "delayed-kept").await;
        publish_delayed(&ch, &kept, &[("kept".into(), 60_000)]).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        conn.close(200, "bye".into()).await.ok();
        (q, kept)
    };
    node.restart(Stop::Graceful);
    // Then a second start: what the first dropped is gone from the store, not only unloaded.
    node.restart(Stop::Graceful);
    let (conn, ch) = node.channel().await;
    assert_eq!(message_count(&ch, &q).await, 0);
    let http = crate::common::http::Http::new(&node.broker.management_url());
    let path = format!(
        "/api/exchanges/%2F/{}",
        crate::common::http::path_segment(&kept)
    );
    assert_eq!(http.get(&path).body["messages_delayed"], 1);
    conn.close(200, "bye".into()).await.ok();
    node.stop(Stop::Graceful);
    // The kept exchange's one message; the deleted and the non-durable one's are gone.
    let counts = count_in_dir(node.path()).expect("count records");
    let expected = RecordCounts {
        messages: 1,
        queue_index: 0,
        refcounts: 1,
        schedule_index: 1,
    };
    assert_eq!(counts, expected);
}

/// As with the plugin, a deleted delayed exchange's messages stay (recorded apart from the
/// exchange's definition, so a restart finds them) and go, when due, through the exchange
/// declared under its name then; once routed, nothing of them is left in the store.
async fn a_deleted_exchanges_messages_survive(mut node: Node, stop: Stop) {
    let (x, q) = {
        let (conn, ch) = node.confirm_channel().await;
        let (x, q) = durable_delayed_topology(&ch, "delayed-left").await;
        publish_delayed(&ch, &x, &[("kept".into(), 2_500)]).await;
        delete_exchange(&ch, &x).await;
        conn.close(200, "bye".into()).await.ok();
        (x, q)
    };
    node.stop(stop);
    node.restart_after_stop();
    let (conn, ch) = node.channel().await;
    assert!(!exchange_exists(&conn, &x).await);
    declare_exchange_as(
        &ch,
        &x,
        delayed_kind(),
        durable_exchange(),
        delayed_direct(),
    )
    .await;
    bind_queue(&ch, &q, &x, "k").await;
    wait_message_count_within(&ch, &q, 1, Duration::from_secs(5)).await;
    conn.close(200, "bye".into()).await.ok();
    node.stop(Stop::Graceful);
    let counts = count_in_dir(node.path()).expect("count records");
    let expected = RecordCounts {
        messages: 1,
        queue_index: 1,
        refcounts: 1,
        schedule_index: 0,
    };
    assert_eq!(counts, expected);
}

both_stops!(
    a_deleted_exchanges_messages_survive,
    a_deleted_exchanges_messages_survive_a_graceful_restart,
    a_deleted_exchanges_confirmed_messages_survive_kill9
);

/// A persistent message waiting for a retry in a durable queue (`x-retry-delays`) keeps its
/// place and its attempt count across a restart.
async fn retry_state_survives(mut node: Node, stop: Stop) {
    let q = unique("retry-restart");
    {
        let (conn, ch) = node.confirm_channel().await;
        let delays = AMQPValue::FieldArray(
            vec![AMQPValue::LongLongInt(1_500), AMQPValue::LongLongInt(1_000)].into(),
        );
        declare_durable_queue_with(&ch, &q, table(vec![("x-retry-delays", delays)])).await;
        publish_all_confirmed(&ch, &q, &["job".to_string()]).await;
        let m = get_message(&ch, &q).await.expect("first delivery");
        m.delivery
            .nack(lapin::options::BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await
            .expect("nack");
        // Long enough for the retry to reach the log (nothing waits for it).
        tokio::time::sleep(Duration::from_millis(300)).await;
        conn.close(200, "bye".into()).await.ok();
    }
    node.restart(stop);
    let (_conn, ch) = node.channel().await;
    assert_eq!(message_count(&ch, &q).await, 0, "still waiting");
    wait_message_count_within(&ch, &q, 1, Duration::from_secs(5)).await;
    let got = get_all(&ch, &q).await;
    assert_eq!(bodies(&got), ["job"]);
    let count = got[0]
        .properties
        .headers()
        .clone()
        .and_then(|h| h.inner().get("x-delivery-count").cloned());
    assert!(
        matches!(
            count,
            Some(AMQPValue::LongInt(1) | AMQPValue::LongLongInt(1))
        ),
        "{count:?}"
    );
}
both_stops!(
    retry_state_survives,
    a_message_waiting_for_a_retry_survives_a_graceful_restart,
    a_message_waiting_for_a_retry_survives_kill9
);

/// Confirmed half messages survive a restart: one is committed from a new connection after it,
/// the other is checked back through its `reply_to` as if nothing had happened.
async fn half_messages_survive(mut node: Node, stop: Stop) {
    let (x, q, checks) = (unique("half-x"), unique("half-q"), unique("half-checks"));
    let half = |id: &str, check_after: i64| {
        persistent()
            .with_message_id(id.into())
            .with_reply_to(checks.as_str().into())
            .with_headers(table(vec![
                ("x-half", AMQPValue::Boolean(true)),
                ("x-half-check-after", AMQPValue::LongLongInt(check_after)),
            ]))
    };
    {
        let (conn, ch) = node.confirm_channel().await;
        declare_durable_exchange(&ch, &x, ExchangeKind::Direct).await;
        declare_durable_queue(&ch, &q).await;
        declare_durable_queue(&ch, &checks).await;
        bind_queue(&ch, &q, &x, "k").await;
        let batch = [
            ("to-commit", half("to-commit", 60_000)),
            ("to-check", half("to-check", 1_500)),
        ];
        for confirmation in publish_batch(&ch, &x, "k", &batch).await {
            assert!(confirmation.is_ack(), "{confirmation:?}");
        }
        conn.close(200, "bye".into()).await.ok();
    }
    node.restart(stop);
    let (_conn, ch) = node.confirm_channel().await;
    assert_eq!(message_count(&ch, &q).await, 0, "still held");
    let commit = BasicProperties::default()
        .with_message_id("to-commit".into())
        .with_headers(table(vec![("x-half-commit", AMQPValue::Boolean(true))]));
    let confirmation = publish_batch(&ch, "", "", &[("", commit)]).await;
    assert!(confirmation[0].is_ack());
    wait_message_count_within(&ch, &q, 1, Duration::from_secs(2)).await;
    assert_eq!(bodies(&get_all(&ch, &q).await), ["to-commit"]);
    wait_message_count_within(&ch, &checks, 1, Duration::from_secs(5)).await;
    let check = get_all(&ch, &checks).await;
    assert_eq!(bodies(&check), ["to-check"]);
    assert_eq!(
        check[0]
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.as_str()),
        Some("to-check")
    );
}
both_stops!(
    half_messages_survive,
    half_messages_survive_a_graceful_restart,
    confirmed_half_messages_survive_kill9
);
