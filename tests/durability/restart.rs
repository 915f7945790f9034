//! Topology across restarts: durable exchanges, queues and bindings come back (after SIGTERM and
//! after SIGKILL once the -ok was received); non-durable and exclusive ones do not; deletes and
//! unbinds stay done.

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::{
    Connection, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueDeclareOptions},
};

use crate::common::*;
use crate::support::*;
// These durability versions take `durable` / binding arguments; the broker suite has its own.
use crate::support::{bind_queue, declare_exchange, publish_confirmed};

/// Declares an exchange on a throw-away channel; the AMQP error if the broker refuses.
async fn try_declare_exchange(
    conn: &Connection,
    name: &str,
    kind: ExchangeKind,
    options: ExchangeDeclareOptions,
    args: FieldTable,
) -> Result<(), (u16, String)> {
    let ch = conn.create_channel().await.expect("create channel");
    match ch.exchange_declare(name.into(), kind, options, args).await {
        Ok(()) => {
            let _ = ch.close(200, "bye".into()).await;
            Ok(())
        }
        Err(e) => Err(amqp_error(&e).unwrap_or_else(|| panic!("declare {name}: {e:?}"))),
    }
}

/// Declares a queue on a throw-away channel; the AMQP error if the broker refuses.
async fn try_declare_queue(
    conn: &Connection,
    name: &str,
    options: QueueDeclareOptions,
    args: FieldTable,
) -> Result<u32, (u16, String)> {
    let ch = conn.create_channel().await.expect("create channel");
    match ch.queue_declare(name.into(), options, args).await {
        Ok(q) => {
            let _ = ch.close(200, "bye".into()).await;
            Ok(q.message_count())
        }
        Err(e) => Err(amqp_error(&e).unwrap_or_else(|| panic!("declare {name}: {e:?}"))),
    }
}

fn durable_ex() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

fn durable_q() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

// --- exchanges ---------------------------------------------------------------------------------

async fn durable_exchanges_survive(stop: Stop) {
    let mut node = Node::start();
    let kinds = [
        ("direct", ExchangeKind::Direct),
        ("fanout", ExchangeKind::Fanout),
        ("topic", ExchangeKind::Topic),
        ("headers", ExchangeKind::Headers),
    ];
    let names: Vec<String> = kinds
        .iter()
        .map(|(k, _)| unique(&format!("dur-{k}")))
        .collect();
    {
        let (conn, ch) = node.channel().await;
        for ((_, kind), name) in kinds.iter().zip(&names) {
            declare_exchange(&ch, name, kind.clone(), true).await;
        }
        conn.close(200, "bye".into()).await.ok();
    }
    node.restart(stop);
    let conn = node.broker.connect().await;
    for ((kind_name, kind), name) in kinds.iter().zip(&names) {
        assert!(
            exchange_exists(&conn, name).await,
            "durable {kind_name} exchange {name} is gone after {stop:?} restart"
        );
        // Same type and flags: fine. Another type: 406, so the type came back too.
        try_declare_exchange(
            &conn,
            name,
            kind.clone(),
            durable_ex(),
            FieldTable::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("redeclare {kind_name} exchange {name}: {e:?}"));
        let other = if *kind_name == "fanout" {
            ExchangeKind::Direct
        } else {
            ExchangeKind::Fanout
        };
        let (code, text) =
            try_declare_exchange(&conn, name, other, durable_ex(), FieldTable::default())
                .await
                .expect_err("redeclare with another type must fail");
        assert_eq!(code, 406, "{text}");
        assert!(text.contains("inequivalent arg 'type'"), "{text}");
        // Non-durable redeclare of a durable exchange: 406 on 'durable'.
        let (code, text) = try_declare_exchange(
            &conn,
            name,
            kind.clone(),
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect_err("non-durable redeclare must fail");
        assert_eq!(code, 406, "{text}");
        assert!(text.contains("inequivalent arg 'durable'"), "{text}");
    }
}
both_stops!(
    durable_exchanges_survive,
    durable_exchanges_of_each_type_survive_graceful_restart,
    durable_exchanges_of_each_type_survive_kill9
);

async fn exchange_arguments_and_flags_survive(stop: Stop) {
    let mut node = Node::start();
    let ae = unique("dur-ae");
    let ex = unique("dur-with-ae");
    let internal = unique("dur-internal");
    let q = unique("dur-ae-q");
    {
        let (_conn, ch) = node.channel().await;
        declare_exchange(&ch, &ae, ExchangeKind::Fanout, true).await;
        ch.exchange_declare(
            ex.as_str().into(),
            ExchangeKind::Direct,
            durable_ex(),
            table(vec![("alternate-exchange", long_str(&ae))]),
        )
        .await
        .expect("declare exchange with alternate-exchange");
        ch.exchange_declare(
            internal.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                internal: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declare internal exchange");
        declare_durable_queue(&ch, &q, FieldTable::default()).await;
        bind_queue(&ch, &q, &ae, "", FieldTable::default()).await;
    }
    node.restart(stop);
    let conn = node.broker.connect().await;
    // The alternate-exchange argument came back: redeclaring without it is inequivalent ...
    let (code, text) = try_declare_exchange(
        &conn,
        &ex,
        ExchangeKind::Direct,
        durable_ex(),
        FieldTable::default(),
    )
    .await
    .expect_err("redeclare without alternate-exchange must fail");
    assert_eq!(code, 406, "{text}");
    assert!(text.contains("alternate-exchange"), "{text}");
    // ... and it still works: an unroutable message goes to the alternate exchange's queue.
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    publish_confirmed(&ch, &ex, "nobody", b"to-ae", persistent()).await;
    assert_eq!(drain(&ch, &q).await, ["to-ae"]);
    // The internal flag came back: redeclaring as non-internal is inequivalent.
    let (code, text) = try_declare_exchange(
        &conn,
        &internal,
        ExchangeKind::Topic,
        durable_ex(),
        FieldTable::default(),
    )
    .await
    .expect_err("redeclare as non-internal must fail");
    assert_eq!(code, 406, "{text}");
    assert!(text.contains("internal"), "{text}");
}
both_stops!(
    exchange_arguments_and_flags_survive,
    exchange_alternate_exchange_and_internal_survive_graceful_restart,
    exchange_alternate_exchange_and_internal_survive_kill9
);

async fn non_durable_exchange_does_not_survive(stop: Stop) {
    let mut node = Node::start();
    let transient_ex = unique("transient-ex");
    let durable_ex_name = unique("durable-ex");
    {
        let (_conn, ch) = node.channel().await;
        declare_exchange(&ch, &transient_ex, ExchangeKind::Topic, false).await;
        declare_exchange(&ch, &durable_ex_name, ExchangeKind::Topic, true).await;
    }
    node.restart(stop);
    let conn = node.broker.connect().await;
    assert!(
        !exchange_exists(&conn, &transient_ex).await,
        "non-durable exchange came back after {stop:?} restart"
    );
    assert!(exchange_exists(&conn, &durable_ex_name).await);
    // The built-in exchanges are all there.
    for name in [
        "amq.direct",
        "amq.fanout",
        "amq.topic",
        "amq.headers",
        "amq.match",
    ] {
        assert!(
            exchange_exists(&conn, name).await,
            "{name} missing after restart"
        );
    }
}
both_stops!(
    non_durable_exchange_does_not_survive,
    non_durable_exchange_is_gone_after_graceful_restart,
    non_durable_exchange_is_gone_after_kill9
);

// --- queues --------------------------------------------------------------------------------------

async fn durable_queue_survives_with_arguments(stop: Stop) {
    let mut node = Node::start();
    let q = unique("dur-q-args");
    let args = || {
        table(vec![
            ("x-max-length", AMQPValue::LongInt(2)),
            ("x-message-ttl", AMQPValue::LongInt(3_600_000)),
        ])
    };
    {
        let (_conn, ch) = node.channel().await;
        declare_durable_queue(&ch, &q, args()).await;
    }
    node.restart(stop);
    let conn = node.broker.connect().await;
    assert!(
        queue_exists(&conn, &q).await,
        "durable queue {q} is gone after {stop:?} restart"
    );
    // Same arguments: fine.
    assert_eq!(
        try_declare_queue(&conn, &q, durable_q(), args()).await,
        Ok(0)
    );
    // Another x-max-length: inequivalent, so the argument came back with its value.
    let (code, text) = try_declare_queue(
        &conn,
        &q,
        durable_q(),
        table(vec![
            ("x-max-length", AMQPValue::LongInt(5)),
            ("x-message-ttl", AMQPValue::LongInt(3_600_000)),
        ]),
    )
    .await
    .expect_err("redeclare with another x-max-length must fail");
    assert_eq!(code, 406, "{text}");
    assert!(text.contains("x-max-length"), "{text}");
    // Non-durable redeclare: inequivalent 'durable'.
    let (code, text) = try_declare_queue(&conn, &q, QueueDeclareOptions::default(), args())
        .await
        .expect_err("non-durable redeclare must fail");
    assert_eq!(code, 406, "{text}");
    assert!(text.contains("durable"), "{text}");
    // (That the limit is enforced after a restart is checked in messages::max_length_*.)
}
both_stops!(
    durable_queue_survives_with_arguments,
    durable_queue_survives_graceful_restart_with_its_arguments,
    durable_queue_survives_kill9_with_its_arguments
);

async fn non_durable_and_exclusive_queues_do_not_survive(stop: Stop) {
    let mut node = Node::start();
    let transient_q = unique("transient-q");
    let exclusive_q = unique("exclusive-durable-q");
    let durable_q_name = unique("durable-q");
    // Keep the connection that owns the exclusive queue open until the broker goes down.
    let (_conn, ch) = node.channel().await;
    declare_queue(&ch, &transient_q).await;
    ch.queue_declare(
        exclusive_q.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("declare exclusive durable queue");
    declare_durable_queue(&ch, &durable_q_name, FieldTable::default()).await;
    node.restart(stop);
    let conn = node.broker.connect().await;
    assert!(
        !queue_exists(&conn, &transient_q).await,
        "non-durable queue came back after {stop:?} restart"
    );
    assert!(
        !queue_exists(&conn, &exclusive_q).await,
        "exclusive (durable) queue came back after {stop:?} restart"
    );
    assert!(queue_exists(&conn, &durable_q_name).await);
}
both_stops!(
    non_durable_and_exclusive_queues_do_not_survive,
    non_durable_and_exclusive_queues_are_gone_after_graceful_restart,
    non_durable_and_exclusive_queues_are_gone_after_kill9
);

// --- bindings ------------------------------------------------------------------------------------

async fn durable_bindings_survive(stop: Stop) {
    let mut node = Node::start();
    let q = unique("bind-q");
    let x = unique("bind-direct");
    let t = unique("bind-topic");
    let h = unique("bind-headers");
    let f = unique("bind-fanout");
    let e2 = unique("bind-e2e-dest");
    {
        let (_conn, ch) = node.channel().await;
        declare_durable_queue(&ch, &q, FieldTable::default()).await;
        declare_exchange(&ch, &x, ExchangeKind::Direct, true).await;
        declare_exchange(&ch, &t, ExchangeKind::Topic, true).await;
        declare_exchange(&ch, &h, ExchangeKind::Headers, true).await;
        declare_exchange(&ch, &f, ExchangeKind::Fanout, true).await;
        declare_exchange(&ch, &e2, ExchangeKind::Direct, true).await;
        bind_queue(&ch, &q, &x, "k1", FieldTable::default()).await;
        bind_queue(&ch, &q, &t, "a.*.c", FieldTable::default()).await;
        bind_queue(
            &ch,
            &q,
            &h,
            "",
            table(vec![
                ("x-match", long_str("all")),
                ("foo", long_str("bar")),
                ("n", AMQPValue::LongInt(7)),
            ]),
        )
        .await;
        // f --(e2e)--> e2 --k2--> q
        ch.exchange_bind(
            e2.as_str().into(),
            f.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .expect("exchange.bind");
        bind_queue(&ch, &q, &e2, "k2", FieldTable::default()).await;
    }
    node.restart(stop);
    let (_conn, ch) = node.confirm_channel().await;
    let headers = |value: &str| {
        persistent().with_headers(table(vec![
            ("foo", long_str(value)),
            ("n", AMQPValue::LongInt(7)),
        ]))
    };
    publish_confirmed(&ch, &x, "k1", b"via-direct", persistent()).await;
    publish_confirmed(&ch, &x, "k2", b"direct-miss", persistent()).await;
    publish_confirmed(&ch, &t, "a.b.c", b"via-topic", persistent()).await;
    publish_confirmed(&ch, &t, "a.b", b"topic-miss", persistent()).await;
    publish_confirmed(&ch, &h, "", b"via-headers", headers("bar")).await;
    publish_confirmed(&ch, &h, "", b"headers-miss", headers("baz")).await;
    publish_confirmed(&ch, &f, "k2", b"via-e2e", persistent()).await;
    publish_confirmed(&ch, &f, "k3", b"e2e-miss", persistent()).await;
    assert_eq!(
        drain(&ch, &q).await,
        ["via-direct", "via-topic", "via-headers", "via-e2e"],
        "bindings after {stop:?} restart"
    );
}
both_stops!(
    durable_bindings_survive,
    queue_and_exchange_bindings_survive_graceful_restart,
    queue_and_exchange_bindings_survive_kill9
);

async fn bindings_to_non_durable_objects_do_not_survive(stop: Stop) {
    let mut node = Node::start();
    let x = unique("mixed-fanout");
    let q = unique("mixed-durable-q");
    let q2 = unique("mixed-durable-q2");
    let nq = unique("mixed-transient-q");
    let ne = unique("mixed-transient-ex");
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_exchange(&ch, &x, ExchangeKind::Fanout, true).await;
        declare_exchange(&ch, &ne, ExchangeKind::Fanout, false).await;
        declare_durable_queue(&ch, &q, FieldTable::default()).await;
        declare_durable_queue(&ch, &q2, FieldTable::default()).await;
        declare_queue(&ch, &nq).await;
        // x -> q (durable both ends), x -> nq (non-durable queue), x -> ne -> q2 (through a
        // non-durable exchange).
        bind_queue(&ch, &q, &x, "", FieldTable::default()).await;
        bind_queue(&ch, &nq, &x, "", FieldTable::default()).await;
        ch.exchange_bind(
            ne.as_str().into(),
            x.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .expect("exchange.bind");
        bind_queue(&ch, &q2, &ne, "", FieldTable::default()).await;
        publish_confirmed(&ch, &x, "", b"before", transient()).await;
        assert_eq!(drain(&ch, &q).await, ["before"]);
        assert_eq!(drain(&ch, &q2).await, ["before"]);
        assert_eq!(drain(&ch, &nq).await, ["before"]);
    }
    node.restart(stop);
    let conn = node.broker.connect().await;
    assert!(!queue_exists(&conn, &nq).await);
    assert!(!exchange_exists(&conn, &ne).await);
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    // Recreated under the same names, they carry no old bindings.
    declare_exchange(&ch, &ne, ExchangeKind::Fanout, false).await;
    declare_queue(&ch, &nq).await;
    publish_confirmed(&ch, &x, "", b"after", transient()).await;
    assert_eq!(drain(&ch, &q).await, ["after"]);
    assert_eq!(drain(&ch, &q2).await, Vec::<String>::new());
    assert_eq!(drain(&ch, &nq).await, Vec::<String>::new());
    publish_confirmed(&ch, &ne, "", b"to-ne", transient()).await;
    assert_eq!(drain(&ch, &q2).await, Vec::<String>::new());
}
both_stops!(
    bindings_to_non_durable_objects_do_not_survive,
    bindings_to_non_durable_objects_are_gone_after_graceful_restart,
    bindings_to_non_durable_objects_are_gone_after_kill9
);

async fn unbind_and_delete_stay_done(stop: Stop) {
    let mut node = Node::start();
    let x = unique("ud-direct");
    let f = unique("ud-fanout");
    let doomed_ex = unique("ud-doomed-ex");
    let doomed_q = unique("ud-doomed-q");
    let q = unique("ud-q");
    {
        let (_conn, ch) = node.channel().await;
        declare_durable_queue(&ch, &q, FieldTable::default()).await;
        declare_durable_queue(&ch, &doomed_q, FieldTable::default()).await;
        declare_exchange(&ch, &x, ExchangeKind::Direct, true).await;
        declare_exchange(&ch, &f, ExchangeKind::Fanout, true).await;
        declare_exchange(&ch, &doomed_ex, ExchangeKind::Fanout, true).await;
        bind_queue(&ch, &q, &x, "keep", FieldTable::default()).await;
        bind_queue(&ch, &q, &x, "drop", FieldTable::default()).await;
        bind_queue(&ch, &doomed_q, &x, "keep", FieldTable::default()).await;
        bind_queue(&ch, &q, &doomed_ex, "", FieldTable::default()).await;
        ch.exchange_bind(
            x.as_str().into(),
            f.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .expect("exchange.bind");
        ch.queue_unbind(
            q.as_str().into(),
            x.as_str().into(),
            "drop".into(),
            FieldTable::default(),
        )
        .await
        .expect("queue.unbind");
        ch.exchange_unbind(
            x.as_str().into(),
            f.as_str().into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .expect("exchange.unbind");
        ch.exchange_delete(doomed_ex.as_str().into(), Default::default())
            .await
            .expect("exchange.delete");
        ch.queue_delete(doomed_q.as_str().into(), Default::default())
            .await
            .expect("queue.delete");
    }
    node.restart(stop);
    let conn = node.broker.connect().await;
    assert!(
        !exchange_exists(&conn, &doomed_ex).await,
        "deleted exchange came back"
    );
    assert!(
        !queue_exists(&conn, &doomed_q).await,
        "deleted queue came back"
    );
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    // Recreate the deleted ones: their old bindings must not be back.
    declare_exchange(&ch, &doomed_ex, ExchangeKind::Fanout, true).await;
    declare_durable_queue(&ch, &doomed_q, FieldTable::default()).await;
    publish_confirmed(&ch, &x, "keep", b"keep", persistent()).await;
    publish_confirmed(&ch, &x, "drop", b"unbound", persistent()).await;
    publish_confirmed(&ch, &f, "keep", b"via-unbound-e2e", persistent()).await;
    publish_confirmed(&ch, &doomed_ex, "", b"via-deleted-ex", persistent()).await;
    assert_eq!(drain(&ch, &q).await, ["keep"], "after {stop:?} restart");
    assert_eq!(drain(&ch, &doomed_q).await, Vec::<String>::new());
}
both_stops!(
    unbind_and_delete_stay_done,
    unbinds_and_deletes_stay_done_after_graceful_restart,
    unbinds_and_deletes_stay_done_after_kill9
);

async fn state_survives_several_restarts(stop: Stop) {
    let mut node = Node::start();
    let x = unique("multi-ex");
    let q1 = unique("multi-q1");
    let q2 = unique("multi-q2");
    {
        let (_conn, ch) = node.channel().await;
        declare_exchange(&ch, &x, ExchangeKind::Direct, true).await;
        declare_durable_queue(&ch, &q1, FieldTable::default()).await;
        bind_queue(&ch, &q1, &x, "k", FieldTable::default()).await;
    }
    node.restart(stop);
    {
        // Changes made by the second process must be stored as well.
        let (_conn, ch) = node.channel().await;
        declare_durable_queue(&ch, &q2, FieldTable::default()).await;
        bind_queue(&ch, &q2, &x, "k", FieldTable::default()).await;
    }
    node.restart(stop);
    node.restart(stop);
    let (_conn, ch) = node.confirm_channel().await;
    publish_confirmed(&ch, &x, "k", b"m", persistent()).await;
    assert_eq!(drain(&ch, &q1).await, ["m"]);
    assert_eq!(drain(&ch, &q2).await, ["m"]);
}
both_stops!(
    state_survives_several_restarts,
    topology_survives_several_graceful_restarts,
    topology_survives_several_kill9s
);
