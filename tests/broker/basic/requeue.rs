//! Unacked messages go back to their queue, flagged redelivered, when their channel or
//! connection closes or the socket just drops.

use amq_protocol::protocol::{AMQPClass, basic};
use lapin::Connection;
use lapin::options::BasicRejectOptions;

use super::shared_queue;
use crate::common::*;

#[tokio::test]
async fn unacked_messages_are_requeued_with_redelivered_on_channel_close() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = shared_queue(&ch, "requeue-ch").await;
    publish_n(&ch, &q, 3).await;
    let cch = conn.create_channel().await.unwrap();
    let mut consumer = consume_from(&cch, &q).await;
    let d0 = next_delivery(&mut consumer).await;
    next_delivery(&mut consumer).await;
    next_delivery(&mut consumer).await;
    d0.ack(Default::default()).await.unwrap();
    sync(&cch).await;
    cch.close(200, "bye".into()).await.unwrap();
    wait_message_count(&ch, &q, 2).await;
    let m1 = get_message(&ch, &q).await.unwrap();
    let m2 = get_message(&ch, &q).await.unwrap();
    assert_eq!(
        (body_str(&m1.delivery), body_str(&m2.delivery)),
        ("m1".into(), "m2".into())
    );
    assert!(m1.delivery.redelivered && m2.delivery.redelivered);
}

#[tokio::test]
async fn unacked_messages_are_requeued_with_redelivered_on_connection_close() {
    let (broker, _conn, ch) = broker_with_channel().await;
    let q = shared_queue(&ch, "requeue-conn").await;
    publish_n(&ch, &q, 2).await;
    {
        let other: Connection = broker.connect().await;
        let och = other.create_channel().await.unwrap();
        let mut consumer = consume_from(&och, &q).await;
        next_delivery(&mut consumer).await;
        next_delivery(&mut consumer).await;
        other.close(200, "bye".into()).await.unwrap();
    }
    wait_message_count(&ch, &q, 2).await;
    let mut consumer = consume_no_ack(&ch, &q).await;
    for i in 0..2 {
        let d = next_delivery(&mut consumer).await;
        assert_eq!(body_str(&d), format!("m{i}"));
        assert!(d.redelivered);
    }
}

#[tokio::test]
async fn unacked_messages_are_requeued_when_the_socket_drops() {
    let (broker, _conn, ch) = broker_with_channel().await;
    let q = shared_queue(&ch, "requeue-drop").await;
    publish_n(&ch, &q, 1).await;
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    let (_, reply) = raw.rpc(1, basic_get_method(&q, false)).await;
    assert!(
        matches!(reply, AMQPClass::Basic(basic::AMQPMethod::GetOk(_))),
        "{reply:?}"
    );
    drop(raw); // no connection.close: just the TCP socket going away
    wait_message_count(&ch, &q, 1).await;
    let m = get_message(&ch, &q).await.unwrap();
    assert!(m.delivery.redelivered);
}

#[tokio::test]
async fn requeued_message_goes_to_another_consumer() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let q = shared_queue(&ch, "requeue-other").await;
    let ch1 = conn.create_channel().await.unwrap();
    ch1.basic_qos(1, Default::default()).await.unwrap();
    let mut c1 = consume_from(&ch1, &q).await;
    publish_n(&ch, &q, 1).await;
    let d = next_delivery(&mut c1).await;
    assert!(!d.redelivered);
    let ch2 = conn.create_channel().await.unwrap();
    let mut c2 = consume_from(&ch2, &q).await;
    ch1.close(200, "bye".into()).await.unwrap();
    let d2 = next_delivery(&mut c2).await;
    assert_eq!(body_str(&d2), "m0");
    assert!(d2.redelivered);
}

/// A channel closing with deliveries from two queues interleaved puts each queue's back in its
/// own order, merged with what was requeued before them (one requeue per queue, not per
/// delivery).
#[tokio::test]
async fn interleaved_deliveries_from_two_queues_go_back_in_order() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let qa = shared_queue(&ch, "requeue-interleaved-a").await;
    let qb = shared_queue(&ch, "requeue-interleaved-b").await;
    publish_n(&ch, &qa, 4).await;
    publish_n(&ch, &qb, 4).await;
    let getter = conn.create_channel().await.unwrap();
    let mut firsts = Vec::new();
    for i in 0..3 {
        for q in [&qa, &qb] {
            let m = get_message(&getter, q).await.expect("a message");
            assert_eq!(body_str(&m.delivery), format!("m{i}"));
            if i == 0 {
                firsts.push(m);
            }
        }
    }
    // m0 of each goes back first: the close then requeues m1 and m2 behind it.
    for m in firsts {
        m.delivery
            .reject(BasicRejectOptions { requeue: true })
            .await
            .unwrap();
    }
    sync(&getter).await;
    getter.close(200, "bye".into()).await.unwrap();
    for q in [&qa, &qb] {
        wait_message_count(&ch, q, 4).await;
        assert_eq!(drain_bodies(&ch, q).await, vec!["m0", "m1", "m2", "m3"]);
    }
}
