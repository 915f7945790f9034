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

/// Declares an exchange (no arguments) on a channel of its own; the AMQP error if the broker
/// refuses.
async fn try_declare_exchange(
    conn: &Connection,
    name: &str,
    kind: ExchangeKind,
    options: ExchangeDeclareOptions,
) -> Result<(), (u16, String)> {
    on_own_channel(conn, &format!("declare {name}"), async |ch| {
        ch.exchange_declare(name.into(), kind, options, FieldTable::default())
            .await
    })
    .await
}

/// Declares a queue on a channel of its own: its message count, or the AMQP error if the
/// broker refuses.
async fn try_declare_queue(
    conn: &Connection,
    name: &str,
    options: QueueDeclareOptions,
    args: FieldTable,
) -> Result<u32, (u16, String)> {
    on_own_channel(conn, &format!("declare {name}"), async |ch| {
        let q = ch.queue_declare(name.into(), options, args).await?;
        Ok(q.message_count())
    })
    .await
}

/// Asserts that a redeclaration was refused (`why` it must be) with 406 and a text holding
/// `names`: what the broker remembered is back.
#[track_caller]
fn assert_refused_with_406<T: std::fmt::Debug>(
    redeclare: Result<T, (u16, String)>,
    why: &str,
    names: &str,
) {
    let (code, text) = redeclare.expect_err(why);
    assert_eq!(code, 406, "{text}");
    assert!(text.contains(names), "{text}");
}

// --- exchanges ---------------------------------------------------------------------------------

async fn durable_exchanges_survive(mut node: Node, stop: Stop) {
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
            declare_durable_exchange(&ch, name, kind.clone()).await;
        }
        conn.close(200, "bye".into()).await.ok();
    }
    let conn = node.restart_and_connect(stop).await;
    for ((kind_name, kind), name) in kinds.iter().zip(&names) {
        assert!(
            exchange_exists(&conn, name).await,
            "durable {kind_name} exchange {name} is gone after {stop:?} restart"
        );
        // Same type and flags: fine. Another type: 406, so the type came back too.
        try_declare_exchange(&conn, name, kind.clone(), durable_exchange())
            .await
            .unwrap_or_else(|e| panic!("redeclare {kind_name} exchange {name}: {e:?}"));
        let other = if *kind_name == "fanout" {
            ExchangeKind::Direct
        } else {
            ExchangeKind::Fanout
        };
        assert_refused_with_406(
            try_declare_exchange(&conn, name, other, durable_exchange()).await,
            "redeclare with another type must fail",
            "inequivalent arg 'type'",
        );
        // Non-durable redeclare of a durable exchange: 406 on 'durable'.
        let non_durable = ExchangeDeclareOptions::default();
        assert_refused_with_406(
            try_declare_exchange(&conn, name, kind.clone(), non_durable).await,
            "non-durable redeclare must fail",
            "inequivalent arg 'durable'",
        );
    }
}
both_stops!(
    durable_exchanges_survive,
    durable_exchanges_of_each_type_survive_graceful_restart,
    durable_exchanges_of_each_type_survive_kill9
);

async fn exchange_arguments_and_flags_survive(mut node: Node, stop: Stop) {
    let ae = unique("dur-ae");
    let ex = unique("dur-with-ae");
    let internal = unique("dur-internal");
    let q = unique("dur-ae-q");
    {
        let (_conn, ch) = node.channel().await;
        declare_durable_exchange(&ch, &ae, ExchangeKind::Fanout).await;
        let with_ae = table(vec![("alternate-exchange", long_str(&ae))]);
        declare_exchange_as(&ch, &ex, ExchangeKind::Direct, durable_exchange(), with_ae).await;
        let durable_internal = ExchangeDeclareOptions {
            durable: true,
            internal: true,
            ..Default::default()
        };
        let no_args = FieldTable::default();
        declare_exchange_as(
            &ch,
            &internal,
            ExchangeKind::Topic,
            durable_internal,
            no_args,
        )
        .await;
        declare_durable_queue(&ch, &q).await;
        bind_queue(&ch, &q, &ae, "").await;
    }
    let conn = node.restart_and_connect(stop).await;
    // The alternate-exchange argument came back: redeclaring without it is inequivalent ...
    assert_refused_with_406(
        try_declare_exchange(&conn, &ex, ExchangeKind::Direct, durable_exchange()).await,
        "redeclare without alternate-exchange must fail",
        "alternate-exchange",
    );
    // ... and it still works: an unroutable message goes to the alternate exchange's queue.
    let ch = confirm_channel_on(&conn).await;
    publish_acked(&ch, &ex, "nobody", b"to-ae", persistent()).await;
    assert_eq!(drain_bodies(&ch, &q).await, ["to-ae"]);
    // The internal flag came back: redeclaring as non-internal is inequivalent.
    assert_refused_with_406(
        try_declare_exchange(&conn, &internal, ExchangeKind::Topic, durable_exchange()).await,
        "redeclare as non-internal must fail",
        "internal",
    );
}
both_stops!(
    exchange_arguments_and_flags_survive,
    exchange_alternate_exchange_and_internal_survive_graceful_restart,
    exchange_alternate_exchange_and_internal_survive_kill9
);

async fn non_durable_exchange_does_not_survive(mut node: Node, stop: Stop) {
    let transient_ex = unique("transient-ex");
    let durable_ex = unique("durable-ex");
    {
        let (_conn, ch) = node.channel().await;
        declare_exchange(&ch, &transient_ex, ExchangeKind::Topic).await;
        declare_durable_exchange(&ch, &durable_ex, ExchangeKind::Topic).await;
    }
    let conn = node.restart_and_connect(stop).await;
    assert!(
        !exchange_exists(&conn, &transient_ex).await,
        "non-durable exchange came back after {stop:?} restart"
    );
    assert!(exchange_exists(&conn, &durable_ex).await);
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

async fn durable_queue_survives_with_arguments(mut node: Node, stop: Stop) {
    let q = unique("dur-q-args");
    let args = |max_length| {
        table(vec![
            ("x-max-length", AMQPValue::LongInt(max_length)),
            ("x-message-ttl", AMQPValue::LongInt(3_600_000)),
        ])
    };
    {
        let (_conn, ch) = node.channel().await;
        declare_durable_queue_with(&ch, &q, args(2)).await;
    }
    let conn = node.restart_and_connect(stop).await;
    assert!(
        queue_exists(&conn, &q).await,
        "durable queue {q} is gone after {stop:?} restart"
    );
    // Same arguments: fine.
    assert_eq!(
        try_declare_queue(&conn, &q, durable(), args(2)).await,
        Ok(0)
    );
    // Another x-max-length: inequivalent, so the argument came back with its value.
    assert_refused_with_406(
        try_declare_queue(&conn, &q, durable(), args(5)).await,
        "redeclare with another x-max-length must fail",
        "x-max-length",
    );
    // Non-durable redeclare: inequivalent 'durable'.
    assert_refused_with_406(
        try_declare_queue(&conn, &q, QueueDeclareOptions::default(), args(2)).await,
        "non-durable redeclare must fail",
        "durable",
    );
    // (That the limit is enforced after a restart is checked in messages::max_length_*.)
}
both_stops!(
    durable_queue_survives_with_arguments,
    durable_queue_survives_graceful_restart_with_its_arguments,
    durable_queue_survives_kill9_with_its_arguments
);

async fn non_durable_and_exclusive_queues_do_not_survive(mut node: Node, stop: Stop) {
    let transient_q = unique("transient-q");
    let exclusive_q = unique("exclusive-durable-q");
    let durable_q = unique("durable-q");
    // Keep the connection that owns the exclusive queue open until the broker goes down.
    let (_conn, ch) = node.channel().await;
    declare_queue(&ch, &transient_q).await;
    let durable_exclusive = QueueDeclareOptions {
        durable: true,
        exclusive: true,
        ..Default::default()
    };
    declare_queue_as(&ch, &exclusive_q, durable_exclusive, FieldTable::default()).await;
    declare_durable_queue(&ch, &durable_q).await;
    let conn = node.restart_and_connect(stop).await;
    assert!(
        !queue_exists(&conn, &transient_q).await,
        "non-durable queue came back after {stop:?} restart"
    );
    assert!(
        !queue_exists(&conn, &exclusive_q).await,
        "exclusive (durable) queue came back after {stop:?} restart"
    );
    assert!(queue_exists(&conn, &durable_q).await);
}
both_stops!(
    non_durable_and_exclusive_queues_do_not_survive,
    non_durable_and_exclusive_queues_are_gone_after_graceful_restart,
    non_durable_and_exclusive_queues_are_gone_after_kill9
);

// --- bindings ------------------------------------------------------------------------------------

async fn durable_bindings_survive(mut node: Node, stop: Stop) {
    let q = unique("bind-q");
    let [x, t, h, f, e2] = ["direct", "topic", "headers", "fanout", "e2e-dest"]
        .map(|what| unique(&format!("bind-{what}")));
    {
        let (_conn, ch) = node.channel().await;
        declare_durable_queue(&ch, &q).await;
        declare_durable_exchange(&ch, &x, ExchangeKind::Direct).await;
        declare_durable_exchange(&ch, &t, ExchangeKind::Topic).await;
        declare_durable_exchange(&ch, &h, ExchangeKind::Headers).await;
        declare_durable_exchange(&ch, &f, ExchangeKind::Fanout).await;
        declare_durable_exchange(&ch, &e2, ExchangeKind::Direct).await;
        bind_queue(&ch, &q, &x, "k1").await;
        bind_queue(&ch, &q, &t, "a.*.c").await;
        let match_all = table(vec![
            ("x-match", long_str("all")),
            ("foo", long_str("bar")),
            ("n", AMQPValue::LongInt(7)),
        ]);
        bind_queue_with(&ch, &q, &h, "", match_all).await;
        // f --(e2e)--> e2 --k2--> q
        bind_exchange(&ch, &e2, &f, "").await;
        bind_queue(&ch, &q, &e2, "k2").await;
    }
    node.restart(stop);
    let (_conn, ch) = node.confirm_channel().await;
    let headers = |value: &str| {
        persistent().with_headers(table(vec![
            ("foo", long_str(value)),
            ("n", AMQPValue::LongInt(7)),
        ]))
    };
    publish_acked(&ch, &x, "k1", b"via-direct", persistent()).await;
    publish_acked(&ch, &x, "k2", b"direct-miss", persistent()).await;
    publish_acked(&ch, &t, "a.b.c", b"via-topic", persistent()).await;
    publish_acked(&ch, &t, "a.b", b"topic-miss", persistent()).await;
    publish_acked(&ch, &h, "", b"via-headers", headers("bar")).await;
    publish_acked(&ch, &h, "", b"headers-miss", headers("baz")).await;
    publish_acked(&ch, &f, "k2", b"via-e2e", persistent()).await;
    publish_acked(&ch, &f, "k3", b"e2e-miss", persistent()).await;
    assert_eq!(
        drain_bodies(&ch, &q).await,
        ["via-direct", "via-topic", "via-headers", "via-e2e"],
        "bindings after {stop:?} restart"
    );
}
both_stops!(
    durable_bindings_survive,
    queue_and_exchange_bindings_survive_graceful_restart,
    queue_and_exchange_bindings_survive_kill9
);

async fn bindings_to_non_durable_objects_do_not_survive(mut node: Node, stop: Stop) {
    let x = unique("mixed-fanout");
    let q = unique("mixed-durable-q");
    let q2 = unique("mixed-durable-q2");
    let nq = unique("mixed-transient-q");
    let ne = unique("mixed-transient-ex");
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_exchange(&ch, &x, ExchangeKind::Fanout).await;
        declare_exchange(&ch, &ne, ExchangeKind::Fanout).await;
        declare_durable_queue(&ch, &q).await;
        declare_durable_queue(&ch, &q2).await;
        declare_queue(&ch, &nq).await;
        // x -> q (durable both ends), x -> nq (non-durable queue), x -> ne -> q2 (through a
        // non-durable exchange).
        bind_queue(&ch, &q, &x, "").await;
        bind_queue(&ch, &nq, &x, "").await;
        bind_exchange(&ch, &ne, &x, "").await;
        bind_queue(&ch, &q2, &ne, "").await;
        publish_acked(&ch, &x, "", b"before", transient()).await;
        for queue in [&q, &q2, &nq] {
            assert_eq!(drain_bodies(&ch, queue).await, ["before"]);
        }
    }
    let conn = node.restart_and_connect(stop).await;
    assert!(!queue_exists(&conn, &nq).await);
    assert!(!exchange_exists(&conn, &ne).await);
    let ch = confirm_channel_on(&conn).await;
    // Recreated under the same names, they carry no old bindings.
    declare_exchange(&ch, &ne, ExchangeKind::Fanout).await;
    declare_queue(&ch, &nq).await;
    publish_acked(&ch, &x, "", b"after", transient()).await;
    assert_eq!(drain_bodies(&ch, &q).await, ["after"]);
    assert_eq!(drain_bodies(&ch, &q2).await, Vec::<String>::new());
    assert_eq!(drain_bodies(&ch, &nq).await, Vec::<String>::new());
    publish_acked(&ch, &ne, "", b"to-ne", transient()).await;
    assert_eq!(drain_bodies(&ch, &q2).await, Vec::<String>::new());
}
both_stops!(
    bindings_to_non_durable_objects_do_not_survive,
    bindings_to_non_durable_objects_are_gone_after_graceful_restart,
    bindings_to_non_durable_objects_are_gone_after_kill9
);

async fn unbind_and_delete_stay_done(mut node: Node, stop: Stop) {
    let x = unique("ud-direct");
    let f = unique("ud-fanout");
    let doomed_ex = unique("ud-doomed-ex");
    let doomed_q = unique("ud-doomed-q");
    let q = unique("ud-q");
    {
        let (_conn, ch) = node.channel().await;
        declare_durable_queue(&ch, &q).await;
        declare_durable_queue(&ch, &doomed_q).await;
        declare_durable_exchange(&ch, &x, ExchangeKind::Direct).await;
        declare_durable_exchange(&ch, &f, ExchangeKind::Fanout).await;
        declare_durable_exchange(&ch, &doomed_ex, ExchangeKind::Fanout).await;
        bind_queue(&ch, &q, &x, "keep").await;
        bind_queue(&ch, &q, &x, "drop").await;
        bind_queue(&ch, &doomed_q, &x, "keep").await;
        bind_queue(&ch, &q, &doomed_ex, "").await;
        bind_exchange(&ch, &x, &f, "").await;
        unbind_queue(&ch, &q, &x, "drop").await;
        unbind_exchange(&ch, &x, &f, "").await;
        delete_exchange(&ch, &doomed_ex).await;
        delete_queue(&ch, &doomed_q).await;
    }
    let conn = node.restart_and_connect(stop).await;
    assert!(
        !exchange_exists(&conn, &doomed_ex).await,
        "deleted exchange came back"
    );
    assert!(
        !queue_exists(&conn, &doomed_q).await,
        "deleted queue came back"
    );
    let ch = confirm_channel_on(&conn).await;
    // Recreate the deleted ones: their old bindings must not be back.
    declare_durable_exchange(&ch, &doomed_ex, ExchangeKind::Fanout).await;
    declare_durable_queue(&ch, &doomed_q).await;
    publish_acked(&ch, &x, "keep", b"keep", persistent()).await;
    publish_acked(&ch, &x, "drop", b"unbound", persistent()).await;
    publish_acked(&ch, &f, "keep", b"via-unbound-e2e", persistent()).await;
    publish_acked(&ch, &doomed_ex, "", b"via-deleted-ex", persistent()).await;
    assert_eq!(
        drain_bodies(&ch, &q).await,
        ["keep"],
        "after {stop:?} restart"
    );
    assert_eq!(drain_bodies(&ch, &doomed_q).await, Vec::<String>::new());
}
both_stops!(
    unbind_and_delete_stay_done,
    unbinds_and_deletes_stay_done_after_graceful_restart,
    unbinds_and_deletes_stay_done_after_kill9
);

async fn state_survives_several_restarts(mut node: Node, stop: Stop) {
    let x = unique("multi-ex");
    let q1 = unique("multi-q1");
    let q2 = unique("multi-q2");
    {
        let (_conn, ch) = node.channel().await;
        declare_durable_exchange(&ch, &x, ExchangeKind::Direct).await;
        declare_durable_queue(&ch, &q1).await;
        bind_queue(&ch, &q1, &x, "k").await;
    }
    {
        // Changes made by the second process must be stored as well.
        let (_conn, ch) = node.restart_and_open_channel(stop).await;
        declare_durable_queue(&ch, &q2).await;
        bind_queue(&ch, &q2, &x, "k").await;
    }
    node.restart(stop);
    node.restart(stop);
    let (_conn, ch) = node.confirm_channel().await;
    publish_acked(&ch, &x, "k", b"m", persistent()).await;
    assert_eq!(drain_bodies(&ch, &q1).await, ["m"]);
    assert_eq!(drain_bodies(&ch, &q2).await, ["m"]);
}
both_stops!(
    state_survives_several_restarts,
    topology_survives_several_graceful_restarts,
    topology_survives_several_kill9s
);
