//! Exchanges: the built-in ones, routing by type, declare/delete semantics,
//! exchange-to-exchange bindings, alternate exchanges and internal exchanges.

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, ExchangeKind,
    options::{
        BasicPublishOptions, ExchangeBindOptions, ExchangeDeclareOptions, ExchangeDeleteOptions,
        ExchangeUnbindOptions, QueueDeclareOptions,
    },
};

use crate::common::*;

async fn declare_exchange(ch: &Channel, name: &str, kind: ExchangeKind) {
    ch.exchange_declare(
        name.into(),
        kind,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("declare exchange {name}: {e:?}"));
}

/// A server-named exclusive queue.
async fn tmp_queue(ch: &Channel) -> String {
    ch.queue_declare(
        "".into(),
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("declare server-named queue")
    .name()
    .as_str()
    .to_string()
}

async fn bind(ch: &Channel, queue: &str, exchange: &str, key: &str) {
    bind_args(ch, queue, exchange, key, FieldTable::default()).await
}

async fn bind_args(ch: &Channel, queue: &str, exchange: &str, key: &str, args: FieldTable) {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        Default::default(),
        args,
    )
    .await
    .unwrap_or_else(|e| panic!("bind {queue} to {exchange} with {key:?}: {e:?}"));
}

fn passive() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn default_exchange_routes_to_queue_named_by_routing_key() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let other = tmp_queue(&ch).await;
    publish(&ch, "", &q, b"to-q").await;
    publish(&ch, "", "no-such-queue-anywhere", b"lost").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["to-q"]);
    assert!(drain_bodies(&ch, &other).await.is_empty());
}

#[tokio::test]
async fn predeclared_amq_exchanges_exist_with_their_types() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    for (name, kind) in [
        ("amq.direct", ExchangeKind::Direct),
        ("amq.fanout", ExchangeKind::Fanout),
        ("amq.topic", ExchangeKind::Topic),
        ("amq.headers", ExchangeKind::Headers),
        ("amq.match", ExchangeKind::Headers),
    ] {
        ch.exchange_declare(name.into(), kind.clone(), passive(), FieldTable::default())
            .await
            .unwrap_or_else(|e| panic!("{name} must exist: {e:?}"));
        // Redeclaring them with their own (durable) attributes is allowed.
        ch.exchange_declare(
            name.into(),
            kind,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("equivalent redeclare of {name}: {e:?}"));
    }
}

#[tokio::test]
async fn amq_direct_routes_like_any_direct_exchange() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let key = unique("amq-direct-key");
    bind(&ch, &q, "amq.direct", &key).await;
    publish(&ch, "amq.direct", &key, b"m").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["m"]);
}

#[tokio::test]
async fn direct_exchange_routes_on_exact_routing_key() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("direct");
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
    let qa = tmp_queue(&ch).await;
    let qb = tmp_queue(&ch).await;
    bind(&ch, &qa, &x, "a").await;
    bind(&ch, &qb, &x, "b").await;
    bind(&ch, &qb, &x, "c").await;
    for key in ["a", "b", "c", "d", "A", "a.b", ""] {
        publish(&ch, &x, key, key.as_bytes()).await;
    }
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &qa).await, vec!["a"]);
    assert_eq!(drain_bodies(&ch, &qb).await, vec!["b", "c"]);
}

#[tokio::test]
async fn message_matching_two_bindings_of_one_queue_is_delivered_once() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("topic-dup");
    declare_exchange(&ch, &x, ExchangeKind::Topic).await;
    let q = tmp_queue(&ch).await;
    bind(&ch, &q, &x, "a.*").await;
    bind(&ch, &q, &x, "#").await;
    bind(&ch, &q, &x, "#").await; // duplicate binding is idempotent
    publish(&ch, &x, "a.b", b"once").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["once"]);
}

#[tokio::test]
async fn fanout_exchange_ignores_routing_key() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("fanout");
    declare_exchange(&ch, &x, ExchangeKind::Fanout).await;
    let q1 = tmp_queue(&ch).await;
    let q2 = tmp_queue(&ch).await;
    bind(&ch, &q1, &x, "").await;
    bind(&ch, &q2, &x, "whatever").await;
    publish(&ch, &x, "anything", b"1").await;
    publish(&ch, &x, "", b"2").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q1).await, vec!["1", "2"]);
    assert_eq!(drain_bodies(&ch, &q2).await, vec!["1", "2"]);
}

#[tokio::test]
async fn topic_exchange_matches_star_and_hash_wildcards() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("topic");
    declare_exchange(&ch, &x, ExchangeKind::Topic).await;
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
        let q = tmp_queue(&ch).await;
        bind(&ch, &q, &x, p).await;
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
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("headers");
    declare_exchange(&ch, &x, ExchangeKind::Headers).await;
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
        let q = tmp_queue(&ch).await;
        bind_args(&ch, &q, &x, "ignored-key", args.clone()).await;
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

#[tokio::test]
async fn passive_declare_of_missing_exchange_is_404() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("missing-x");
    let (code, text) = expect_amqp_error(
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Direct,
            passive(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 404);
    assert_eq!(text, format!("NOT_FOUND - no exchange '{x}' in vhost '/'"));
}

#[tokio::test]
async fn passive_declare_of_existing_exchange_ignores_type_and_flags() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("passive-x");
    declare_exchange(&ch, &x, ExchangeKind::Topic).await;
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            passive: true,
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("passive declare only checks existence");
}

#[tokio::test]
async fn redeclaring_exchange_with_same_attributes_is_ok() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("same-x");
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
}

#[tokio::test]
async fn redeclaring_exchange_with_other_type_is_406_inequivalent_arg() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("equiv-type");
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
    let (code, text) = expect_amqp_error(
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 406);
    assert_eq!(
        text,
        format!(
            "PRECONDITION_FAILED - inequivalent arg 'type' for exchange '{x}' in vhost '/': received 'fanout' but current is 'direct'"
        )
    );
}

#[tokio::test]
async fn redeclaring_exchange_with_other_durability_is_406_inequivalent_arg() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("equiv-durable");
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
    let (code, text) = expect_amqp_error(
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 406);
    assert_eq!(
        text,
        format!(
            "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '{x}' in vhost '/': received 'true' but current is 'false'"
        )
    );
}

#[tokio::test]
async fn redeclaring_exchange_with_other_auto_delete_is_406_inequivalent_arg() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("equiv-ad");
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
    let (code, text) = expect_amqp_error(
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 406);
    assert_eq!(
        text,
        format!(
            "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange '{x}' in vhost '/': received 'true' but current is 'false'"
        )
    );
}

#[tokio::test]
async fn declaring_exchange_with_amq_prefix_is_403() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = format!("amq.{}", unique("custom"));
    let (code, text) = expect_amqp_error(
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        text,
        format!("ACCESS_REFUSED - exchange name '{x}' contains reserved prefix 'amq.*'")
    );
}

#[tokio::test]
async fn deleting_amq_exchange_is_403() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let (code, text) = expect_amqp_error(
        ch.exchange_delete("amq.direct".into(), ExchangeDeleteOptions::default())
            .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        text,
        "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed"
    );
}

#[tokio::test]
async fn declaring_unknown_exchange_type_is_503_connection_error() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let x = unique("bad-type");
    let (code, text) = expect_amqp_error(
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Custom("x-no-such-type".into()),
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 503);
    assert_eq!(
        text,
        "COMMAND_INVALID - unknown exchange type 'x-no-such-type'"
    );
    // A hard error: the whole connection is gone.
    assert!(conn.create_channel().await.is_err());
}

#[tokio::test]
async fn exchange_delete_removes_it_and_its_bindings() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("del-x");
    declare_exchange(&ch, &x, ExchangeKind::Fanout).await;
    let q = tmp_queue(&ch).await;
    bind(&ch, &q, &x, "").await;
    ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .expect("delete");
    let (code, _) = expect_amqp_error(
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Fanout,
            passive(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 404);
    // Re-creating it does not bring the old binding back.
    let ch = _conn.create_channel().await.unwrap();
    declare_exchange(&ch, &x, ExchangeKind::Fanout).await;
    publish(&ch, &x, "", b"m").await;
    sync(&ch).await;
    assert!(drain_bodies(&ch, &q).await.is_empty());
    ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn deleting_missing_exchange_is_ok() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    ch.exchange_delete(
        unique("never-existed").as_str().into(),
        ExchangeDeleteOptions::default(),
    )
    .await
    .expect("RabbitMQ 3.x treats exchange.delete of a missing exchange as success");
    sync(&ch).await;
    assert!(ch.status().connected());
}

#[tokio::test]
async fn exchange_delete_if_unused_with_bindings_is_406() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("in-use");
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
    let q = tmp_queue(&ch).await;
    bind(&ch, &q, &x, "k").await;
    let (code, text) = expect_amqp_error(
        ch.exchange_delete(
            x.as_str().into(),
            ExchangeDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(code, 406);
    assert_eq!(
        text,
        format!("PRECONDITION_FAILED - exchange '{x}' in vhost '/' in use")
    );
}

#[tokio::test]
async fn exchange_delete_if_unused_without_bindings_deletes() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("unused");
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
    ch.exchange_delete(
        x.as_str().into(),
        ExchangeDeleteOptions {
            if_unused: true,
            ..Default::default()
        },
    )
    .await
    .expect("delete unused exchange");
    let (code, _) = expect_amqp_error(
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Direct,
            passive(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 404);
}

#[tokio::test]
async fn auto_delete_exchange_is_deleted_when_its_last_binding_goes() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let x = unique("auto-del-x");
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q1 = tmp_queue(&ch).await;
    let q2 = tmp_queue(&ch).await;
    bind(&ch, &q1, &x, "a").await;
    bind(&ch, &q2, &x, "b").await;
    ch.queue_unbind(
        q1.as_str().into(),
        x.as_str().into(),
        "a".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    // One binding left: still there.
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        passive(),
        FieldTable::default(),
    )
    .await
    .expect("exchange with a binding left must exist");
    ch.queue_unbind(
        q2.as_str().into(),
        x.as_str().into(),
        "b".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let (code, _) = expect_amqp_error(
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Direct,
            passive(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(
        code, 404,
        "auto-delete exchange must go with its last binding"
    );
    drop(conn);
}

#[tokio::test]
async fn auto_delete_exchange_without_bindings_stays() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("auto-del-never-bound");
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    sync(&ch).await;
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        passive(),
        FieldTable::default(),
    )
    .await
    .expect("never-bound auto-delete exchange must exist");
    ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn exchange_to_exchange_binding_routes_and_unbind_stops_it() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let src = unique("e2e-src");
    let dst = unique("e2e-dst");
    declare_exchange(&ch, &src, ExchangeKind::Topic).await;
    declare_exchange(&ch, &dst, ExchangeKind::Fanout).await;
    let q = tmp_queue(&ch).await;
    bind(&ch, &q, &dst, "").await;
    ch.exchange_bind(
        dst.as_str().into(),
        src.as_str().into(),
        "news.*".into(),
        ExchangeBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.bind");
    publish(&ch, &src, "news.today", b"routed").await;
    publish(&ch, &src, "sport.today", b"filtered").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["routed"]);
    ch.exchange_unbind(
        dst.as_str().into(),
        src.as_str().into(),
        "news.*".into(),
        ExchangeUnbindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.unbind");
    publish(&ch, &src, "news.today", b"after-unbind").await;
    sync(&ch).await;
    assert!(drain_bodies(&ch, &q).await.is_empty());
    for x in [&src, &dst] {
        ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn exchange_binding_cycle_delivers_each_message_once_per_queue() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let a = unique("cycle-a");
    let b = unique("cycle-b");
    declare_exchange(&ch, &a, ExchangeKind::Fanout).await;
    declare_exchange(&ch, &b, ExchangeKind::Fanout).await;
    for (d, s) in [(&b, &a), (&a, &b)] {
        ch.exchange_bind(
            d.as_str().into(),
            s.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    let qa = tmp_queue(&ch).await;
    let qb = tmp_queue(&ch).await;
    bind(&ch, &qa, &a, "").await;
    bind(&ch, &qb, &b, "").await;
    publish(&ch, &a, "", b"m").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &qa).await, vec!["m"]);
    assert_eq!(drain_bodies(&ch, &qb).await, vec!["m"]);
    for x in [&a, &b] {
        ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn exchange_bind_to_missing_source_is_404() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let dst = unique("e2e-dst");
    let src = unique("e2e-missing");
    declare_exchange(&ch, &dst, ExchangeKind::Fanout).await;
    let (code, text) = expect_amqp_error(
        ch.exchange_bind(
            dst.as_str().into(),
            src.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 404);
    assert_eq!(
        text,
        format!("NOT_FOUND - no exchange '{src}' in vhost '/'")
    );
}

#[tokio::test]
async fn unroutable_message_goes_to_alternate_exchange() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let ae = unique("ae");
    let x = unique("with-ae");
    declare_exchange(&ch, &ae, ExchangeKind::Fanout).await;
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        ExchangeDeclareOptions::default(),
        table(vec![("alternate-exchange", long_str(&ae))]),
    )
    .await
    .unwrap();
    let routed = tmp_queue(&ch).await;
    let unrouted = tmp_queue(&ch).await;
    bind(&ch, &routed, &x, "known").await;
    bind(&ch, &unrouted, &ae, "").await;
    publish(&ch, &x, "known", b"routed").await;
    publish(&ch, &x, "unknown", b"to-ae").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &routed).await, vec!["routed"]);
    assert_eq!(drain_bodies(&ch, &unrouted).await, vec!["to-ae"]);
    // A mandatory message routed via the alternate exchange is not returned.
    ch.confirm_select(Default::default()).await.unwrap();
    let confirm = ch
        .basic_publish(
            x.as_str().into(),
            "unknown".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            b"mandatory-to-ae",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    assert!(
        confirm.take_message().is_none(),
        "message reached the AE: no basic.return"
    );
    assert_eq!(drain_bodies(&ch, &unrouted).await, vec!["mandatory-to-ae"]);
    for e in [&x, &ae] {
        ch.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn publishing_to_internal_exchange_is_403() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("internal");
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            internal: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let watch = ChannelErrorWatch::new(&ch).await;
    publish(&ch, &x, "", b"nope").await;
    let (code, text) = watch.error().await;
    assert_eq!(code, 403);
    assert_eq!(
        text,
        format!("ACCESS_REFUSED - cannot publish to internal exchange '{x}' in vhost '/'")
    );
}

#[tokio::test]
async fn internal_exchange_receives_via_exchange_binding() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let internal = unique("internal-dst");
    let front = unique("front");
    ch.exchange_declare(
        internal.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            internal: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    declare_exchange(&ch, &front, ExchangeKind::Fanout).await;
    ch.exchange_bind(
        internal.as_str().into(),
        front.as_str().into(),
        "".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = tmp_queue(&ch).await;
    bind(&ch, &q, &internal, "").await;
    publish(&ch, &front, "", b"via-front").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["via-front"]);
    for e in [&front, &internal] {
        ch.exchange_delete(e.as_str().into(), ExchangeDeleteOptions::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn redeclaring_exchange_with_other_internal_flag_is_406() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("equiv-internal");
    declare_exchange(&ch, &x, ExchangeKind::Fanout).await;
    let (code, text) = expect_amqp_error(
        ch.exchange_declare(
            x.as_str().into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                internal: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 406);
    assert_eq!(
        text,
        format!(
            "PRECONDITION_FAILED - inequivalent arg 'internal' for exchange '{x}' in vhost '/': received 'true' but current is 'false'"
        )
    );
}

#[tokio::test]
async fn publishing_to_missing_exchange_is_404_channel_error() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let x = unique("missing-x");
    let watch = ChannelErrorWatch::new(&ch).await;
    publish(&ch, &x, "k", b"lost").await;
    let (code, text) = watch.error().await;
    assert_eq!(code, 404);
    assert_eq!(text, format!("NOT_FOUND - no exchange '{x}' in vhost '/'"));
    // Only the channel is closed.
    let ch2 = conn
        .create_channel()
        .await
        .expect("connection survives a channel error");
    sync(&ch2).await;
}

#[tokio::test]
async fn operations_on_default_exchange_are_403() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch = conn.create_channel().await.unwrap();
    let q = tmp_queue(&ch).await;
    let (code, text) = expect_amqp_error(
        ch.queue_bind(
            q.as_str().into(),
            "".into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        text,
        "ACCESS_REFUSED - operation not permitted on the default exchange"
    );
    let ch = conn.create_channel().await.unwrap();
    let (code, text) = expect_amqp_error(
        ch.exchange_delete("".into(), ExchangeDeleteOptions::default())
            .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        text,
        "ACCESS_REFUSED - operation not permitted on the default exchange"
    );
    let ch = conn.create_channel().await.unwrap();
    let (code, text) = expect_amqp_error(
        ch.exchange_declare(
            "".into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        text,
        "ACCESS_REFUSED - operation not permitted on the default exchange"
    );
}

#[tokio::test]
async fn exchange_names_are_case_sensitive() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("Case");
    declare_exchange(&ch, &x, ExchangeKind::Direct).await;
    let (code, _) = expect_amqp_error(
        ch.exchange_declare(
            x.to_lowercase().as_str().into(),
            ExchangeKind::Direct,
            passive(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 404);
}
