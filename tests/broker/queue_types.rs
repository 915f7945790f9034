//! `x-queue-type` (issue #14, first step): classic and quorum queues declared, refused and
//! redeclared with RabbitMQ 3.10's answers, a quorum queue's refusal of global QoS, and
//! (warren only, it restarts the broker) a quorum queue keeping transient messages across a
//! kill -9. The tests that use `TestBroker::start` run against the reference RabbitMQ too
//! (`WARREN_TEST_AMQP_URL`).

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::options::{BasicConsumeOptions, BasicQosOptions, QueueDeclareOptions};

use crate::common::*;

fn quorum_with(extra: &[(&str, AMQPValue)]) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    for (k, v) in extra {
        args.insert((*k).into(), v.clone());
    }
    args
}

async fn declare_as(
    ch: &lapin::Channel,
    name: &str,
    options: QueueDeclareOptions,
    args: FieldTable,
) -> lapin::Result<lapin::Queue> {
    ch.queue_declare(name.into(), options, args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_queue_is_declared_redeclared_and_shown_with_its_type() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let name = unique("qt-quorum");
    declare_as(&ch, &name, durable(), quorum_with(&[]))
        .await
        .unwrap();
    declare_as(&ch, &name, durable(), quorum_with(&[]))
        .await
        .unwrap();
    publish_confirmed(&ch, "", &name, b"one", transient()).await;
    wait_message_count(&ch, &name, 1).await;
    let shown = crate::common::http::Http::new(&broker.management_url())
        .get(&format!("/api/queues/%2F/{name}"));
    assert_eq!(shown.body["type"], "quorum");
    // Redeclared without x-queue-type: RabbitMQ's inequivalent-arg refusal.
    let refused = expect_amqp_error(declare_as(&ch, &name, durable(), FieldTable::default()).await);
    assert_eq!(
        refused,
        precondition_failed(format!(
            "inequivalent arg 'x-queue-type' for queue '{name}' in vhost '/': received none but current is the value 'quorum' of type 'longstr'"
        ))
    );
    let (_conn, ch) = broker.channel().await;
    ch.queue_delete(name.as_str().into(), Default::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_queue_type_and_classic_are_the_same_type() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let (plain, named) = (unique("qt-plain"), unique("qt-named"));
    let mut classic = FieldTable::default();
    classic.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("classic".into()),
    );
    declare_as(&ch, &plain, durable(), FieldTable::default())
        .await
        .unwrap();
    declare_as(&ch, &plain, durable(), classic.clone())
        .await
        .unwrap();
    declare_as(&ch, &named, durable(), classic).await.unwrap();
    declare_as(&ch, &named, durable(), FieldTable::default())
        .await
        .unwrap();
    for q in [&plain, &named] {
        ch.queue_delete(q.as_str().into(), Default::default())
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_types_refuse_what_rabbitmq_refuses() {
    let broker = TestBroker::start();
    let name = unique("qt-refused");
    let what = format!("queue '{name}' in vhost '/'");
    let cases: Vec<(QueueDeclareOptions, FieldTable, String)> = vec![
        (
            durable(),
            {
                let mut a = FieldTable::default();
                a.insert("x-queue-type".into(), AMQPValue::LongString("bogus".into()));
                a
            },
            format!("invalid arg 'x-queue-type' for {what}: \"unsupported queue type 'bogus'\""),
        ),
        (
            durable(),
            quorum_with(&[("x-max-priority", AMQPValue::LongInt(5))]),
            format!("invalid arg 'x-max-priority' for {what} of queue type rabbit_quorum_queue"),
        ),
        (
            durable(),
            quorum_with(&[("x-queue-mode", AMQPValue::LongString("lazy".into()))]),
            format!("invalid arg 'x-queue-mode' for {what} of queue type rabbit_quorum_queue"),
        ),
        (
            QueueDeclareOptions::default(),
            quorum_with(&[]),
            format!("invalid property 'non-durable' for {what}"),
        ),
        (
            QueueDeclareOptions {
                durable: true,
                exclusive: true,
                ..Default::default()
            },
            quorum_with(&[]),
            format!("invalid property 'exclusive-owner' for {what}"),
        ),
        (
            QueueDeclareOptions {
                durable: true,
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            quorum_with(&[]),
            format!("invalid property 'auto-delete' for {what}"),
        ),
        (
            // A bad value is reported before a refused key or property.
            QueueDeclareOptions::default(),
            quorum_with(&[
                ("x-max-length", AMQPValue::LongInt(-1)),
                ("x-max-priority", AMQPValue::LongInt(5)),
            ]),
            format!("invalid arg 'x-max-length' for {what}: {{value_negative,-1}}"),
        ),
    ];
    for (options, args, text) in cases {
        let (_conn, ch) = broker.channel().await;
        let refused = expect_amqp_error(declare_as(&ch, &name, options, args.clone()).await);
        assert_eq!(refused, precondition_failed(&text), "{args:?}");
    }
    // What 3.10 accepts on a quorum queue.
    let (_conn, ch) = broker.channel().await;
    let accepted = quorum_with(&[
        ("x-delivery-limit", AMQPValue::LongInt(3)),
        (
            "x-overflow",
            AMQPValue::LongString("reject-publish-dlx".into()),
        ),
        ("x-single-active-consumer", AMQPValue::Boolean(true)),
        ("x-message-ttl", AMQPValue::LongInt(60000)),
        ("x-note", AMQPValue::LongString("kept".into())),
    ]);
    declare_as(&ch, &name, durable(), accepted).await.unwrap();
    ch.queue_delete(name.as_str().into(), Default::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consuming_from_a_quorum_queue_with_global_qos_closes_the_connection_with_540() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let name = unique("qt-global");
    declare_as(&ch, &name, durable(), quorum_with(&[]))
        .await
        .unwrap();
    ch.basic_qos(10, BasicQosOptions { global: true })
        .await
        .unwrap();
    let refused = expect_amqp_error(
        ch.basic_consume(
            name.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(
        refused,
        not_implemented(format!(
            "queue '{name}' in vhost '/' does not support global qos"
        ))
    );
    let (_conn, ch) = broker.channel().await;
    ch.queue_delete(name.as_str().into(), Default::default())
        .await
        .unwrap();
}

/// warren only: kills the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_queue_keeps_transient_messages_across_kill_9_and_a_classic_one_does_not() {
    let dir = std::env::temp_dir().join(unique("qt-crash"));
    let mut broker = TestBroker::spawn_in(&dir, &[]);
    let (conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    declare_as(&ch, "qt-q", durable(), quorum_with(&[]))
        .await
        .unwrap();
    declare_durable_queue(&ch, "qt-c").await;
    declare_exchange(&ch, "qt-fan", lapin::ExchangeKind::Fanout).await;
    for q in ["qt-q", "qt-c"] {
        ch.queue_bind(
            q.into(),
            "qt-fan".into(),
            "".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    }
    for i in 0..20 {
        publish_confirmed(&ch, "qt-fan", "", format!("t{i}").as_bytes(), transient()).await;
    }
    publish_confirmed(&ch, "qt-fan", "", b"p", persistent()).await;
    drop(conn);
    broker.kill9();
    let broker = TestBroker::spawn_in(&dir, &[]);
    let (_conn, ch) = broker.channel().await;
    assert_eq!(message_count(&ch, "qt-q").await, 21);
    assert_eq!(
        message_count(&ch, "qt-c").await,
        1,
        "a classic queue keeps only the persistent one"
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `x-delivery-count` header of a delivery, if it has one.
fn delivery_count(delivery: &lapin::message::BasicGetMessage) -> Option<i64> {
    let headers = delivery.delivery.properties.headers().as_ref()?;
    match headers.inner().get("x-delivery-count")? {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        other => panic!("x-delivery-count of type {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_queue_counts_returns_and_dead_letters_past_its_delivery_limit() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let (name, dead, classic) = (
        unique("qt-limit"),
        unique("qt-limit-dead"),
        unique("qt-plain"),
    );
    declare_queue(&ch, &dead).await;
    declare_queue(&ch, &classic).await;
    let args = quorum_with(&[
        ("x-delivery-limit", AMQPValue::LongInt(2)),
        ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
        (
            "x-dead-letter-routing-key",
            AMQPValue::LongString(dead.as_str().into()),
        ),
    ]);
    declare_as(&ch, &name, durable(), args).await.unwrap();
    publish_confirmed(&ch, "", &name, b"again", transient()).await;
    let mut counts = Vec::new();
    for _ in 0..3 {
        let got = wait_get(&ch, &name).await;
        counts.push((got.delivery.redelivered, delivery_count(&got)));
        ch.basic_nack(
            got.delivery.delivery_tag,
            lapin::options::BasicNackOptions {
                requeue: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    assert_eq!(counts, [(false, Some(0)), (true, Some(1)), (true, Some(2))]);
    // The third return is one past the limit: the message leaves, dead-lettered.
    wait_message_count(&ch, &dead, 1).await;
    assert_eq!(message_count(&ch, &name).await, 0);
    let got = wait_get(&ch, &dead).await;
    let reason = got
        .delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get("x-first-death-reason").cloned());
    assert_eq!(reason, Some(AMQPValue::LongString("delivery_limit".into())));
    // A classic queue's deliveries carry no count.
    publish_confirmed(&ch, "", &classic, b"plain", transient()).await;
    assert_eq!(delivery_count(&wait_get(&ch, &classic).await), None);
    for q in [&name, &dead, &classic] {
        ch.queue_delete(q.as_str().into(), Default::default())
            .await
            .unwrap();
    }
}

/// basic.get (with ack) until a message is there (RabbitMQ requeues asynchronously).
async fn wait_get(ch: &lapin::Channel, queue: &str) -> lapin::message::BasicGetMessage {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(got) = get_message(ch, queue).await {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing to get from {queue}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_queue_puts_returned_messages_at_the_back_in_the_order_they_came_back() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let (quorum, classic) = (unique("qt-order-q"), unique("qt-order-c"));
    declare_as(&ch, &quorum, durable(), quorum_with(&[]))
        .await
        .unwrap();
    declare_durable_queue(&ch, &classic).await;
    let mut orders = Vec::new();
    for q in [&quorum, &classic] {
        for i in 0..5 {
            publish_confirmed(&ch, "", q, i.to_string().as_bytes(), transient()).await;
        }
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(wait_get(&ch, q).await.delivery.delivery_tag);
        }
        // 2 comes back, then 0; 1 stays unacked.
        for tag in [got[2], got[0]] {
            ch.basic_reject(tag, lapin::options::BasicRejectOptions { requeue: true })
                .await
                .unwrap();
        }
        wait_message_count(&ch, q, 4).await;
        let mut order = Vec::new();
        while let Some(m) = get_message_no_ack(&ch, q).await {
            order.push((
                String::from_utf8(m.delivery.data).unwrap(),
                m.delivery.redelivered,
            ));
        }
        ch.basic_ack(got[1], Default::default()).await.unwrap();
        orders.push(order);
    }
    let expect = |items: [(&str, bool); 4]| items.map(|(b, r)| (b.to_string(), r)).to_vec();
    assert_eq!(
        orders[0],
        expect([("3", false), ("4", false), ("2", true), ("0", true)])
    );
    assert_eq!(
        orders[1],
        expect([("0", true), ("2", true), ("3", false), ("4", false)])
    );
    for q in [&quorum, &classic] {
        ch.queue_delete(q.as_str().into(), Default::default())
            .await
            .unwrap();
    }
}

/// warren only: kills the broker. A returned message's store entry moved with it: after the
/// crash every message is there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_returned_to_a_quorum_queue_survive_kill_9_once_each() {
    let dir = std::env::temp_dir().join(unique("qt-returned"));
    let mut broker = TestBroker::spawn_in(&dir, &[]);
    let (conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    declare_as(&ch, "qt-r", durable(), quorum_with(&[]))
        .await
        .unwrap();
    for i in 0..4 {
        publish_confirmed(&ch, "", "qt-r", format!("m{i}").as_bytes(), persistent()).await;
    }
    for _ in 0..2 {
        let got = wait_get(&ch, "qt-r").await;
        ch.basic_reject(
            got.delivery.delivery_tag,
            lapin::options::BasicRejectOptions { requeue: true },
        )
        .await
        .unwrap();
    }
    // A confirmed publish after the returns: the store has everything before it.
    publish_confirmed(&ch, "", "qt-r", b"last", persistent()).await;
    drop(conn);
    broker.kill9();
    let broker = TestBroker::spawn_in(&dir, &[]);
    let (_conn, ch) = broker.channel().await;
    let mut bodies = Vec::new();
    while let Some(m) = get_message_no_ack(&ch, "qt-r").await {
        bodies.push(String::from_utf8(m.delivery.data).unwrap());
    }
    bodies.sort();
    assert_eq!(bodies, ["last", "m0", "m1", "m2", "m3"]);
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
