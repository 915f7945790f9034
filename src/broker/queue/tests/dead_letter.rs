//! Dead-lettering (`x-dead-letter-exchange`, `x-dead-letter-routing-key`): which messages go
//! (rejected without requeue, expired, dropped or refused for a length limit — never requeued,
//! acked or purged ones), where they go (the DLX, with the dead-letter routing key or their
//! own), and the headers RabbitMQ 3.10 puts on them: an `x-death` table per (queue, reason),
//! newest first, and `x-first-death-*` set once. Cycles back into a queue are dropped unless a
//! client rejected the message since its last visit there.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable};

use crate::broker::exchange::ExchangeKind;
use crate::broker::message::QueuedMessage;
use crate::broker::queue::Queue;
use crate::broker::queue::dead_letter::DeadLetterTally;
use crate::broker::queue::test_support::*;
use crate::broker::vhost::VHost;

/// A vhost with fanout exchange `dlx` and queue `dlq` bound to it.
fn with_dlq() -> (Arc<VHost>, Arc<Queue>) {
    let vhost = vhost();
    declare_exchange(&vhost, "dlx", ExchangeKind::Fanout, &[]);
    let dlq = declare(&vhost, "dlq", &[]);
    bind(&vhost, "dlx", "dlq", "");
    (vhost, dlq)
}

fn dlx(name: &str) -> (&'static str, AMQPValue) {
    ("x-dead-letter-exchange", text(name))
}

fn dlx_key(key: &str) -> (&'static str, AMQPValue) {
    ("x-dead-letter-routing-key", text(key))
}

/// Takes the head of `queue` (ack mode) and rejects it without requeue.
fn get_and_reject(queue: &Arc<Queue>) {
    let (m, _) = queue.get(false).expect("a message to reject");
    queue.reject(None, &[m]);
}

/// The one message in `queue`, taken out.
fn only_message(queue: &Arc<Queue>) -> QueuedMessage {
    let (m, left) = queue.get(true).expect("a dead-lettered message");
    assert_eq!(left, 0, "exactly one message in {}", queue.name);
    m
}

fn headers(m: &QueuedMessage) -> FieldTable {
    m.message
        .properties
        .headers()
        .expect("a dead-lettered message has headers")
}

fn string(v: Option<&AMQPValue>) -> String {
    match v {
        Some(AMQPValue::LongString(s)) => String::from_utf8(s.as_bytes().to_vec()).unwrap(),
        other => panic!("expected a long string, got {other:?}"),
    }
}

/// Checks one x-death entry field by field (the time for type and plausibility).
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
    assert_eq!(e.get("routing-keys"), Some(&texts(routing_keys)));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    match e.get("time") {
        Some(AMQPValue::Timestamp(t)) => assert!(
            *t + 60 >= now && *t <= now + 60,
            "time {t} is not now in seconds ({now})"
        ),
        other => panic!("time must be a timestamp, got {other:?}"),
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
}

#[test]
fn a_rejected_message_is_dead_lettered_with_its_history_in_the_headers() {
    let (vhost, dlq) = with_dlq();
    let src = declare(&vhost, "src", &[dlx("dlx")]);
    send_with(
        &vhost,
        "src",
        "body",
        BasicProperties::default()
            .with_headers(table(&[("app", text("kept"))]))
            .with_message_id("mid-1".into()),
    );
    get_and_reject(&src);
    assert_eq!(src.message_count(), 0);
    let m = only_message(&dlq);
    assert_eq!(body(&m), "body");
    // Routed through the DLX, with the original routing key; a new message, not redelivered.
    assert_eq!(
        (&*m.message.exchange, m.message.routing_key.as_str()),
        ("dlx", "src")
    );
    assert!(!m.redelivered);
    let props = m.message.properties.to_basic();
    assert_eq!(
        props.message_id().as_ref().map(|s| s.as_str()),
        Some("mid-1")
    );
    let h = headers(&m);
    assert_eq!(string(h.inner().get("app")), "kept");
    let deaths = x_death(&h);
    assert_eq!(deaths.len(), 1);
    assert_death(&deaths[0], 1, "rejected", "src", "", &["src"], None);
    assert_first_death(&h, "rejected", "src", "");
    let mut keys: Vec<&str> = h.inner().keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "app",
            "x-death",
            "x-first-death-exchange",
            "x-first-death-queue",
            "x-first-death-reason"
        ],
        "RabbitMQ 3.10 sets no x-last-death-* headers"
    );
}

#[test]
fn a_consumer_rejecting_several_dead_letters_them_in_order() {
    let (vhost, dlq) = with_dlq();
    let src = declare(&vhost, "src", &[dlx("dlx")]);
    let c = consume(&src, "c").attach();
    for i in 0..3 {
        send(&vhost, "src", &format!("m{i}"));
    }
    let got = c.take();
    c.reject(&got);
    assert_eq!(drain(&dlq), ["m0", "m1", "m2"]);
}

#[test]
fn requeued_acked_and_purged_messages_are_not_dead_lettered() {
    let (vhost, dlq) = with_dlq();
    let src = declare(&vhost, "src", &[dlx("dlx")]);
    for i in 0..3 {
        send(&vhost, "src", &format!("m{i}"));
    }
    let (m0, _) = src.get(false).expect("m0");
    src.requeue(None, vec![m0]);
    let (m0, _) = src.get(false).expect("m0 again");
    assert!(m0.redelivered);
    assert!(m0.message.properties.headers().is_none(), "no x-death");
    src.settle(None, &[m0]);
    assert_eq!(src.purge(), 2);
    assert_eq!(dlq.message_count(), 0);
}

#[test]
fn an_expired_message_is_dead_lettered_with_reason_expired() {
    let (vhost, dlq) = with_dlq();
    let src = declare(&vhost, "src", &[dlx("dlx"), ("x-message-ttl", int(100))]);
    send(&vhost, "src", "old");
    // Nobody touches the source queue: housekeeping expires it.
    expire_after(&src, 1_000);
    let m = only_message(&dlq);
    assert_eq!(body(&m), "old");
    let h = headers(&m);
    let deaths = x_death(&h);
    assert_eq!(deaths.len(), 1);
    assert_death(&deaths[0], 1, "expired", "src", "", &["src"], None);
    assert_first_death(&h, "expired", "src", "");
}

#[test]
fn a_per_message_expiration_moves_to_original_expiration() {
    let (vhost, dlq) = with_dlq();
    let src = declare(&vhost, "src", &[dlx("dlx")]);
    send_with(&vhost, "src", "short", expiring("100"));
    expire_after(&src, 1_000);
    let m = only_message(&dlq);
    assert_eq!(
        m.message.properties.expiration(),
        None,
        "the copy does not expire"
    );
    let deaths = x_death(&headers(&m));
    assert_death(&deaths[0], 1, "expired", "src", "", &["src"], Some("100"));
}

#[test]
fn a_ttl_0_message_nobody_could_take_is_dead_lettered_as_expired() {
    let (vhost, dlq) = with_dlq();
    let _src = declare(&vhost, "src", &[dlx("dlx"), ("x-message-ttl", int(0))]);
    send(&vhost, "src", "now-or-never");
    let m = only_message(&dlq);
    assert_eq!(body(&m), "now-or-never");
    assert_death(
        &x_death(&headers(&m))[0],
        1,
        "expired",
        "src",
        "",
        &["src"],
        None,
    );
}

#[test]
fn a_max_length_overflow_dead_letters_the_head_with_reason_maxlen() {
    let (vhost, dlq) = with_dlq();
    let src = declare(&vhost, "src", &[dlx("dlx"), ("x-max-length", int(1))]);
    send(&vhost, "src", "first");
    send(&vhost, "src", "second");
    let m = only_message(&dlq);
    assert_eq!(body(&m), "first");
    let h = headers(&m);
    assert_death(&x_death(&h)[0], 1, "maxlen", "src", "", &["src"], None);
    assert_first_death(&h, "maxlen", "src", "");
    assert_eq!(drain(&src), ["second"]);
}

#[test]
fn reject_publish_dlx_dead_letters_the_refused_message() {
    let (vhost, dlq) = with_dlq();
    let src = declare(
        &vhost,
        "src",
        &[
            dlx("dlx"),
            ("x-max-length", int(1)),
            ("x-overflow", text("reject-publish-dlx")),
        ],
    );
    assert!(!try_send(&vhost, "src", "kept").rejected);
    assert!(try_send(&vhost, "src", "refused").rejected);
    let m = only_message(&dlq);
    assert_eq!(body(&m), "refused");
    assert_death(
        &x_death(&headers(&m))[0],
        1,
        "maxlen",
        "src",
        "",
        &["src"],
        None,
    );
    assert_eq!(drain(&src), ["kept"]);
}

#[test]
fn reject_publish_does_not_dead_letter_the_refused_message() {
    let (vhost, dlq) = with_dlq();
    let _src = declare(
        &vhost,
        "src",
        &[
            dlx("dlx"),
            ("x-max-length", int(1)),
            ("x-overflow", text("reject-publish")),
        ],
    );
    send(&vhost, "src", "kept");
    assert!(try_send(&vhost, "src", "refused").rejected);
    assert_eq!(dlq.message_count(), 0);
}

#[test]
fn the_dead_letter_routing_key_replaces_the_routing_key_but_not_the_history() {
    let vhost = vhost();
    let target = declare(&vhost, "target", &[]);
    // Dead-letters through the default exchange to `target`.
    let src = declare(&vhost, "src", &[dlx(""), dlx_key("target")]);
    send(&vhost, "src", "m");
    get_and_reject(&src);
    let m = only_message(&target);
    assert_eq!(
        (&*m.message.exchange, m.message.routing_key.as_str()),
        ("", "target")
    );
    assert_death(
        &x_death(&headers(&m))[0],
        1,
        "rejected",
        "src",
        "",
        &["src"],
        None,
    );
}

#[test]
fn x_death_records_the_original_exchange_and_cc_routing_keys() {
    let (vhost, dlq) = with_dlq();
    let src = declare(&vhost, "src", &[dlx("dlx")]);
    declare_exchange(&vhost, "ex", ExchangeKind::Direct, &[]);
    bind(&vhost, "ex", "src", "k1");
    let props = BasicProperties::default().with_headers(table(&[("CC", texts(&["k2"]))]));
    assert_eq!(publish(&vhost, "ex", "k1", "cc", props), 1);
    get_and_reject(&src);
    let m = only_message(&dlq);
    let h = headers(&m);
    assert_death(
        &x_death(&h)[0],
        1,
        "rejected",
        "src",
        "ex",
        &["k1", "k2"],
        None,
    );
    assert_first_death(&h, "rejected", "src", "ex");
}

#[test]
fn the_count_goes_up_when_the_same_queue_dead_letters_for_the_same_reason_again() {
    let vhost = vhost();
    // Rejections may cycle: q dead-letters back into itself.
    let q = declare(&vhost, "q", &[dlx(""), dlx_key("q")]);
    send(&vhost, "q", "again");
    get_and_reject(&q);
    get_and_reject(&q);
    let m = only_message(&q);
    let h = headers(&m);
    let deaths = x_death(&h);
    assert_eq!(deaths.len(), 1, "same queue and reason: one entry");
    assert_death(&deaths[0], 2, "rejected", "q", "", &["q"], None);
    assert_first_death(&h, "rejected", "q", "");
}

#[test]
fn a_death_in_another_queue_prepends_a_new_entry() {
    let vhost = vhost();
    let dlq = declare(&vhost, "final", &[]);
    let q2 = declare(&vhost, "q2", &[dlx(""), dlx_key("final")]);
    let q1 = declare(
        &vhost,
        "q1",
        &[dlx(""), dlx_key("q2"), ("x-message-ttl", int(100))],
    );
    send(&vhost, "q1", "twice");
    // Expires from q1 into q2, then is rejected from q2 into final.
    expire_after(&q1, 1_000);
    get_and_reject(&q2);
    let m = only_message(&dlq);
    let h = headers(&m);
    let deaths = x_death(&h);
    assert_eq!(deaths.len(), 2);
    // Newest first; the routing keys each queue saw the message with.
    assert_death(&deaths[0], 1, "rejected", "q2", "", &["q2"], None);
    assert_death(&deaths[1], 1, "expired", "q1", "", &["q1"], None);
    assert_first_death(&h, "expired", "q1", "");
}

#[test]
fn an_expiry_cycle_back_into_the_same_queue_is_dropped() {
    let vhost = vhost();
    let q = declare(
        &vhost,
        "q",
        &[("x-message-ttl", int(100)), dlx(""), dlx_key("q")],
    );
    send(&vhost, "q", "cycle");
    expire_after(&q, 1_000);
    assert_eq!(q.message_count(), 0, "never re-enters the queue");
}

#[test]
fn an_automatic_cycle_is_dropped_even_after_an_earlier_rejection() {
    let vhost = vhost();
    let full = declare(
        &vhost,
        "full",
        &[dlx(""), dlx_key("full"), ("x-max-length", int(0))],
    );
    let first = declare(&vhost, "first", &[dlx(""), dlx_key("full")]);
    send(&vhost, "first", "loop");
    get_and_reject(&first);
    // Rejected from `first` into `full`, dropped for maxlen into `full` again: a cycle with
    // no rejection since the last visit to `full`.
    assert_eq!(full.message_count(), 0);
    assert_eq!(first.message_count(), 0);
}

#[test]
fn a_cycle_with_a_rejection_in_it_goes_round_every_time() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[dlx(""), dlx_key("q")]);
    send(&vhost, "q", "again");
    for _ in 0..3 {
        get_and_reject(&q);
    }
    let m = only_message(&q);
    assert_eq!(body(&m), "again");
    assert_death(
        &x_death(&headers(&m))[0],
        3,
        "rejected",
        "q",
        "",
        &["q"],
        None,
    );
}

#[test]
fn a_missing_dead_letter_exchange_drops_the_message() {
    let vhost = vhost();
    let src = declare(&vhost, "src", &[dlx("no-such-dlx")]);
    send(&vhost, "src", "m");
    get_and_reject(&src);
    assert_eq!(src.message_count(), 0);
}

#[test]
fn a_dead_letter_no_queue_is_bound_for_is_dropped() {
    let vhost = vhost();
    declare_exchange(&vhost, "lonely", ExchangeKind::Direct, &[]);
    let src = declare(&vhost, "src", &[dlx("lonely")]);
    send(&vhost, "src", "m");
    get_and_reject(&src);
    assert_eq!(src.message_count(), 0);
}

#[test]
fn a_dead_letter_exchange_routes_like_any_exchange() {
    let vhost = vhost();
    declare_exchange(&vhost, "dlx", ExchangeKind::Topic, &[]);
    let errors = declare(&vhost, "errors", &[]);
    let all = declare(&vhost, "all", &[]);
    bind(&vhost, "dlx", "errors", "*.error");
    bind(&vhost, "dlx", "all", "#");
    let src = declare(&vhost, "src", &[dlx("dlx")]);
    bind(&vhost, "amq.topic", "src", "#");
    for key in ["disk.error", "disk.info"] {
        publish(&vhost, "amq.topic", key, key, BasicProperties::default());
    }
    let c = consume(&src, "c").attach();
    c.reject(&c.take());
    assert_eq!(drain(&errors), ["disk.error"]);
    assert_eq!(drain(&all), ["disk.error", "disk.info"]);
}

/// RabbitMQ routes a dead letter by every routing key the message was published with — its
/// own and its CC keys (`rabbit_dead_letter:make_msg` keeps `routing_keys`) — unless
/// `x-dead-letter-routing-key` replaces them all.
#[test]
fn without_a_dead_letter_routing_key_the_cc_keys_route_the_dead_letter_too() {
    let vhost = vhost();
    declare_exchange(&vhost, "ex", ExchangeKind::Direct, &[]);
    declare_exchange(&vhost, "dlx", ExchangeKind::Direct, &[]);
    let src = declare(&vhost, "src", &[dlx("dlx")]);
    bind(&vhost, "ex", "src", "k1");
    let by_k1 = declare(&vhost, "by-k1", &[]);
    let by_k2 = declare(&vhost, "by-k2", &[]);
    bind(&vhost, "dlx", "by-k1", "k1");
    bind(&vhost, "dlx", "by-k2", "k2");
    let props = BasicProperties::default().with_headers(table(&[("CC", texts(&["k2"]))]));
    assert_eq!(publish(&vhost, "ex", "k1", "m", props), 1);
    get_and_reject(&src);
    assert_eq!(drain(&by_k1), ["m"]);
    assert_eq!(drain(&by_k2), ["m"]);
}

/// With `x-dead-letter-routing-key`, RabbitMQ removes the CC header from the dead letter (its
/// keys stay recorded in x-death's routing-keys).
#[test]
fn a_dead_letter_routing_key_removes_the_cc_header() {
    let vhost = vhost();
    let target = declare(&vhost, "target", &[]);
    let src = declare(&vhost, "src", &[dlx(""), dlx_key("target")]);
    let props = BasicProperties::default().with_headers(table(&[("CC", texts(&["elsewhere"]))]));
    assert_eq!(publish(&vhost, "", "src", "m", props), 1);
    get_and_reject(&src);
    let m = only_message(&target);
    let h = headers(&m);
    assert_death(
        &x_death(&h)[0],
        1,
        "rejected",
        "src",
        "",
        &["src", "elsewhere"],
        None,
    );
    assert!(
        !h.inner().contains_key("CC"),
        "CC header: {:?}",
        h.inner().get("CC")
    );
}

/// Full queues that dead-letter into each other by fanout multiply copies until the cycle rule
/// ends each path (thousands with four queues, each held by every queue that takes it). The
/// deliveries such a cascade makes are capped, so one publish costs a bounded amount of memory
/// and time.
#[test]
fn a_mesh_of_full_queues_makes_a_bounded_number_of_copies() {
    const FULL_QUEUES: usize = 7;
    let vhost = vhost();
    declare_exchange(&vhost, "mesh", ExchangeKind::Fanout, &[]);
    for i in 0..FULL_QUEUES {
        let name = format!("full{i}");
        declare(&vhost, &name, &[("x-max-length", int(0)), dlx("mesh")]);
        bind(&vhost, "mesh", &name, "");
    }
    let all = declare(&vhost, "all", &[]);
    bind(&vhost, "mesh", "all", "");
    let before = DeadLetterTally::on_this_thread();
    assert_eq!(
        publish(&vhost, "mesh", "", "m", BasicProperties::default()),
        FULL_QUEUES + 1
    );
    let held = all.message_count() as usize;
    assert!(held > 1, "the cascade ran ({held} copies)");
    // One cascade for the publish: 256 deliveries, plus 32 for each full queue's dead letter
    // that started it (7,064 copies before the budget counted deliveries).
    let budget = 256 + 32 * FULL_QUEUES;
    assert!(held <= 1 + budget, "{held} copies held");
    // The tally the fuzz target's memory rule uses counts every one of them, and no more.
    let made = DeadLetterTally::since(before);
    assert!(
        made.deliveries >= held - 1 && made.deliveries <= budget,
        "{made:?} for {held} copies held"
    );
    assert!(
        made.messages > 0 && made.property_bytes > made.messages * 100,
        "{made:?}"
    );
}
