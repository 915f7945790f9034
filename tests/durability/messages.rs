//! Messages across restarts: persistent messages in durable queues come back in publish order with
//! their properties; transient ones and ones in non-durable queues do not; acks, rejects, purges,
//! deletes and max-length drops are permanent; delivered-but-unacked messages come back
//! redelivered; a publisher confirm or a tx.commit-ok means the message survives `kill -9`.

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, ExchangeKind,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
        BasicRejectOptions, QueueDeclareOptions,
    },
};

use crate::common::*;
use crate::support::*;
// These durability versions take `durable` / binding arguments; the broker suite has its own.
use crate::support::{bind_queue, declare_exchange, publish_confirmed};

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

async fn persistent_messages_survive(stop: Stop) {
    let mut node = Node::start();
    let q = unique("pm-q");
    let x = unique("pm-ex");
    let expected = numbered("m", 100);
    let big: String = (0..300_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, &q, FieldTable::default()).await;
        declare_exchange(&ch, &x, ExchangeKind::Direct, true).await;
        bind_queue(&ch, &q, &x, "rk", FieldTable::default()).await;
        publish_all_confirmed(&ch, &q, &expected).await;
        publish_confirmed(&ch, &x, "rk", b"with-properties", full_properties()).await;
        publish_confirmed(&ch, "", &q, big.as_bytes(), persistent()).await;
        publish_confirmed(&ch, "", &q, b"", persistent()).await;
    }
    node.restart(stop);
    let (_conn, ch) = node.channel().await;
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

async fn transient_messages_do_not_survive(stop: Stop) {
    let mut node = Node::start();
    let q = unique("tm-q");
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, &q, FieldTable::default()).await;
        publish_confirmed(&ch, "", &q, b"p1", persistent()).await;
        publish_confirmed(&ch, "", &q, b"t1", transient()).await;
        publish_confirmed(&ch, "", &q, b"u1", BasicProperties::default()).await;
        publish_confirmed(&ch, "", &q, b"p2", persistent()).await;
        publish_confirmed(&ch, "", &q, b"t2", transient()).await;
        publish_confirmed(&ch, "", &q, b"p3", persistent()).await;
        assert_eq!(message_count(&ch, &q).await, 6);
    }
    node.restart(stop);
    let (_conn, ch) = node.channel().await;
    assert_eq!(message_count(&ch, &q).await, 3, "after {stop:?} restart");
    assert_eq!(drain(&ch, &q).await, ["p1", "p2", "p3"]);
}
both_stops!(
    transient_messages_do_not_survive,
    transient_messages_are_gone_after_graceful_restart,
    transient_messages_are_gone_after_kill9
);

async fn persistent_messages_in_non_durable_queue_do_not_survive(stop: Stop) {
    let mut node = Node::start();
    let x = unique("nd-fanout");
    let q = unique("nd-durable-q");
    let nq = unique("nd-transient-q");
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_exchange(&ch, &x, ExchangeKind::Fanout, true).await;
        declare_durable_queue(&ch, &q, FieldTable::default()).await;
        declare_queue(&ch, &nq).await;
        bind_queue(&ch, &q, &x, "", FieldTable::default()).await;
        bind_queue(&ch, &nq, &x, "", FieldTable::default()).await;
        for i in 0..5 {
            publish_confirmed(&ch, &x, "", format!("m{i}").as_bytes(), persistent()).await;
        }
    }
    node.restart(stop);
    let (conn, ch) = node.channel().await;
    assert!(!queue_exists(&conn, &nq).await);
    declare_queue(&ch, &nq).await;
    assert_eq!(
        message_count(&ch, &nq).await,
        0,
        "non-durable queue got messages back"
    );
    assert_eq!(drain(&ch, &q).await, ["m0", "m1", "m2", "m3", "m4"]);
}
both_stops!(
    persistent_messages_in_non_durable_queue_do_not_survive,
    persistent_messages_in_non_durable_queue_are_gone_after_graceful_restart,
    persistent_messages_in_non_durable_queue_are_gone_after_kill9
);

async fn fanned_out_message_is_back_in_each_queue(stop: Stop) {
    let mut node = Node::start();
    let x = unique("fo-fanout");
    let qs: Vec<String> = (0..3).map(|i| unique(&format!("fo-q{i}"))).collect();
    let expected = numbered("f", 20);
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_exchange(&ch, &x, ExchangeKind::Fanout, true).await;
        for q in &qs {
            declare_durable_queue(&ch, q, FieldTable::default()).await;
            bind_queue(&ch, q, &x, "", FieldTable::default()).await;
        }
        for body in &expected {
            publish_confirmed(&ch, &x, "", body.as_bytes(), persistent()).await;
        }
    }
    node.restart(stop);
    {
        // Every queue has every message; ack them all in queue 0 (manual acks).
        let (conn, ch) = node.channel().await;
        for q in &qs {
            assert_eq!(
                message_count(&ch, q).await,
                20,
                "{q} after {stop:?} restart"
            );
        }
        let mut consumer = ch
            .basic_consume(
                qs[0].as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..20 {
            let d = next_delivery(&mut consumer).await;
            seen.push(String::from_utf8(d.data.clone()).unwrap());
            d.ack(BasicAckOptions::default()).await.unwrap();
        }
        assert_eq!(seen, expected);
        sync(&ch).await;
        conn.close(200, "bye".into()).await.unwrap();
    }
    // Graceful: acks are only promised to be durable across a clean stop.
    node.restart(Stop::Graceful);
    {
        let (_conn, ch) = node.channel().await;
        assert_eq!(
            drain(&ch, &qs[0]).await,
            Vec::<String>::new(),
            "acked messages came back"
        );
        // Taking them out of queue 1 (no-ack get) leaves queue 2 alone.
        assert_eq!(drain(&ch, &qs[1]).await, expected);
    }
    node.restart(Stop::Graceful);
    let (_conn, ch) = node.channel().await;
    assert_eq!(drain(&ch, &qs[0]).await, Vec::<String>::new());
    assert_eq!(drain(&ch, &qs[1]).await, Vec::<String>::new());
    assert_eq!(drain(&ch, &qs[2]).await, expected);
}
both_stops!(
    fanned_out_message_is_back_in_each_queue,
    fanned_out_persistent_message_survives_graceful_restart_in_each_queue,
    fanned_out_persistent_message_survives_kill9_in_each_queue
);

#[tokio::test]
async fn acked_rejected_and_nacked_messages_stay_gone_after_graceful_restart() {
    let mut node = Node::start();
    let q = unique("ack-q");
    let expected = numbered("m", 10);
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, &q, FieldTable::default()).await;
        publish_all_confirmed(&ch, &q, &expected).await;
    }
    // Keep this connection (and its unacked deliveries) open into the shutdown.
    let (_conn, ch) = node.channel().await;
    let deliveries = take_unacked(&ch, &q, 10).await;
    let tags: Vec<u64> = deliveries.iter().map(|d| d.delivery_tag).collect();
    assert_eq!(bodies_of(&deliveries), expected);
    ch.basic_ack(tags[0], BasicAckOptions::default())
        .await
        .unwrap();
    ch.basic_ack(tags[1], BasicAckOptions::default())
        .await
        .unwrap();
    ch.basic_ack(tags[4], BasicAckOptions { multiple: true })
        .await
        .unwrap();
    ch.basic_reject(tags[5], BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    ch.basic_nack(
        tags[6],
        BasicNackOptions {
            multiple: false,
            requeue: false,
        },
    )
    .await
    .unwrap();
    // The broker handles a channel's methods in order: after this round trip it has seen them.
    sync(&ch).await;
    node.restart(Stop::Graceful);
    let (_conn2, ch2) = node.channel().await;
    let got = get_all(&ch2, &q).await;
    assert_eq!(
        bodies(&got),
        ["m-7", "m-8", "m-9"],
        "only the unsettled ones come back"
    );
    for g in &got {
        assert!(g.redelivered, "{} was delivered before the restart", g.body);
    }
}

#[tokio::test]
async fn no_ack_gets_and_deliveries_stay_gone_after_graceful_restart() {
    let mut node = Node::start();
    let q1 = unique("noack-get-q");
    let q2 = unique("noack-consume-q");
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, &q1, FieldTable::default()).await;
        declare_durable_queue(&ch, &q2, FieldTable::default()).await;
        publish_all_confirmed(&ch, &q1, &numbered("g", 4)).await;
        publish_all_confirmed(&ch, &q2, &numbered("c", 3)).await;
        assert_eq!(get_body(&ch, &q1).await.unwrap(), b"g-0");
        assert_eq!(get_body(&ch, &q1).await.unwrap(), b"g-1");
        let mut consumer = ch
            .basic_consume(
                q2.as_str().into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        for i in 0..3 {
            let d = next_delivery(&mut consumer).await;
            assert_eq!(d.data, format!("c-{i}").as_bytes());
        }
        sync(&ch).await;
    }
    node.restart(Stop::Graceful);
    let (_conn, ch) = node.channel().await;
    assert_eq!(drain(&ch, &q1).await, ["g-2", "g-3"]);
    assert_eq!(drain(&ch, &q2).await, Vec::<String>::new());
}

fn bodies_of(ds: &[lapin::message::Delivery]) -> Vec<String> {
    ds.iter()
        .map(|d| String::from_utf8(d.data.clone()).unwrap())
        .collect()
}

async fn delivered_unacked_come_back_redelivered(stop: Stop) {
    let mut node = Node::start();
    let q = unique("unacked-q");
    let expected = numbered("m", 6);
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, &q, FieldTable::default()).await;
        publish_all_confirmed(&ch, &q, &expected).await;
    }
    // Keep the consumer's connection open until the broker goes down.
    let (_conn, ch) = node.channel().await;
    ch.basic_qos(3, BasicQosOptions::default()).await.unwrap();
    let deliveries = take_unacked(&ch, &q, 3).await;
    assert_eq!(bodies_of(&deliveries), expected[..3]);
    assert!(deliveries.iter().all(|d| !d.redelivered));
    sync(&ch).await;
    node.restart(stop);
    let (_conn2, ch2) = node.channel().await;
    let got = get_all(&ch2, &q).await;
    assert_eq!(bodies(&got), expected, "after {stop:?} restart");
    for g in &got[..3] {
        assert!(
            g.redelivered,
            "{} was delivered (unacked) before the {stop:?} restart but is not flagged redelivered",
            g.body
        );
    }
}
both_stops!(
    delivered_unacked_come_back_redelivered,
    delivered_unacked_messages_come_back_redelivered_after_graceful_restart,
    delivered_unacked_messages_come_back_redelivered_after_kill9
);

async fn purge_is_permanent(stop: Stop) {
    let mut node = Node::start();
    let q = unique("purge-q");
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, &q, FieldTable::default()).await;
        publish_all_confirmed(&ch, &q, &numbered("old", 5)).await;
        let purged = ch
            .queue_purge(q.as_str().into(), Default::default())
            .await
            .expect("queue.purge");
        assert_eq!(purged, 5);
        publish_all_confirmed(&ch, &q, &numbered("new", 2)).await;
    }
    node.restart(stop);
    let (_conn, ch) = node.channel().await;
    assert_eq!(
        drain(&ch, &q).await,
        ["new-0", "new-1"],
        "purged messages came back after {stop:?} restart"
    );
}
both_stops!(
    purge_is_permanent,
    purged_messages_stay_gone_after_graceful_restart,
    purged_messages_stay_gone_after_kill9
);

async fn delete_is_permanent(stop: Stop) {
    let mut node = Node::start();
    let q1 = unique("del-q1");
    let q2 = unique("del-q2");
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, &q1, FieldTable::default()).await;
        declare_durable_queue(&ch, &q2, FieldTable::default()).await;
        publish_all_confirmed(&ch, &q1, &numbered("old1", 5)).await;
        publish_all_confirmed(&ch, &q2, &numbered("old2", 5)).await;
        for q in [&q1, &q2] {
            let n = ch
                .queue_delete(q.as_str().into(), Default::default())
                .await
                .expect("queue.delete");
            assert_eq!(n, 5);
        }
        // q2 is recreated at once and gets a new message.
        declare_durable_queue(&ch, &q2, FieldTable::default()).await;
        publish_all_confirmed(&ch, &q2, &numbered("new2", 1)).await;
    }
    node.restart(stop);
    let (conn, ch) = node.channel().await;
    assert!(!queue_exists(&conn, &q1).await, "deleted queue came back");
    declare_durable_queue(&ch, &q1, FieldTable::default()).await;
    assert_eq!(
        drain(&ch, &q1).await,
        Vec::<String>::new(),
        "messages of a deleted queue came back after {stop:?} restart"
    );
    assert_eq!(drain(&ch, &q2).await, ["new2-0"]);
}
both_stops!(
    delete_is_permanent,
    deleted_queue_messages_stay_gone_after_graceful_restart,
    deleted_queue_messages_stay_gone_after_kill9
);

async fn max_length_drops_are_permanent(stop: Stop) {
    let mut node = Node::start();
    let q = unique("maxlen-q");
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(
            &ch,
            &q,
            table(vec![("x-max-length", AMQPValue::LongInt(3))]),
        )
        .await;
        publish_all_confirmed(&ch, &q, &numbered("m", 5)).await;
        assert_eq!(
            message_count(&ch, &q).await,
            3,
            "x-max-length 3 is not enforced (before any restart)"
        );
    }
    node.restart(stop);
    let (_conn, ch) = node.confirm_channel().await;
    assert_eq!(
        message_count(&ch, &q).await,
        3,
        "dropped messages came back after {stop:?} restart"
    );
    // The recovered queue still enforces its limit.
    publish_all_confirmed(&ch, &q, &numbered("n", 1)).await;
    assert_eq!(
        drain(&ch, &q).await,
        ["m-3", "m-4", "n-0"],
        "after {stop:?} restart"
    );
}
both_stops!(
    max_length_drops_are_permanent,
    max_length_head_drops_stay_dropped_after_graceful_restart,
    max_length_head_drops_stay_dropped_after_kill9
);

async fn messages_accumulate_across_restarts(stop: Stop) {
    // Each process must store new messages without clobbering what earlier ones stored
    // (e.g. by restarting a message-id counter from zero).
    let mut node = Node::start();
    let q = unique("accum-q");
    let other = unique("accum-other");
    let mut expected = Vec::new();
    for round in 0..3 {
        let batch = numbered(&format!("r{round}"), 3);
        {
            let (_conn, ch) = node.confirm_channel().await;
            declare_durable_queue(&ch, &q, FieldTable::default()).await;
            declare_durable_queue(&ch, &other, FieldTable::default()).await;
            publish_all_confirmed(&ch, &q, &batch).await;
            publish_all_confirmed(&ch, &other, &numbered(&format!("o{round}"), 2)).await;
        }
        expected.extend(batch);
        node.restart(stop);
    }
    let (_conn, ch) = node.channel().await;
    assert_eq!(drain(&ch, &q).await, expected, "after 3 {stop:?} restarts");
    assert_eq!(message_count(&ch, &other).await, 6);
}
both_stops!(
    messages_accumulate_across_restarts,
    messages_accumulate_across_graceful_restarts,
    messages_accumulate_across_kill9s
);

#[tokio::test]
async fn confirmed_messages_survive_immediate_kill9() {
    let mut node = Node::start();
    let x = unique("conf-fanout");
    let q1 = unique("conf-q1");
    let q2 = unique("conf-q2");
    let expected = numbered("c", 500);
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_exchange(&ch, &x, ExchangeKind::Fanout, true).await;
        declare_durable_queue(&ch, &q1, FieldTable::default()).await;
        declare_durable_queue(&ch, &q2, FieldTable::default()).await;
        bind_queue(&ch, &q1, &x, "", FieldTable::default()).await;
        bind_queue(&ch, &q2, &x, "", FieldTable::default()).await;
        // Pipelined: 500 in flight, then every confirm.
        let mut pending = Vec::new();
        for body in &expected {
            pending.push(
                ch.basic_publish(
                    x.as_str().into(),
                    "".into(),
                    Default::default(),
                    body.as_bytes(),
                    persistent(),
                )
                .await
                .unwrap(),
            );
        }
        for p in pending {
            let c = tokio::time::timeout(WAIT, p).await.unwrap().unwrap();
            assert!(c.is_ack());
        }
        // The last confirm is in: crash now.
        node.stop(Stop::Kill);
    }
    node.restart_after_stop();
    // One at a time: publish, confirm, crash; three times.
    let mut singles = Vec::new();
    for i in 0..3 {
        let body = format!("single-{i}");
        let (_conn, ch) = node.confirm_channel().await;
        publish_confirmed(&ch, "", &q1, body.as_bytes(), persistent()).await;
        singles.push(body);
        node.stop(Stop::Kill);
        node.restart_after_stop();
    }
    let (_conn, ch) = node.channel().await;
    let mut want1 = expected.clone();
    want1.extend(singles);
    assert_eq!(
        drain(&ch, &q1).await,
        want1,
        "confirmed messages lost by kill -9"
    );
    assert_eq!(
        drain(&ch, &q2).await,
        expected,
        "confirmed messages lost by kill -9"
    );
}

#[tokio::test]
async fn committed_transaction_survives_immediate_kill9() {
    let mut node = Node::start();
    let q = unique("tx-q");
    let committed = numbered("c", 50);
    {
        let (_conn, ch) = node.channel().await;
        declare_durable_queue(&ch, &q, FieldTable::default()).await;
        ch.tx_select().await.expect("tx.select");
        for body in numbered("rolled-back", 3) {
            publish_props(&ch, "", &q, body.as_bytes(), persistent()).await;
        }
        ch.tx_rollback().await.expect("tx.rollback");
        for body in &committed {
            publish_props(&ch, "", &q, body.as_bytes(), persistent()).await;
        }
        ch.tx_commit().await.expect("tx.commit");
        // Published in the next transaction, never committed.
        for body in numbered("uncommitted", 5) {
            publish_props(&ch, "", &q, body.as_bytes(), persistent()).await;
        }
        sync(&ch).await;
        node.stop(Stop::Kill);
    }
    node.restart_after_stop();
    let (_conn, ch) = node.channel().await;
    assert_eq!(
        drain(&ch, &q).await,
        committed,
        "after commit-ok and kill -9: exactly the committed messages"
    );
}

#[tokio::test]
async fn queue_declared_durable_survives_kill9_right_after_declare_ok() {
    // With messages: the queue's first persistent message and the queue itself arrive together.
    let mut node = Node::start();
    let q = unique("fresh-q");
    {
        let (_conn, ch) = node.confirm_channel().await;
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
        publish_confirmed(&ch, "", &q, b"first", persistent()).await;
        node.stop(Stop::Kill);
    }
    node.restart_after_stop();
    let (_conn, ch) = node.channel().await;
    assert_eq!(drain(&ch, &q).await, ["first"]);
}
