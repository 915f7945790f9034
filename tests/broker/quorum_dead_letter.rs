//! `x-dead-letter-strategy` on quorum queues (issue #14), as RabbitMQ 3.10 does it: with
//! `at-least-once`, overflow `reject-publish` and a dead-letter exchange, a dead letter stays in
//! its source queue (counted in the management API's `messages` and `messages_dlx`, and against
//! the length limit; not by queue.declare-ok, basic.get or purge) until the queues it routes to
//! have it. Routed nowhere, it waits: a policy change on the source makes the queue try again
//! at once, as does RabbitMQ's timer (180 s; warren's `dead_letter_retry_ms`). Otherwise the
//! strategy falls back to at-most-once. The tests using `TestBroker::start` run against the
//! reference RabbitMQ too (`WARREN_TEST_AMQP_URL`); those that configure or restart warren are
//! warren's own (their names say `warren_only` or `kill_9`).

use std::time::{Duration, Instant};

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::options::BasicRejectOptions;
use lapin::{Channel, ExchangeKind};
use serde_json::{Value, json};

use crate::common::http::Http;
use crate::common::*;

fn quorum(extra: &[(&str, &str)]) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_str("quorum"));
    for (k, v) in extra {
        args.insert((*k).into(), long_str(v));
    }
    args
}

/// A quorum queue dead-lettering at least once into `dlx`.
fn at_least_once(dlx: &str) -> FieldTable {
    quorum(&[
        ("x-dead-letter-exchange", dlx),
        ("x-dead-letter-strategy", "at-least-once"),
        ("x-overflow", "reject-publish"),
    ])
}

async fn declare_quorum(ch: &Channel, name: &str, args: FieldTable) {
    ch.queue_declare(name.into(), durable(), args)
        .await
        .unwrap_or_else(|e| panic!("declare {name}: {e}"));
}

/// Publishes `bodies` (confirmed), then takes the head and rejects it without requeue.
async fn publish_and_reject_head(ch: &Channel, queue: &str, bodies: &[&str]) {
    for body in bodies {
        let c = publish_confirmed(ch, "", queue, body.as_bytes(), transient()).await;
        assert!(c.is_ack(), "{body} confirmed");
    }
    let m = wait_for_message_to_ack(ch, queue).await;
    m.delivery
        .reject(BasicRejectOptions { requeue: false })
        .await
        .expect("basic.reject");
}

/// The management API's view of a queue once `fields` show (RabbitMQ samples every 5 s).
fn wait_shown(http: &Http, queue: &str, fields: &[(&str, u64)]) -> Value {
    let path = format!("/api/queues/%2F/{queue}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let shown = http.get(&path).body;
        if fields.iter().all(|(k, v)| shown[*k] == json!(v)) {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "{path} shows {shown}, expected {fields:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Any policy put on a queue makes RabbitMQ's dead-letter worker look at the topology again.
fn touch_with_policy(http: &Http, policy: &str, queue: &str, definition: Value) {
    let status = http
        .put(
            &format!("/api/policies/%2F/{policy}"),
            &json!({"pattern": format!("^{queue}$"), "apply-to": "queues",
                    "definition": definition}),
        )
        .status;
    assert!(status == 201 || status == 204, "policy put: {status}");
}

/// Nothing in `queue` for a while.
async fn assert_stays_empty(ch: &Channel, queue: &str, wait: Duration) {
    tokio::time::sleep(wait).await;
    assert_eq!(message_count(ch, queue).await, 0, "{queue} got a message");
}

fn first_death(m: &lapin::message::BasicGetMessage) -> (String, String) {
    let headers = m.delivery.properties.headers().clone().unwrap_or_default();
    let text = |k: &str| match headers.inner().get(k) {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => panic!("{k}: {other:?}"),
    };
    (text("x-first-death-reason"), text("x-first-death-queue"))
}

async fn delete_all(ch: &Channel, queues: &[&str], exchanges: &[&str]) {
    for q in queues {
        let _ = ch.queue_delete((*q).into(), Default::default()).await;
    }
    for x in exchanges {
        let _ = ch.exchange_delete((*x).into(), Default::default()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_at_least_once_dead_letter_routed_nowhere_stays_until_a_policy_change_sends_it() {
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let (src, dlx, dlq, policy) = (
        unique("dls-src"),
        unique("dls-dlx"),
        unique("dls-dlq"),
        unique("dls-pol"),
    );
    declare_exchange(&ch, &dlx, ExchangeKind::Fanout).await;
    declare_quorum(&ch, &src, at_least_once(&dlx)).await;
    publish_and_reject_head(&ch, &src, &["dead", "ready1", "ready2"]).await;
    // Still in the queue: counted as a dead letter, not as ready.
    assert_eq!(message_count(&ch, &src).await, 2);
    wait_shown(
        &http,
        &src,
        &[
            ("messages", 3),
            ("messages_ready", 2),
            ("messages_dlx", 1),
            ("message_bytes_dlx", 4),
        ],
    );
    // A purge leaves it; a get never sees it.
    assert_eq!(purge_queue(&ch, &src).await, 2);
    assert!(get_message(&ch, &src).await.is_none());
    wait_shown(&http, &src, &[("messages", 1), ("messages_dlx", 1)]);
    // A queue bound now does not get it by itself (RabbitMQ waits for its 180 s timer)...
    declare_durable_queue(&ch, &dlq).await;
    bind_queue(&ch, &dlq, &dlx, "").await;
    assert_stays_empty(&ch, &dlq, Duration::from_millis(1500)).await;
    // ...but any policy change on the source sends it at once, with its x-death.
    touch_with_policy(&http, &policy, &src, json!({"max-length-bytes": 1_000_000}));
    let got = wait_for_message(&ch, &dlq).await;
    assert_eq!(got.delivery.data, b"dead");
    assert_eq!(first_death(&got), ("rejected".to_string(), src.clone()));
    wait_shown(&http, &src, &[("messages", 0), ("messages_dlx", 0)]);
    http.delete(&format!("/api/policies/%2F/{policy}"));
    delete_all(&ch, &[&src, &dlq], &[&dlx]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_at_least_once_dead_letter_waits_for_a_missing_dead_letter_exchange() {
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let (src, dlx, dlq, policy) = (
        unique("dls-src"),
        unique("dls-nodlx"),
        unique("dls-dlq"),
        unique("dls-pol"),
    );
    declare_quorum(&ch, &src, at_least_once(&dlx)).await;
    publish_and_reject_head(&ch, &src, &["kept"]).await;
    wait_shown(&http, &src, &[("messages", 1), ("messages_dlx", 1)]);
    declare_exchange(&ch, &dlx, ExchangeKind::Fanout).await;
    declare_durable_queue(&ch, &dlq).await;
    bind_queue(&ch, &dlq, &dlx, "").await;
    touch_with_policy(&http, &policy, &src, json!({"max-length-bytes": 1_000_000}));
    let got = wait_for_message(&ch, &dlq).await;
    assert_eq!(got.delivery.data, b"kept");
    wait_shown(&http, &src, &[("messages", 0), ("messages_dlx", 0)]);
    http.delete(&format!("/api/policies/%2F/{policy}"));
    delete_all(&ch, &[&src, &dlq], &[&dlx]).await;
}

/// Without overflow reject-publish, at-least-once falls back to at-most-once: the dead letter
/// routed nowhere is gone, and binding a queue then finds nothing to send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_falls_back_to_at_most_once_without_reject_publish() {
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    for overflow in [None, Some("drop-head"), Some("reject-publish-dlx")] {
        let (src, dlx, dlq, policy) = (
            unique("dls-src"),
            unique("dls-dlx"),
            unique("dls-dlq"),
            unique("dls-pol"),
        );
        declare_exchange(&ch, &dlx, ExchangeKind::Fanout).await;
        let mut args = vec![
            ("x-dead-letter-exchange", dlx.as_str()),
            ("x-dead-letter-strategy", "at-least-once"),
        ];
        args.extend(overflow.map(|o| ("x-overflow", o)));
        declare_quorum(&ch, &src, quorum(&args)).await;
        publish_and_reject_head(&ch, &src, &["gone"]).await;
        wait_shown(&http, &src, &[("messages", 0), ("messages_dlx", 0)]);
        declare_durable_queue(&ch, &dlq).await;
        bind_queue(&ch, &dlq, &dlx, "").await;
        touch_with_policy(&http, &policy, &src, json!({"max-length-bytes": 1_000_000}));
        assert_stays_empty(&ch, &dlq, Duration::from_millis(1500)).await;
        http.delete(&format!("/api/policies/%2F/{policy}"));
        delete_all(&ch, &[&src, &dlq], &[&dlx]).await;
    }
}

/// The strategy comes from the argument, else the policy; the overflow of a quorum queue from
/// the policy first. A policy that turns at-least-once off deletes what waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_sets_the_strategy_and_turning_it_off_deletes_the_waiting_dead_letters() {
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let (src, dlx, dlq, policy) = (
        unique("dls-src"),
        unique("dls-dlx"),
        unique("dls-dlq"),
        unique("dls-pol"),
    );
    declare_exchange(&ch, &dlx, ExchangeKind::Fanout).await;
    // x-overflow drop-head, but a quorum queue takes the policy's overflow.
    declare_quorum(
        &ch,
        &src,
        quorum(&[
            ("x-dead-letter-exchange", &dlx),
            ("x-overflow", "drop-head"),
        ]),
    )
    .await;
    let on = json!({"dead-letter-strategy": "at-least-once", "overflow": "reject-publish"});
    touch_with_policy(&http, &policy, &src, on.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    publish_and_reject_head(&ch, &src, &["held"]).await;
    wait_shown(&http, &src, &[("messages", 1), ("messages_dlx", 1)]);
    declare_durable_queue(&ch, &dlq).await;
    bind_queue(&ch, &dlq, &dlx, "").await;
    touch_with_policy(
        &http,
        &policy,
        &src,
        json!({"dead-letter-strategy": "at-most-once", "overflow": "reject-publish"}),
    );
    wait_shown(&http, &src, &[("messages", 0), ("messages_dlx", 0)]);
    // Deleted, not sent: turning it back on finds nothing to send.
    touch_with_policy(&http, &policy, &src, on);
    assert_stays_empty(&ch, &dlq, Duration::from_millis(1500)).await;
    http.delete(&format!("/api/policies/%2F/{policy}"));
    delete_all(&ch, &[&src, &dlq], &[&dlx]).await;
}

/// A quorum queue refuses a publish once it is over its limit (rabbit_fifo:is_over_limit), and
/// the dead letters it holds count with its ready messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_dead_letters_count_against_the_length_limit() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let (plain, src, dlx) = (unique("dls-len"), unique("dls-src"), unique("dls-dlx"));
    declare_exchange(&ch, &dlx, ExchangeKind::Fanout).await;
    let mut limited = quorum(&[("x-overflow", "reject-publish")]);
    limited.insert("x-max-length".into(), AMQPValue::LongInt(2));
    declare_quorum(&ch, &plain, limited).await;
    let mut confirms = Vec::new();
    for body in ["1", "2", "3", "4"] {
        let c = publish_confirmed(&ch, "", &plain, body.as_bytes(), transient()).await;
        confirms.push(c.is_ack());
    }
    assert_eq!(confirms, [true, true, true, false]);
    let mut args = at_least_once(&dlx);
    args.insert("x-max-length".into(), AMQPValue::LongInt(2));
    declare_quorum(&ch, &src, args).await;
    publish_and_reject_head(&ch, &src, &["held"]).await;
    let mut confirms = Vec::new();
    for body in ["a", "b", "c"] {
        let c = publish_confirmed(&ch, "", &src, body.as_bytes(), transient()).await;
        confirms.push(c.is_ack());
    }
    assert_eq!(confirms, [true, true, false]);
    assert_eq!(message_count(&ch, &src).await, 2);
    delete_all(&ch, &[&plain, &src], &[&dlx]).await;
}

/// `reject-publish-dlx` is not a quorum queue overflow: RabbitMQ uses drop-head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_queue_treats_reject_publish_dlx_as_drop_head() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let (src, dlq) = (unique("dls-src"), unique("dls-dlq"));
    declare_durable_queue(&ch, &dlq).await;
    let mut args = quorum(&[
        ("x-overflow", "reject-publish-dlx"),
        ("x-dead-letter-exchange", ""),
        ("x-dead-letter-routing-key", &dlq),
    ]);
    args.insert("x-max-length".into(), AMQPValue::LongInt(1));
    declare_quorum(&ch, &src, args).await;
    for body in ["first", "second"] {
        let c = publish_confirmed(&ch, "", &src, body.as_bytes(), transient()).await;
        assert!(c.is_ack(), "{body} confirmed");
    }
    let dead = wait_for_message(&ch, &dlq).await;
    assert_eq!(dead.delivery.data, b"first");
    assert_eq!(first_death(&dead), ("maxlen".to_string(), src.clone()));
    assert_eq!(get_body(&ch, &src).await.as_deref(), Some(&b"second"[..]));
    delete_all(&ch, &[&src, &dlq], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_dead_letter_strategy_is_checked_and_compared_as_rabbitmq_does() {
    let broker = TestBroker::start();
    let name = unique("dls-args");
    let what = format!("queue '{name}' in vhost '/'");
    let cases = [
        (
            quorum(&[("x-dead-letter-strategy", "bogus")]),
            format!("invalid arg 'x-dead-letter-strategy' for {what}: invalid_dlx_strategy"),
        ),
        (
            {
                let mut args = quorum(&[]);
                args.insert("x-dead-letter-strategy".into(), AMQPValue::LongInt(5));
                args
            },
            format!(
                "invalid arg 'x-dead-letter-strategy' for {what}: {{unacceptable_type,signedint}}"
            ),
        ),
        (
            table(vec![("x-dead-letter-strategy", long_str("bogus"))]),
            format!(
                "invalid arg 'x-dead-letter-strategy' for {what} of queue type rabbit_classic_queue"
            ),
        ),
    ];
    for (args, text) in cases {
        let (_conn, ch) = broker.channel().await;
        let refused = expect_amqp_error(
            ch.queue_declare(name.as_str().into(), durable(), args)
                .await,
        );
        assert_eq!(refused, precondition_failed(&text));
    }
    let (_conn, ch) = broker.channel().await;
    declare_quorum(
        &ch,
        &name,
        quorum(&[("x-dead-letter-strategy", "at-least-once")]),
    )
    .await;
    for (args, shown) in [
        (
            quorum(&[("x-dead-letter-strategy", "at-most-once")]),
            "received 'at-most-once' but current is 'at-least-once'".to_string(),
        ),
        (
            quorum(&[]),
            "received none but current is the value 'at-least-once' of type 'longstr'".to_string(),
        ),
    ] {
        let (_conn, ch) = broker.channel().await;
        let refused = expect_amqp_error(
            ch.queue_declare(name.as_str().into(), durable(), args)
                .await,
        );
        assert_eq!(
            refused,
            precondition_failed(format!(
                "inequivalent arg 'x-dead-letter-strategy' for {what}: {shown}"
            ))
        );
    }
    let (_conn, ch) = broker.channel().await;
    delete_all(&ch, &[&name], &[]).await;
    // The policy key, as RabbitMQ validates it.
    let http = Http::new(&broker.management_url());
    let refused = http.put(
        &format!("/api/policies/%2F/{}", unique("dls-pol")),
        &json!({"pattern": "^none$", "definition": {"dead-letter-strategy": "bogus"}}),
    );
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body["reason"],
        "Validation failed\n\n&lt;&lt;\"bogus\"&gt;&gt; is not a valid dead letter strategy\n"
    );
}

/// warren only (its retry interval is configured short; RabbitMQ's is 180 s): the timer sends
/// what waits, offers it again only to the targets that did not take it, and lets it go once
/// every target has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warren_only_the_retry_timer_sends_what_waits_once_to_each_target() {
    if external() {
        return;
    }
    let broker = TestBroker::spawn_with_config("dead_letter_retry_ms = 300\n");
    let http = Http::new(&broker.management_url());
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let (src, dlx, full, open) = (
        unique("dls-src"),
        unique("dls-dlx"),
        unique("dls-full"),
        unique("dls-open"),
    );
    declare_exchange(&ch, &dlx, ExchangeKind::Fanout).await;
    declare_quorum(&ch, &src, at_least_once(&dlx)).await;
    publish_and_reject_head(&ch, &src, &["retried"]).await;
    // Nothing bound: it waits, and the timer sends it once a queue is there.
    declare_durable_queue(&ch, &open).await;
    bind_queue(&ch, &open, &dlx, "").await;
    wait_message_count(&ch, &open, 1).await;
    wait_shown(&http, &src, &[("messages", 0), ("messages_dlx", 0)]);
    // One target refuses (full, reject-publish): it waits for that one only.
    let mut refusing = table(vec![("x-overflow", long_str("reject-publish"))]);
    refusing.insert("x-max-length".into(), AMQPValue::LongInt(0));
    declare_queue_with(&ch, &full, refusing).await;
    bind_queue(&ch, &full, &dlx, "").await;
    publish_and_reject_head(&ch, &src, &["partly"]).await;
    wait_message_count(&ch, &open, 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wait_shown(&http, &src, &[("messages", 1), ("messages_dlx", 1)]);
    assert_eq!(message_count(&ch, &open).await, 2, "not sent twice");
    // The refusing target goes: the next retry lets the message go.
    delete_queue(&ch, &full).await;
    wait_shown(&http, &src, &[("messages", 0), ("messages_dlx", 0)]);
    assert_eq!(message_count(&ch, &open).await, 2);
}

/// warren only (it kills the broker): a dead letter waiting for its targets survives a kill -9.
/// RabbitMQ keeps it as a dead letter; warren's store keeps the source's copy, which comes back
/// as a ready message (redelivered) of its queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_dead_letter_survives_kill_9_as_a_message_of_its_queue() {
    let dir = std::env::temp_dir().join(unique("dls-crash"));
    let mut broker = TestBroker::spawn_in(&dir, &[]);
    let (conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    declare_durable_exchange(&ch, "dls-dlx", ExchangeKind::Fanout).await;
    declare_quorum(&ch, "dls-src", at_least_once("dls-dlx")).await;
    publish_and_reject_head(&ch, "dls-src", &["waiting", "ready"]).await;
    assert_eq!(message_count(&ch, "dls-src").await, 1);
    // A confirmed publish after the reject: the store has seen the reject's effects by now.
    publish_confirmed(&ch, "", "dls-src", b"last", transient()).await;
    drop(conn);
    broker.kill9();
    let broker = TestBroker::spawn_in(&dir, &[]);
    let (_conn, ch) = broker.channel().await;
    assert_eq!(
        drain_bodies(&ch, "dls-src").await,
        ["waiting", "ready", "last"]
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
