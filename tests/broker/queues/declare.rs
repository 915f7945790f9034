//! queue.declare: server-named queues, passive declares, the counts in declare-ok,
//! equivalence of a redeclare, reserved and unusual names.

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::options::QueueDeclareOptions;

use crate::common::*;

#[tokio::test]
async fn server_named_queue_gets_amq_gen_prefix() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q1 = declare_queue_as(&ch, "", exclusive(), FieldTable::default()).await;
    let q2 = declare_queue_as(&ch, "", exclusive(), FieldTable::default()).await;
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
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("missing-q");
    assert_eq!(
        expect_amqp_error(declare_queue_passive(&ch, &q).await),
        no_queue(&q)
    );
}

#[tokio::test]
async fn declare_ok_reports_message_and_consumer_counts() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = unique("counts");
    declare_auto_delete_queue(&ch, &q).await;
    for i in 0..3 {
        publish(&ch, "", &q, format!("{i}").as_bytes()).await;
    }
    sync(&ch).await;
    let info = declare_queue_passive(&ch, &q).await.unwrap();
    assert_eq!((info.message_count(), info.consumer_count()), (3, 0));
    // A consumer with prefetch 1 holds one message unacked.
    let cch = conn.create_channel().await.unwrap();
    cch.basic_qos(1, Default::default()).await.unwrap();
    let mut consumer = consume_from(&cch, &q).await;
    let _d = next_delivery(&mut consumer).await;
    wait_message_count(&ch, &q, 2).await;
    // A non-passive redeclare reports counts too; unacked messages are not counted.
    let info = declare_auto_delete_queue(&ch, &q).await;
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
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = unique(prefix);
    declare_queue_as(&ch, &q, first.0, first.1).await;
    assert_eq!(
        expect_amqp_error(
            ch.queue_declare(q.as_str().into(), second.0, second.1)
                .await,
        ),
        inequivalent_arg("queue", &q, arg, received, current)
    );
    let ch = conn.create_channel().await.unwrap();
    delete_queue(&ch, &q).await;
}

#[tokio::test]
async fn redeclaring_queue_with_other_durability_is_406_inequivalent_arg() {
    assert_redeclare_is_inequivalent(
        "equiv-durable-q",
        (QueueDeclareOptions::default(), FieldTable::default()),
        (durable(), FieldTable::default()),
        "durable",
        "true",
        "false",
    )
    .await;
}

#[tokio::test]
async fn redeclaring_queue_with_other_auto_delete_is_406_inequivalent_arg() {
    assert_redeclare_is_inequivalent(
        "equiv-ad-q",
        (QueueDeclareOptions::default(), FieldTable::default()),
        (auto_delete(), FieldTable::default()),
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
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("same-q");
    let args = table(vec![("x-max-length", AMQPValue::LongInt(10))]);
    declare_queue_as(&ch, &q, exclusive(), args.clone()).await;
    // The second declare must succeed just the same.
    declare_queue_as(&ch, &q, exclusive(), args).await;
}

#[tokio::test]
async fn declaring_queue_with_amq_prefix_is_403() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = format!("amq.{}", unique("q"));
    assert_eq!(
        declare_queue_error(&ch, &q, FieldTable::default()).await,
        access_refused(format!("queue name '{q}' contains reserved prefix 'amq.*'"))
    );
}

#[tokio::test]
async fn queue_names_may_contain_any_utf8() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("ключ/队列 with spaces.#*");
    declare_exclusive_queue(&ch, &q).await;
    publish(&ch, "", &q, b"m").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["m"]);
}
