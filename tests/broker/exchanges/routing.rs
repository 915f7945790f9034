//! Routing by exchange type: the default exchange, direct (amq.direct too), fanout, topic
//! wildcards and headers matching.

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ExchangeKind};

use crate::common::*;

#[tokio::test]
async fn default_exchange_routes_to_queue_named_by_routing_key() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let other = declare_tmp_queue(&ch).await;
    publish(&ch, "", &q, b"to-q").await;
    publish(&ch, "", "no-such-queue-anywhere", b"lost").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["to-q"]);
    assert!(drain_bodies(&ch, &other).await.is_empty());
}

#[tokio::test]
async fn amq_direct_routes_like_any_direct_exchange() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let key = unique("amq-direct-key");
    bind_queue(&ch, &q, "amq.direct", &key).await;
    publish(&ch, "amq.direct", &key, b"m").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["m"]);
}

#[tokio::test]
async fn direct_exchange_routes_on_exact_routing_key() {
    let (_broker, _conn, ch, x) = broker_with_exchange("direct", ExchangeKind::Direct).await;
    let qa = declare_tmp_queue(&ch).await;
    let qb = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &qa, &x, "a").await;
    bind_queue(&ch, &qb, &x, "b").await;
    bind_queue(&ch, &qb, &x, "c").await;
    for key in ["a", "b", "c", "d", "A", "a.b", ""] {
        publish(&ch, &x, key, key.as_bytes()).await;
    }
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &qa).await, vec!["a"]);
    assert_eq!(drain_bodies(&ch, &qb).await, vec!["b", "c"]);
}

#[tokio::test]
async fn message_matching_two_bindings_of_one_queue_is_delivered_once() {
    let (_broker, _conn, ch, x) = broker_with_exchange("topic-dup", ExchangeKind::Topic).await;
    let q = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &q, &x, "a.*").await;
    bind_queue(&ch, &q, &x, "#").await;
    bind_queue(&ch, &q, &x, "#").await; // duplicate binding is idempotent
    publish(&ch, &x, "a.b", b"once").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["once"]);
}

#[tokio::test]
async fn fanout_exchange_ignores_routing_key() {
    let (_broker, _conn, ch, x) = broker_with_exchange("fanout", ExchangeKind::Fanout).await;
    let q1 = declare_tmp_queue(&ch).await;
    let q2 = declare_tmp_queue(&ch).await;
    bind_queue(&ch, &q1, &x, "").await;
    bind_queue(&ch, &q2, &x, "whatever").await;
    publish(&ch, &x, "anything", b"1").await;
    publish(&ch, &x, "", b"2").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q1).await, vec!["1", "2"]);
    assert_eq!(drain_bodies(&ch, &q2).await, vec!["1", "2"]);
}

#[tokio::test]
async fn topic_exchange_matches_star_and_hash_wildcards() {
    let (_broker, _conn, ch, x) = broker_with_exchange("topic", ExchangeKind::Topic).await;
    let patterns = [
        "*.orange.*",
        "*.*.rabbit",
        "lazy.#",
        "#",
        "a.#.b",
        "exact.key",
        "*",
        "#.end",
        "x.*.#",
    ];
    let keys = [
        "quick.orange.rabbit",
        "lazy.orange.elephant",
        "quick.orange.fox",
        "lazy.brown.fox",
        "lazy",
        "quick.brown.fox",
        "orange",
        "quick.orange.male.rabbit",
        "a.b",
        "a.x.y.b",
        "a.b.c",
        "exact.key",
        "exact.keys",
        "",
        "end",
        "the.end",
        "x",
        "x.y",
        "x.y.z",
        "..",
        "a..b",
    ];
    let mut queues = Vec::new();
    for p in patterns {
        let q = declare_tmp_queue(&ch).await;
        bind_queue(&ch, &q, &x, p).await;
        queues.push(q);
    }
    for k in keys {
        publish(&ch, &x, k, k.as_bytes()).await;
    }
    sync(&ch).await;
    let expected: [&[&str]; 9] = [
        &[
            "quick.orange.rabbit",
            "lazy.orange.elephant",
            "quick.orange.fox",
        ],
        &["quick.orange.rabbit"],
        &["lazy.orange.elephant", "lazy.brown.fox", "lazy"],
        &keys,
        &["a.b", "a.x.y.b", "a..b"],
        &["exact.key"],
        // An empty routing key has no words: "*" does not match it, "#" does.
        &["lazy", "orange", "end", "x"],
        &["end", "the.end"],
        &["x.y", "x.y.z"],
    ];
    for ((p, q), want) in patterns.iter().zip(&queues).zip(expected) {
        let got = drain_bodies(&ch, q).await;
        let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "pattern {p:?}");
    }
}

fn headers_props(entries: Vec<(&str, AMQPValue)>) -> BasicProperties {
    BasicProperties::default().with_headers(table(entries))
}

#[tokio::test]
async fn headers_exchange_matches_all_any_and_with_x_variants() {
    let (_broker, _conn, ch, x) = broker_with_exchange("headers", ExchangeKind::Headers).await;
    let s = |v: &str| AMQPValue::LongString(v.into());
    let bindings: Vec<(&str, FieldTable)> = vec![
        (
            "all",
            table(vec![
                ("x-match", s("all")),
                ("format", s("pdf")),
                ("type", s("report")),
            ]),
        ),
        (
            "any",
            table(vec![
                ("x-match", s("any")),
                ("format", s("pdf")),
                ("type", s("report")),
            ]),
        ),
        (
            "default",
            table(vec![("format", s("pdf")), ("type", s("report"))]),
        ),
        (
            "all-x",
            table(vec![
                ("x-match", s("all-with-x")),
                ("x-tag", s("t")),
                ("format", s("pdf")),
            ]),
        ),
        (
            "any-x",
            table(vec![("x-match", s("any-with-x")), ("x-tag", s("t"))]),
        ),
        (
            "any-ignores-x",
            table(vec![("x-match", s("any")), ("x-tag", s("t"))]),
        ),
        (
            "void",
            table(vec![("x-match", s("all")), ("flag", AMQPValue::Void)]),
        ),
        (
            "typed",
            table(vec![("x-match", s("all")), ("n", AMQPValue::LongInt(42))]),
        ),
        ("empty-all", table(vec![("x-match", s("all"))])),
    ];
    let mut queues = Vec::new();
    for (name, args) in &bindings {
        let q = declare_tmp_queue(&ch).await;
        bind_queue_with(&ch, &q, &x, "ignored-key", args.clone()).await;
        queues.push((name.to_string(), q));
    }
    let messages: Vec<(&str, Vec<(&str, AMQPValue)>)> = vec![
        (
            "pdf-report",
            vec![("format", s("pdf")), ("type", s("report"))],
        ),
        ("pdf-only", vec![("format", s("pdf"))]),
        ("pdf-log", vec![("format", s("pdf")), ("type", s("log"))]),
        ("zip", vec![("format", s("zip"))]),
        ("tagged-pdf", vec![("x-tag", s("t")), ("format", s("pdf"))]),
        ("tagged", vec![("x-tag", s("t"))]),
        ("flag", vec![("flag", s("anything"))]),
        ("n42", vec![("n", AMQPValue::LongInt(42))]),
        ("n42-string", vec![("n", s("42"))]),
        ("none", vec![]),
    ];
    for (body, headers) in messages {
        publish_props(&ch, &x, "k", body.as_bytes(), headers_props(headers)).await;
    }
    // A message without any headers table at all.
    publish(&ch, &x, "k", b"no-table").await;
    sync(&ch).await;
    let expected: Vec<(&str, Vec<&str>)> = vec![
        ("all", vec!["pdf-report"]),
        (
            "any",
            vec!["pdf-report", "pdf-only", "pdf-log", "tagged-pdf"],
        ),
        ("default", vec!["pdf-report"]),
        ("all-x", vec!["tagged-pdf"]),
        ("any-x", vec!["tagged-pdf", "tagged"]),
        ("any-ignores-x", vec![]),
        ("void", vec!["flag"]),
        ("typed", vec!["n42"]),
        (
            "empty-all",
            vec![
                "pdf-report",
                "pdf-only",
                "pdf-log",
                "zip",
                "tagged-pdf",
                "tagged",
                "flag",
                "n42",
                "n42-string",
                "none",
                "no-table",
            ],
        ),
    ];
    for ((name, q), (ename, want)) in queues.iter().zip(expected) {
        assert_eq!(name, ename);
        assert_eq!(drain_bodies(&ch, q).await, want, "binding {name}");
    }
}
