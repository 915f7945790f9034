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
