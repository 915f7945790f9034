//! Which messages a restart keeps: persistent ones in durable queues, in publish order, with their
//! properties, in every queue they were routed to, across any number of restarts; not transient
//! ones, and not those in non-durable queues.

use amq_protocol::types::AMQPValue;
use lapin::{BasicProperties, ExchangeKind};

use crate::common::*;
use crate::support::*;

fn full_properties() -> BasicProperties {
    BasicProperties::default()
        .with_content_type("text/plain".into())
        .with_content_encoding("utf-8".into())
        .with_headers(table(vec![
            ("h", long_str("v")),
            ("n", AMQPValue::LongInt(5)),
            (
                "nested",
                AMQPValue::FieldTable(table(vec![("deep", AMQPValue::Boolean(true))])),
            ),
        ]))
        .with_delivery_mode(2)
        .with_priority(3)
        .with_correlation_id("corr-1".into())
        .with_reply_to("reply-here".into())
        .with_message_id("msg-1".into())
        .with_timestamp(1_700_000_000)
        .with_type("order.created".into())
        .with_user_id("guest".into())
        .with_app_id("durability-tests".into())
}

async fn persistent_messages_survive(mut node: Node, stop: Stop) {
    let q = unique("pm-q");
    let x = unique("pm-ex");
    let expected = numbered("m", 100);
    let big: String = (0..300_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, &q).await;
        declare_durable_exchange(&ch, &x, ExchangeKind::Direct).await;
        bind_queue(&ch, &q, &x, "rk").await;
        publish_all_confirmed(&ch, &q, &expected).await;
        publish_acked(&ch, &x, "rk", b"with-properties", full_properties()).await;
        publish_acked(&ch, "", &q, big.as_bytes(), persistent()).await;
        publish_acked(&ch, "", &q, b"", persistent()).await;
    }
    let (_conn, ch) = node.restart_and_open_channel(stop).await;
    assert_eq!(message_count(&ch, &q).await, 103, "after {stop:?} restart");
    let got = get_all(&ch, &q).await;
    assert_eq!(got.len(), 103, "after {stop:?} restart");
    assert_eq!(
        bodies(&got[..100]),
        expected,
        "persistent messages after {stop:?} restart"
    );
    for g in &got[..100] {
        assert_eq!(
            (g.exchange.as_str(), g.routing_key.as_str()),
            ("", q.as_str())
        );
        assert_eq!(g.properties, persistent());
    }
    let p = &got[100];
    assert_eq!(p.body, "with-properties");
    assert_eq!(
        (p.exchange.as_str(), p.routing_key.as_str()),
        (x.as_str(), "rk")
    );
    assert_eq!(p.properties, full_properties());
    assert!(got[101].body == big, "300 kB body came back altered");
    assert_eq!(got[102].body, "");
}
both_stops!(
    persistent_messages_survive,
    persistent_messages_survive_graceful_restart_in_order_with_properties,
    persistent_messages_survive_kill9_in_order_with_properties
);

async fn transient_messages_do_not_survive(mut node: Node, stop: Stop) {
    let q = unique("tm-q");
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, &q).await;
        let unset = BasicProperties::default();
        for (body, props) in [
            ("p1", persistent()),
            ("t1", transient()),
            ("u1", unset),
            ("p2", persistent()),
            ("t2", transient()),
            ("p3", persistent()),
        ] {
            publish_acked(&ch, "", &q, body.as_bytes(), props).await;
        }
        assert_eq!(message_count(&ch, &q).await, 6);
    }
    let (_conn, ch) = node.restart_and_open_channel(stop).await;
    assert_eq!(message_count(&ch, &q).await, 3, "after {stop:?} restart");
    assert_eq!(drain_bodies(&ch, &q).await, ["p1", "p2", "p3"]);
}
both_stops!(
    transient_messages_do_not_survive,
    transient_messages_are_gone_after_graceful_restart,
    transient_messages_are_gone_after_kill9
);

async fn persistent_messages_in_non_durable_queue_do_not_survive(mut node: Node, stop: Stop) {
    let x = unique("nd-fanout");
    let q = unique("nd-durable-q");
    let nq = unique("nd-transient-q");
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_exchange(&ch, &x, ExchangeKind::Fanout).await;
        declare_durable_queue(&ch, &q).await;
        declare_queue(&ch, &nq).await;
        bind_queue(&ch, &q, &x, "").await;
        bind_queue(&ch, &nq, &x, "").await;
        for i in 0..5 {
            publish_acked(&ch, &x, "", format!("m{i}").as_bytes(), persistent()).await;
        }
    }
    let (conn, ch) = node.restart_and_open_channel(stop).await;
    assert!(!queue_exists(&conn, &nq).await);
    declare_queue(&ch, &nq).await;
    assert_eq!(
        message_count(&ch, &nq).await,
        0,
        "non-durable queue got messages back"
    );
    assert_eq!(drain_bodies(&ch, &q).await, ["m0", "m1", "m2", "m3", "m4"]);
}
both_stops!(
    persistent_messages_in_non_durable_queue_do_not_survive,
    persistent_messages_in_non_durable_queue_are_gone_after_graceful_restart,
    persistent_messages_in_non_durable_queue_are_gone_after_kill9
);

async fn fanned_out_message_is_back_in_each_queue(mut node: Node, stop: Stop) {
    let x = unique("fo-fanout");
    let qs: Vec<String> = (0..3).map(|i| unique(&format!("fo-q{i}"))).collect();
    let expected = numbered("f", 20);
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_exchange(&ch, &x, ExchangeKind::Fanout).await;
        for q in &qs {
            declare_durable_queue(&ch, q).await;
            bind_queue(&ch, q, &x, "").await;
        }
        for body in &expected {
            publish_acked(&ch, &x, "", body.as_bytes(), persistent()).await;
        }
    }
    {
        // Every queue has every message; ack them all in queue 0 (manual acks).
        let (conn, ch) = node.restart_and_open_channel(stop).await;
        for q in &qs {
            assert_eq!(
                message_count(&ch, q).await,
                20,
                "{q} after {stop:?} restart"
            );
        }
        let mut consumer = consume_from(&ch, &qs[0]).await;
        let mut seen = Vec::new();
        for _ in 0..20 {
            let d = next_delivery(&mut consumer).await;
            seen.push(body_str(&d));
            d.ack(Default::default()).await.unwrap();
        }
        assert_eq!(seen, expected);
        sync(&ch).await;
        conn.close(200, "bye".into()).await.unwrap();
    }
    // Graceful: acks are only promised to be durable across a clean stop.
    {
        let (_conn, ch) = node.restart_and_open_channel(Stop::Graceful).await;
        assert_eq!(
            drain_bodies(&ch, &qs[0]).await,
            Vec::<String>::new(),
            "acked messages came back"
        );
        // Taking them out of queue 1 (no-ack get) leaves queue 2 alone.
        assert_eq!(drain_bodies(&ch, &qs[1]).await, expected);
    }
    let (_conn, ch) = node.restart_and_open_channel(Stop::Graceful).await;
    assert_eq!(drain_bodies(&ch, &qs[0]).await, Vec::<String>::new());
    assert_eq!(drain_bodies(&ch, &qs[1]).await, Vec::<String>::new());
    assert_eq!(drain_bodies(&ch, &qs[2]).await, expected);
}
both_stops!(
    fanned_out_message_is_back_in_each_queue,
    fanned_out_persistent_message_survives_graceful_restart_in_each_queue,
    fanned_out_persistent_message_survives_kill9_in_each_queue
);

async fn messages_accumulate_across_restarts(mut node: Node, stop: Stop) {
    // Each process must store new messages without clobbering what earlier ones stored
    // (e.g. by restarting a message-id counter from zero).
    let q = unique("accum-q");
    let other = unique("accum-other");
    let mut expected = Vec::new();
    for round in 0..3 {
        let batch = numbered(&format!("r{round}"), 3);
        {
            let (_conn, ch) = node.confirm_channel().await;
            declare_durable_queue(&ch, &q).await;
            declare_durable_queue(&ch, &other).await;
            publish_all_confirmed(&ch, &q, &batch).await;
            publish_all_confirmed(&ch, &other, &numbered(&format!("o{round}"), 2)).await;
        }
        expected.extend(batch);
        node.restart(stop);
    }
    let (_conn, ch) = node.channel().await;
    assert_eq!(
        drain_bodies(&ch, &q).await,
        expected,
        "after 3 {stop:?} restarts"
    );
    assert_eq!(message_count(&ch, &other).await, 6);
}
both_stops!(
    messages_accumulate_across_restarts,
    messages_accumulate_across_graceful_restarts,
    messages_accumulate_across_kill9s
);
