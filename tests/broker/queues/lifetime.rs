//! Queues that belong to something: exclusive queues (locked to their connection, deleted with
//! it) and auto-delete queues (deleted with their last consumer).

use amq_protocol::types::FieldTable;
use lapin::options::{BasicCancelOptions, QueueDeleteOptions};

use crate::common::*;

#[tokio::test]
async fn exclusive_queue_is_locked_for_other_connections() {
    let broker = TestBroker::start();
    let (_owner, ch) = broker.channel().await;
    let q = unique("excl");
    declare_exclusive_queue(&ch, &q).await;
    let locked = resource_locked(format!(
        "cannot obtain exclusive access to locked queue '{q}' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration."
    ));
    let other = broker.connect().await;

    let och = other.create_channel().await.unwrap();
    let refused = expect_amqp_error(
        och.queue_declare(q.as_str().into(), exclusive(), FieldTable::default())
            .await,
    );
    assert_eq!(refused, locked, "declare");

    let och = other.create_channel().await.unwrap();
    let refused = declare_queue_error(&och, &q, FieldTable::default()).await;
    assert_eq!(refused, locked, "non-exclusive declare");

    let och = other.create_channel().await.unwrap();
    let refused = consume_error(&och, &q, Default::default(), FieldTable::default()).await;
    assert_eq!(refused, locked, "consume");

    let och = other.create_channel().await.unwrap();
    assert_eq!(get_error(&och, &q).await, locked, "get");

    let och = other.create_channel().await.unwrap();
    let (code, _) = expect_amqp_error(
        och.queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await,
    );
    assert_eq!(code, 405, "delete");

    let och = other.create_channel().await.unwrap();
    let (code, _) = purge_error(&och, &q).await;
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
    declare_exclusive_queue(&ch, &q).await;
    let (_other, och) = broker.channel().await;
    let (code, _) = expect_amqp_error(declare_queue_passive(&och, &q).await);
    assert_eq!(code, 405);
}

#[tokio::test]
async fn exclusive_queue_is_usable_from_other_channels_of_its_connection() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = unique("excl-same-conn");
    declare_exclusive_queue(&ch, &q).await;
    let ch2 = conn.create_channel().await.unwrap();
    // Redeclaring it from the owning connection is allowed.
    declare_exclusive_queue(&ch2, &q).await;
    let mut consumer = consume_from(&ch2, &q).await;
    publish(&ch, "", &q, b"m").await;
    assert_eq!(next_delivery(&mut consumer).await.data, b"m");
}

#[tokio::test]
async fn exclusive_queue_is_deleted_when_its_connection_closes() {
    let broker = TestBroker::start();
    let q = unique("excl-gone");
    {
        let (owner, ch) = broker.channel().await;
        declare_exclusive_queue(&ch, &q).await;
        owner.close(200, "bye".into()).await.unwrap();
    }
    let (_conn, ch) = broker.channel().await;
    // Deletion on close is asynchronous in RabbitMQ: poll briefly.
    wait_until_queue_is_gone(&ch, &q, "exclusive queue outlived its connection").await;
}

#[tokio::test]
async fn auto_delete_queue_is_deleted_after_last_consumer_cancels() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = unique("auto-del-q");
    declare_auto_delete_queue(&ch, &q).await;
    // No consumer yet: it stays.
    sync(&ch).await;
    declare_queue_passive(&ch, &q).await.expect("still there");
    let c1 = consume_from(&ch, &q).await;
    let c2 = consume_from(&ch, &q).await;
    ch.basic_cancel(c1.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    let info = declare_queue_passive(&ch, &q)
        .await
        .expect("one consumer left");
    assert_eq!(info.consumer_count(), 1);
    ch.basic_cancel(c2.tag(), BasicCancelOptions::default())
        .await
        .unwrap();
    let ch2 = conn.create_channel().await.unwrap();
    wait_until_queue_is_gone(&ch2, &q, "auto-delete queue outlived its last consumer").await;
}

#[tokio::test]
async fn auto_delete_queue_is_deleted_when_consumer_channel_closes() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = unique("auto-del-chclose");
    declare_auto_delete_queue(&ch, &q).await;
    let cch = conn.create_channel().await.unwrap();
    let _c = consume_from(&cch, &q).await;
    cch.close(200, "bye".into()).await.unwrap();
    wait_until_queue_is_gone(&ch, &q, "auto-delete queue outlived its consumer's channel").await;
}
