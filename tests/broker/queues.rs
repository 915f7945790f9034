//! Queues: declare (server-named, passive, equivalence, exclusive,
//! auto-delete), bindings, purge, delete and counts.

use std::time::Duration;

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::{
    Channel, ExchangeKind,
    options::{
        BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, ExchangeDeleteOptions,
        QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
    },
};

use crate::common::*;

fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..Default::default()
    }
}

fn exclusive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    }
}

async fn consume(ch: &Channel, q: &str) -> lapin::Consumer {
    ch.basic_consume(
        q.into(),
        "".into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("consume {q}: {e:?}"))
}

async fn delete_queue(ch: &Channel, q: &str) {
    ch.queue_delete(q.into(), QueueDeleteOptions::default())
        .await
        .expect("queue.delete");
}

#[tokio::test]
async fn server_named_queue_gets_amq_gen_prefix() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q1 = ch
        .queue_declare("".into(), exclusive(), FieldTable::default())
        .await
        .unwrap();
    let q2 = ch
        .queue_declare("".into(), exclusive(), FieldTable::default())
        .await
        .unwrap();
    assert!(q1.name().as_str().starts_with("amq.gen-"), "{}", q1.name());
    assert!(q2.name().as_str().starts_with("amq.gen-"), "{}", q2.name());
    assert_ne!(q1.name(), q2.name());
    assert_eq!((q1.message_count(), q1.consumer_count()), (0, 0));
    // The generated name is usable like any other.
    publish(&ch, "", q1.name().as_str(), b"m").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, q1.name().as_str()).await, vec!["m"]);
}

#[tokio::test]
async fn passive_declare_of_missing_queue_is_404() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = unique("missing-q");
    let (code, text) = expect_amqp_error(
        ch.queue_declare(q.as_str().into(), passive(), FieldTable::default())
            .await,
    );
    assert_eq!(code, 404);
    assert_eq!(text, format!("NOT_FOUND - no queue '{q}' in vhost '/'"));
}

#[tokio::test]
async fn declare_ok_reports_message_and_consumer_counts() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = unique("counts");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    for i in 0..3 {
        publish(&ch, "", &q, format!("{i}").as_bytes()).await;
    }
    sync(&ch).await;
    let info = ch
        .queue_declare(q.as_str().into(), passive(), FieldTable::default())
        .await
        .unwrap();
    assert_eq!((info.message_count(), info.consumer_count()), (3, 0));
    // A consumer with prefetch 1 holds one message unacked.
    let cch = conn.create_channel().await.unwrap();
    cch.basic_qos(1, Default::default()).await.unwrap();
    let mut consumer = consume(&cch, &q).await;
    let _d = next_delivery(&mut consumer).await;
    wait_message_count(&ch, &q, 2).await;
    // A non-passive redeclare reports counts too; unacked messages are not counted.
    let info = ch
        .queue_declare(
            q.as_str().into(),
            QueueDeclareOptions {
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    assert_eq!((info.message_count(), info.consumer_count()), (2, 1));
}

/// Declares `q` with `first`, redeclares it with `second` and expects RabbitMQ's 406 for the
/// inequivalent `arg`; then deletes the queue on a fresh channel.
async fn assert_redeclare_is_inequivalent(
    prefix: &str,
    first: (QueueDeclareOptions, FieldTable),
    second: (QueueDeclareOptions, FieldTable),
    arg: &str,
    received: &str,
    current: &str,
) {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = unique(prefix);
    ch.queue_declare(q.as_str().into(), first.0, first.1)
        .await
        .unwrap();
    let (code, text) = expect_amqp_error(
        ch.queue_declare(q.as_str().into(), second.0, second.1)
            .await,
    );
    assert_eq!(code, 406);
    assert_eq!(
        text,
        format!(
            "PRECONDITION_FAILED - inequivalent arg '{arg}' for queue '{q}' in vhost '/': received '{received}' but current is '{current}'"
        )
    );
    let ch = conn.create_channel().await.unwrap();
    delete_queue(&ch, &q).await;
}

#[tokio::test]
async fn redeclaring_queue_with_other_durability_is_406_inequivalent_arg() {
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    assert_redeclare_is_inequivalent(
        "equiv-durable-q",
        (QueueDeclareOptions::default(), FieldTable::default()),
        (durable, FieldTable::default()),
        "durable",
        "true",
        "false",
    )
    .await;
}

#[tokio::test]
async fn redeclaring_queue_with_other_auto_delete_is_406_inequivalent_arg() {
    let auto_delete = QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    assert_redeclare_is_inequivalent(
        "equiv-ad-q",
        (QueueDeclareOptions::default(), FieldTable::default()),
        (auto_delete, FieldTable::default()),
        "auto_delete",
        "true",
        "false",
    )
    .await;
}

#[tokio::test]
async fn redeclaring_queue_with_other_arguments_is_406_inequivalent_arg() {
    let max_length = |n| table(vec![("x-max-length", AMQPValue::LongInt(n))]);
    assert_redeclare_is_inequivalent(
        "equiv-args-q",
        (exclusive(), max_length(10)),
        (exclusive(), max_length(20)),
        "x-max-length",
        "20",
        "10",
    )
    .await;
}

#[tokio::test]
async fn redeclaring_queue_with_same_attributes_is_ok() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = unique("same-q");
    let args = table(vec![("x-max-length", AMQPValue::LongInt(10))]);
    ch.queue_declare(q.as_str().into(), exclusive(), args.clone())
        .await
        .unwrap();
    ch.queue_declare(q.as_str().into(), exclusive(), args)
        .await
        .expect("equivalent redeclare");
}

#[tokio::test]
async fn declaring_queue_with_amq_prefix_is_403() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = format!("amq.{}", unique("q"));
    let (code, text) = expect_amqp_error(
        ch.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        text,
        format!("ACCESS_REFUSED - queue name '{q}' contains reserved prefix 'amq.*'")
    );
}

#[tokio::test]
async fn exclusive_queue_is_locked_for_other_connections() {
    let broker = TestBroker::start();
    let (_owner, ch) = broker.channel().await;
    let q = unique("excl");
    ch.queue_declare(q.as_str().into(), exclusive(), FieldTable::default())
        .await
        .unwrap();
    let expected = format!(
        "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{q}' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
    );
    let other = broker.connect().await;

    let och = other.create_channel().await.unwrap();
    let (code, text) = expect_amqp_error(
        och.queue_declare(q.as_str().into(), exclusive(), FieldTable::default())
            .await,
    );
    assert_eq!((code, text.as_str()), (405, expected.as_str()), "declare");

    let och = other.create_channel().await.unwrap();
    let (code, text) = expect_amqp_error(
        och.queue_declare(
            q.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(
        (code, text.as_str()),
        (405, expected.as_str()),
        "non-exclusive declare"
    );

    let och = other.create_channel().await.unwrap();
    let (code, text) = expect_amqp_error(
        och.basic_consume(
            q.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!((code, text.as_str()), (405, expected.as_str()), "consume");

    let och = other.create_channel().await.unwrap();
    let (code, text) = expect_amqp_error(
        och.basic_get(q.as_str().into(), BasicGetOptions::default())
            .await,
    );
    assert_eq!((code, text.as_str()), (405, expected.as_str()), "get");

    let och = other.create_channel().await.unwrap();
    let (code, _) = expect_amqp_error(
        och.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await,
    );
    assert_eq!(code, 405, "delete");

    let och = other.create_channel().await.unwrap();
    let (code, _) = expect_amqp_error(
        och.queue_purge(q.as_str().into(), QueuePurgeOptions::default())
            .await,
    );
    assert_eq!(code, 405, "purge");

    // Publishing to it from elsewhere is fine.
    let och = other.create_channel().await.unwrap();
    publish(&och, "", &q, b"from-other").await;
    sync(&och).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["from-other"]);
}

#[tokio::test]
async fn passive_declare_of_exclusive_queue_from_other_connection_is_405() {
    let broker = TestBroker::start();
    let (_owner, ch) = broker.channel().await;
    let q = unique("excl-passive");
    ch.queue_declare(q.as_str().into(), exclusive(), FieldTable::default())
        .await
        .unwrap();
    let (_other, och) = broker.channel().await;
    let (code, _) = expect_amqp_error(
        och.queue_declare(q.as_str().into(), passive(), FieldTable::default())
            .await,
    );
    assert_eq!(code, 405);
}

#[tokio::test]
async fn exclusive_queue_is_deleted_when_its_connection_closes() {
    let broker = TestBroker::start();
    let q = unique("excl-gone");
    {
        let (owner, ch) = broker.channel().await;
        ch.queue_declare(q.as_str().into(), exclusive(), FieldTable::default())
            .await
            .unwrap();
        owner.close(200, "bye".into()).await.unwrap();
    }
    let (_conn, ch) = broker.channel().await;
    // Deletion on close is asynchronous in RabbitMQ: poll briefly.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match ch
            .queue_declare(q.as_str().into(), passive(), FieldTable::default())
            .await
        {
            Err(e) => {
                assert_eq!(amqp_error(&e).map(|(c, _)| c), Some(404), "{e:?}");
                break;
            }
            Ok(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "exclusive queue outlived its connection"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn auto_delete_queue_is_deleted_after_last_consumer_cancels() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = unique("auto-del-q");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    // No consumer yet: it stays.
    sync(&ch).await;
    ch.queue_declare(q.as_str().into(), passive(), FieldTable::default())
        .await
        .expect("still there");
    let c1 = consume(&ch, &q).await;
    let c2 = consume(&ch, &q).await;
    ch.basic_cancel(c1.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    let info = ch
        .queue_declare(q.as_str().into(), passive(), FieldTable::default())
        .await
        .expect("one consumer left");
    assert_eq!(info.consumer_count(), 1);
    ch.basic_cancel(c2.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    let ch2 = conn.create_channel().await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match ch2
            .queue_declare(q.as_str().into(), passive(), FieldTable::default())
            .await
        {
            Err(e) => {
                assert_eq!(amqp_error(&e).map(|(c, _)| c), Some(404), "{e:?}");
                break;
            }
            Ok(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "auto-delete queue outlived its last consumer"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn auto_delete_queue_is_deleted_when_consumer_channel_closes() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = unique("auto-del-chclose");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let cch = conn.create_channel().await.unwrap();
    let _c = consume(&cch, &q).await;
    cch.close(200, "bye".into()).await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match ch
            .queue_declare(q.as_str().into(), passive(), FieldTable::default())
            .await
        {
            Err(e) => {
                assert_eq!(amqp_error(&e).map(|(c, _)| c), Some(404), "{e:?}");
                break;
            }
            Ok(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "auto-delete queue outlived its consumer's channel"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn queue_bind_and_unbind_control_routing() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("bind-x");
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Direct,
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = ch
        .queue_declare("".into(), exclusive(), FieldTable::default())
        .await
        .unwrap();
    let q = q.name().as_str().to_string();
    ch.queue_bind(
        q.as_str().into(),
        x.as_str().into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, &x, "k", b"bound").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["bound"]);
    ch.queue_unbind(
        q.as_str().into(),
        x.as_str().into(),
        "k".into(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    publish(&ch, &x, "k", b"unbound").await;
    sync(&ch).await;
    assert!(drain_bodies(&ch, &q).await.is_empty());
    // Unbinding a binding that does not exist is not an error.
    ch.queue_unbind(
        q.as_str().into(),
        x.as_str().into(),
        "never-bound".into(),
        FieldTable::default(),
    )
    .await
    .expect("unbind of a missing binding");
    ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn binding_arguments_distinguish_bindings() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let x = unique("bind-args");
    ch.exchange_declare(
        x.as_str().into(),
        ExchangeKind::Headers,
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    let q = ch
        .queue_declare("".into(), exclusive(), FieldTable::default())
        .await
        .unwrap();
    let q = q.name().as_str().to_string();
    let a = table(vec![("h", long_str("a"))]);
    let b = table(vec![("h", long_str("b"))]);
    for args in [&a, &b] {
        ch.queue_bind(
            q.as_str().into(),
            x.as_str().into(),
            "".into(),
            Default::default(),
            args.clone(),
        )
        .await
        .unwrap();
    }
    // Removing the "a" binding leaves "b" in place.
    ch.queue_unbind(q.as_str().into(), x.as_str().into(), "".into(), a.clone())
        .await
        .unwrap();
    for h in ["a", "b"] {
        publish_props(
            &ch,
            &x,
            "",
            h.as_bytes(),
            lapin::BasicProperties::default().with_headers(table(vec![("h", long_str(h))])),
        )
        .await;
    }
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["b"]);
    ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn binding_to_missing_exchange_is_404() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = ch
        .queue_declare("".into(), exclusive(), FieldTable::default())
        .await
        .unwrap();
    let x = unique("no-x");
    let (code, text) = expect_amqp_error(
        ch.queue_bind(
            q.name().clone(),
            x.as_str().into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 404);
    assert_eq!(text, format!("NOT_FOUND - no exchange '{x}' in vhost '/'"));
}

#[tokio::test]
async fn binding_missing_queue_is_404() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = unique("no-q");
    let (code, text) = expect_amqp_error(
        ch.queue_bind(
            q.as_str().into(),
            "amq.direct".into(),
            "k".into(),
            Default::default(),
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 404);
    assert_eq!(text, format!("NOT_FOUND - no queue '{q}' in vhost '/'"));
}

#[tokio::test]
async fn purge_returns_count_and_empties_ready_messages() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = ch
        .queue_declare("".into(), exclusive(), FieldTable::default())
        .await
        .unwrap();
    let q = q.name().as_str().to_string();
    for i in 0..5 {
        publish(&ch, "", &q, format!("{i}").as_bytes()).await;
    }
    sync(&ch).await;
    let purged = ch
        .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
        .await
        .unwrap();
    assert_eq!(purged, 5);
    assert_eq!(message_count(&ch, &q).await, 0);
    let purged = ch
        .queue_purge(q.as_str().into(), QueuePurgeOptions::default())
        .await
        .unwrap();
    assert_eq!(purged, 0);
}

#[tokio::test]
async fn purge_leaves_unacked_messages_which_return_on_requeue() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = ch
        .queue_declare("".into(), exclusive(), FieldTable::default())
        .await
        .unwrap();
    let q = q.name().as_str().to_string();
    publish(&ch, "", &q, b"held").await;
    publish(&ch, "", &q, b"ready").await;
    sync(&ch).await;
    let held = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(held.delivery.data, b"held");
    let ch2 = conn.create_channel().await.unwrap();
    assert_eq!(
        ch2.queue_purge(q.as_str().into(), QueuePurgeOptions::default())
            .await
            .unwrap(),
        1
    );
    ch.close(200, "requeue".into()).await.unwrap();
    wait_message_count(&ch2, &q, 1).await;
    assert_eq!(drain_bodies(&ch2, &q).await, vec!["held"]);
}

#[tokio::test]
async fn purge_of_missing_queue_is_404() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = unique("no-q");
    let (code, text) = expect_amqp_error(
        ch.queue_purge(q.as_str().into(), QueuePurgeOptions::default())
            .await,
    );
    assert_eq!(code, 404);
    assert_eq!(text, format!("NOT_FOUND - no queue '{q}' in vhost '/'"));
}

#[tokio::test]
async fn delete_returns_message_count_and_removes_queue() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = unique("del-q");
    declare_queue(&ch, &q).await;
    for _ in 0..4 {
        publish(&ch, "", &q, b"m").await;
    }
    sync(&ch).await;
    let count = ch
        .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(count, 4);
    let (code, _) = expect_amqp_error(
        ch.queue_declare(q.as_str().into(), passive(), FieldTable::default())
            .await,
    );
    assert_eq!(code, 404);
}

#[tokio::test]
async fn deleting_missing_queue_is_ok_with_zero_count() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let count = ch
        .queue_delete(
            unique("never-q").as_str().into(),
            QueueDeleteOptions::default(),
        )
        .await
        .expect("RabbitMQ 3.x treats queue.delete of a missing queue as success");
    assert_eq!(count, 0);
}

#[tokio::test]
async fn delete_if_unused_with_consumer_is_406() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = unique("in-use-q");
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions {
            auto_delete: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    let _consumer = consume(&ch, &q).await;
    let ch2 = conn.create_channel().await.unwrap();
    let (code, text) = expect_amqp_error(
        ch2.queue_delete(
            q.as_str().into(),
            QueueDeleteOptions {
                if_unused: true,
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(code, 406);
    assert_eq!(
        text,
        format!("PRECONDITION_FAILED - queue '{q}' in vhost '/' in use")
    );
}

#[tokio::test]
async fn delete_if_empty_with_messages_is_406() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = ch
        .queue_declare("".into(), exclusive(), FieldTable::default())
        .await
        .unwrap();
    let q = q.name().as_str().to_string();
    publish(&ch, "", &q, b"m").await;
    sync(&ch).await;
    let (code, text) = expect_amqp_error(
        ch.queue_delete(
            q.as_str().into(),
            QueueDeleteOptions {
                if_empty: true,
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(code, 406);
    assert_eq!(
        text,
        format!("PRECONDITION_FAILED - queue '{q}' in vhost '/' not empty")
    );
}

#[tokio::test]
async fn delete_if_unused_and_if_empty_succeed_on_idle_empty_queue() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = unique("idle-q");
    declare_queue(&ch, &q).await;
    let n = ch
        .queue_delete(
            q.as_str().into(),
            QueueDeleteOptions {
                if_unused: true,
                if_empty: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
    let (code, _) = expect_amqp_error(
        ch.queue_declare(q.as_str().into(), passive(), FieldTable::default())
            .await,
    );
    assert_eq!(code, 404);
}

#[tokio::test]
async fn deleting_queue_cancels_its_consumers() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = unique("del-with-consumer");
    declare_queue(&ch, &q).await;
    let mut consumer = consume(&ch, &q).await;
    let ch2 = conn.create_channel().await.unwrap();
    delete_queue(&ch2, &q).await;
    // consumer_cancel_notify: the broker sends basic.cancel and lapin ends
    // the consumer stream.
    match tokio::time::timeout(WAIT, futures_lite::StreamExt::next(&mut consumer)).await {
        Ok(None) => {}
        other => panic!("consumer must be cancelled by the broker, got {other:?}"),
    }
    // The consumer's channel stays open.
    sync(&ch).await;
    assert!(ch.status().connected());
}

#[tokio::test]
async fn queue_names_may_contain_any_utf8() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = unique("ключ/队列 with spaces.#*");
    ch.queue_declare(q.as_str().into(), exclusive(), FieldTable::default())
        .await
        .unwrap();
    publish(&ch, "", &q, b"m").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["m"]);
}

#[tokio::test]
async fn exclusive_queue_is_usable_from_other_channels_of_its_connection() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = unique("excl-same-conn");
    ch.queue_declare(q.as_str().into(), exclusive(), FieldTable::default())
        .await
        .unwrap();
    let ch2 = conn.create_channel().await.unwrap();
    ch2.queue_declare(q.as_str().into(), exclusive(), FieldTable::default())
        .await
        .expect("redeclare from the owning connection");
    let mut consumer = consume(&ch2, &q).await;
    publish(&ch, "", &q, b"m").await;
    assert_eq!(next_delivery(&mut consumer).await.data, b"m");
}
