//! What the broker's answers promise: once a publisher confirm, a tx.commit-ok or a
//! queue.declare-ok is in, `kill -9` right after loses nothing it covered.

use lapin::{Channel, ExchangeKind};

use crate::common::*;
use crate::support::*;

#[tokio::test]
async fn confirmed_messages_survive_immediate_kill9() {
    let mut node = Node::start();
    let x = unique("conf-fanout");
    let q1 = unique("conf-q1");
    let q2 = unique("conf-q2");
    let expected = numbered("c", 500);
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_exchange(&ch, &x, ExchangeKind::Fanout).await;
        declare_durable_queue(&ch, &q1).await;
        declare_durable_queue(&ch, &q2).await;
        bind_queue(&ch, &q1, &x, "").await;
        bind_queue(&ch, &q2, &x, "").await;
        // Pipelined: 500 in flight, then every confirm.
        publish_all_confirmed_to(&ch, &x, "", &expected).await;
        // The last confirm is in: crash now.
        node.stop(Stop::Kill);
    }
    node.restart_after_stop();
    // One at a time: publish, confirm, crash; three times.
    let mut singles = Vec::new();
    for i in 0..3 {
        let body = format!("single-{i}");
        let (_conn, ch) = node.confirm_channel().await;
        publish_acked(&ch, "", &q1, body.as_bytes(), persistent()).await;
        singles.push(body);
        node.stop(Stop::Kill);
        node.restart_after_stop();
    }
    let (_conn, ch) = node.channel().await;
    let mut want1 = expected.clone();
    want1.extend(singles);
    assert_eq!(
        drain_bodies(&ch, &q1).await,
        want1,
        "confirmed messages lost by kill -9"
    );
    assert_eq!(
        drain_bodies(&ch, &q2).await,
        expected,
        "confirmed messages lost by kill -9"
    );
}

/// Fan-out to two durable queues while a consumer acks the first queue's copies as fast as
/// they come: an ack may reach the store before the publisher has enqueued the second copy.
/// Every confirmed message must still be in the second queue after kill -9 (the publisher
/// pins the stored body until both queues have it).
#[tokio::test]
async fn a_fanned_out_message_acked_in_one_queue_survives_kill9_in_the_other() {
    let mut node = Node::start();
    let x = unique("pin-fanout");
    let fast = unique("pin-fast");
    let slow = unique("pin-slow");
    let expected = numbered("f", 2000);
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_exchange(&ch, &x, ExchangeKind::Fanout).await;
        declare_durable_queue(&ch, &fast).await;
        declare_durable_queue(&ch, &slow).await;
        bind_queue(&ch, &fast, &x, "").await;
        bind_queue(&ch, &slow, &x, "").await;
        let (_consumer_conn, consumer_ch) = node.channel().await;
        let mut deliveries = consumer_ch
            .basic_consume(
                fast.as_str().into(),
                "acks-at-once".into(),
                Default::default(),
                Default::default(),
            )
            .await
            .expect("basic.consume");
        let acker = tokio::spawn(async move {
            use futures_lite::StreamExt;
            let mut acked = 0;
            while acked < 2000 {
                let d = deliveries
                    .next()
                    .await
                    .expect("a delivery")
                    .expect("delivery");
                d.ack(Default::default()).await.expect("basic.ack");
                acked += 1;
            }
        });
        publish_all_confirmed_to(&ch, &x, "", &expected).await;
        tokio::time::timeout(WAIT, acker)
            .await
            .expect("the consumer acked every copy in time")
            .expect("the consumer task");
        node.stop(Stop::Kill);
    }
    node.restart_after_stop();
    let (_conn, ch) = node.channel().await;
    // (Acks are not made durable before they are answered: some of the first queue's may
    // come back, as in RabbitMQ.)
    assert_eq!(
        drain_bodies(&ch, &slow).await,
        expected,
        "confirmed messages lost"
    );
}

#[tokio::test]
async fn committed_transaction_survives_immediate_kill9() {
    let mut node = Node::start();
    let q = unique("tx-q");
    let committed = numbered("c", 50);
    let publish_all = async |ch: &Channel, bodies: &[String]| {
        for body in bodies {
            publish_props(ch, "", &q, body.as_bytes(), persistent()).await;
        }
    };
    {
        let (_conn, ch) = node.channel().await;
        declare_durable_queue(&ch, &q).await;
        ch.tx_select().await.expect("tx.select");
        publish_all(&ch, &numbered("rolled-back", 3)).await;
        ch.tx_rollback().await.expect("tx.rollback");
        publish_all(&ch, &committed).await;
        ch.tx_commit().await.expect("tx.commit");
        // Published in the next transaction, never committed.
        publish_all(&ch, &numbered("uncommitted", 5)).await;
        sync(&ch).await;
        node.stop(Stop::Kill);
    }
    node.restart_after_stop();
    let (_conn, ch) = node.channel().await;
    assert_eq!(
        drain_bodies(&ch, &q).await,
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
        declare_durable_queue(&ch, &q).await;
        publish_acked(&ch, "", &q, b"first", persistent()).await;
        node.stop(Stop::Kill);
    }
    node.restart_after_stop();
    let (_conn, ch) = node.channel().await;
    assert_eq!(drain_bodies(&ch, &q).await, ["first"]);
}
