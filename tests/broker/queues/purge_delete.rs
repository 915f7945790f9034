//! queue.purge and queue.delete: counts, unacked messages, if-unused / if-empty, and the
//! consumers of a deleted queue.

use lapin::{Channel, options::QueueDeleteOptions};

use crate::common::*;

/// queue.delete with the given conditions: the number of messages deleted, or the error.
async fn delete_if(ch: &Channel, q: &str, if_unused: bool, if_empty: bool) -> lapin::Result<u32> {
    let options = QueueDeleteOptions {
        if_unused,
        if_empty,
        ..Default::default()
    };
    ch.queue_delete(q.into(), options).await
}

#[tokio::test]
async fn purge_returns_count_and_empties_ready_messages() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    for i in 0..5 {
        publish(&ch, "", &q, format!("{i}").as_bytes()).await;
    }
    sync(&ch).await;
    assert_eq!(purge_queue(&ch, &q).await, 5);
    assert_eq!(message_count(&ch, &q).await, 0);
    assert_eq!(purge_queue(&ch, &q).await, 0);
}

#[tokio::test]
async fn purge_leaves_unacked_messages_which_return_on_requeue() {
    let (_broker, conn, ch, q) = broker_with_tmp_queue().await;
    publish(&ch, "", &q, b"held").await;
    publish(&ch, "", &q, b"ready").await;
    sync(&ch).await;
    let held = get_message(&ch, &q).await.expect("a message");
    assert_eq!(held.delivery.data, b"held");
    let ch2 = conn.create_channel().await.unwrap();
    assert_eq!(purge_queue(&ch2, &q).await, 1);
    ch.close(200, "requeue".into()).await.unwrap();
    wait_message_count(&ch2, &q, 1).await;
    assert_eq!(drain_bodies(&ch2, &q).await, vec!["held"]);
}

#[tokio::test]
async fn purge_of_missing_queue_is_404() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("no-q");
    assert_eq!(purge_error(&ch, &q).await, no_queue(&q));
}

#[tokio::test]
async fn delete_returns_message_count_and_removes_queue() {
    let (_broker, _conn, ch, q) = broker_with_queue("del-q").await;
    for _ in 0..4 {
        publish(&ch, "", &q, b"m").await;
    }
    sync(&ch).await;
    assert_eq!(delete_queue(&ch, &q).await, 4);
    let (code, _) = expect_amqp_error(declare_queue_passive(&ch, &q).await);
    assert_eq!(code, 404);
}

#[tokio::test]
async fn deleting_missing_queue_is_ok_with_zero_count() {
    let (_broker, _conn, ch) = broker_with_channel().await;
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
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = unique("in-use-q");
    declare_auto_delete_queue(&ch, &q).await;
    let _consumer = consume_from(&ch, &q).await;
    let ch2 = conn.create_channel().await.unwrap();
    assert_eq!(
        expect_amqp_error(delete_if(&ch2, &q, true, false).await),
        precondition_failed(format!("queue '{q}' in vhost '/' in use"))
    );
}

#[tokio::test]
async fn delete_if_empty_with_messages_is_406() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    publish(&ch, "", &q, b"m").await;
    sync(&ch).await;
    assert_eq!(
        expect_amqp_error(delete_if(&ch, &q, false, true).await),
        precondition_failed(format!("queue '{q}' in vhost '/' not empty"))
    );
}

#[tokio::test]
async fn delete_if_unused_and_if_empty_succeed_on_idle_empty_queue() {
    let (_broker, _conn, ch, q) = broker_with_queue("idle-q").await;
    assert_eq!(delete_if(&ch, &q, true, true).await.unwrap(), 0);
    let (code, _) = expect_amqp_error(declare_queue_passive(&ch, &q).await);
    assert_eq!(code, 404);
}

#[tokio::test]
async fn deleting_queue_cancels_its_consumers() {
    let (_broker, conn, ch, q) = broker_with_queue("del-with-consumer").await;
    let mut consumer = consume_from(&ch, &q).await;
    let ch2 = conn.create_channel().await.unwrap();
    delete_queue(&ch2, &q).await;
    // consumer_cancel_notify: the broker sends basic.cancel and lapin ends
    // the consumer stream.
    assert_consumer_ends(&mut consumer, "consumer must be cancelled by the broker").await;
    // The consumer's channel stays open.
    sync(&ch).await;
    assert!(ch.status().connected());
}
