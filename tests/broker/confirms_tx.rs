//! Publisher confirms (confirm.select) and transactions (tx.*).

use std::collections::BTreeSet;
use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic, confirm, tx};
use amq_protocol::types::FieldTable;
use lapin::{
    BasicProperties, Channel, Connection,
    options::{BasicAckOptions, ConfirmSelectOptions, QueueDeclareOptions},
};

use crate::common::*;

fn confirm_select(nowait: bool) -> AMQPClass {
    AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait }))
}

fn tx_method(m: tx::AMQPMethod) -> AMQPClass {
    AMQPClass::Tx(m)
}

/// tx.select on channel 1 of a raw client; its select-ok must come back.
async fn tx_select_on_1(raw: &mut RawClient) {
    let (_, ok) = raw
        .rpc(1, tx_method(tx::AMQPMethod::Select(tx::Select {})))
        .await;
    assert!(
        matches!(ok, AMQPClass::Tx(tx::AMQPMethod::SelectOk(_))),
        "{ok:?}"
    );
}

// --- confirms ----------------------------------------------------------------------

#[tokio::test]
async fn confirm_select_makes_publishes_acked() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let confirmation = publish_confirmed(&ch, "", &q, b"m", BasicProperties::default()).await;
    assert!(confirmation.is_ack());
    // An unroutable (non-mandatory) message is confirmed too.
    let nowhere = unique("nowhere");
    let confirmation = publish_confirmed(&ch, "", &nowhere, b"m", BasicProperties::default()).await;
    assert!(confirmation.is_ack());
}

#[tokio::test]
async fn confirms_cover_every_publish_in_order_with_sequence_numbers_from_one() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    let (_, ok) = raw.rpc(1, confirm_select(false)).await;
    assert!(
        matches!(ok, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_))),
        "{ok:?}"
    );
    const N: u64 = 200;
    for i in 0..N {
        raw.publish(
            1,
            "",
            "nobody-home",
            false,
            false,
            format!("{i}").as_bytes(),
        )
        .await;
    }
    let mut confirmed = BTreeSet::new();
    let mut last = 0u64;
    while (confirmed.len() as u64) < N {
        match raw.recv_method().await {
            (1, AMQPClass::Basic(basic::AMQPMethod::Ack(ack))) => {
                assert!(
                    ack.delivery_tag > last,
                    "confirm tags must increase: {} after {last}",
                    ack.delivery_tag
                );
                assert!(
                    ack.delivery_tag <= N,
                    "confirm for unknown sequence number {}",
                    ack.delivery_tag
                );
                let from = if ack.multiple {
                    last + 1
                } else {
                    ack.delivery_tag
                };
                for t in from..=ack.delivery_tag {
                    assert!(confirmed.insert(t), "sequence number {t} confirmed twice");
                }
                last = ack.delivery_tag;
            }
            other => panic!("expected basic.ack, got {other:?}"),
        }
    }
    assert_eq!(confirmed, (1..=N).collect::<BTreeSet<_>>());
    // Nothing more arrives.
    match raw.recv_within(Duration::from_millis(300)).await {
        Recv::Timeout => {}
        other => panic!("unexpected extra frame {other:?}"),
    }
}

#[tokio::test]
async fn wait_for_confirms_resolves_after_many_publishes() {
    let (_broker, _conn, ch, q) = broker_with_tmp_queue().await;
    ch.confirm_select(Default::default()).await.unwrap();
    for i in 0..500 {
        publish(&ch, "", &q, format!("{i}").as_bytes()).await;
    }
    let returned = tokio::time::timeout(WAIT, ch.wait_for_confirms())
        .await
        .expect("confirms in time")
        .unwrap();
    assert!(returned.is_empty());
    assert_eq!(message_count(&ch, &q).await, 500);
}

#[tokio::test]
async fn confirm_select_nowait_enables_confirms_without_reply() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    raw.send_method(1, confirm_select(true)).await;
    raw.publish(1, "", "nobody-home", false, false, b"x").await;
    match raw.recv_method().await {
        (1, AMQPClass::Basic(basic::AMQPMethod::Ack(ack))) => {
            assert_eq!(ack.delivery_tag, 1);
        }
        other => panic!("expected basic.ack (and no select-ok), got {other:?}"),
    }
}

#[tokio::test]
async fn confirm_select_twice_is_ok() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    for _ in 0..2 {
        let (_, ok) = raw.rpc(1, confirm_select(false)).await;
        assert!(
            matches!(ok, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_))),
            "{ok:?}"
        );
    }
}

#[tokio::test]
async fn mandatory_unroutable_in_confirm_mode_is_returned_then_acked() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    raw.rpc(1, confirm_select(false)).await;
    raw.publish(1, "", &unique("nobody"), true, false, b"r")
        .await;
    match raw.recv_method().await {
        (1, AMQPClass::Basic(basic::AMQPMethod::Return(r))) => assert_eq!(r.reply_code, 312),
        other => panic!("expected basic.return first, got {other:?}"),
    }
    raw.recv().await; // header
    raw.recv().await; // body
    match raw.recv_method().await {
        (1, AMQPClass::Basic(basic::AMQPMethod::Ack(ack))) => {
            assert_eq!((ack.delivery_tag, ack.multiple), (1, false))
        }
        other => panic!("expected basic.ack after the return, got {other:?}"),
    }
}

#[tokio::test]
async fn persistent_message_to_durable_queue_is_confirmed() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique("durable-confirm");
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    declare_queue_as(&ch, &q, durable, FieldTable::default()).await;
    ch.confirm_select(Default::default()).await.unwrap();
    let persistent = BasicProperties::default().with_delivery_mode(2);
    let c = publish_confirmed(&ch, "", &q, b"persistent", persistent).await;
    assert!(c.is_ack());
    assert_eq!(drain_bodies(&ch, &q).await, vec!["persistent"]);
    delete_queue(&ch, &q).await;
}

#[tokio::test]
async fn confirm_select_on_transactional_channel_is_406() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    ch.tx_select().await.unwrap();
    assert_eq!(
        expect_amqp_error(ch.confirm_select(Default::default()).await),
        precondition_failed("cannot switch from tx to confirm mode")
    );
}

#[tokio::test]
async fn tx_select_on_confirm_channel_is_406() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    assert_eq!(
        expect_amqp_error(ch.tx_select().await),
        precondition_failed("cannot switch from confirm to tx mode")
    );
}

// --- transactions --------------------------------------------------------------------

/// A server-named queue, and a new channel in transaction mode to publish to it.
async fn queue_and_tx_channel(conn: &Connection, ch: &Channel) -> (String, Channel) {
    let q = declare_tmp_queue(ch).await;
    (q, tx_channel(conn).await)
}

/// A new channel on `conn` in transaction mode (tx.select).
async fn tx_channel(conn: &Connection) -> Channel {
    let txch = conn.create_channel().await.unwrap();
    txch.tx_select().await.expect("tx.select");
    txch
}

/// A queue holding one message, and a transactional channel that got it and acked it, not
/// committed yet: (queue, that channel).
async fn uncommitted_ack(conn: &Connection, ch: &Channel, prefix: &str) -> (String, Channel) {
    let q = unique(prefix);
    declare_queue(ch, &q).await;
    publish(ch, "", &q, b"m").await;
    sync(ch).await;
    let txch = tx_channel(conn).await;
    let m = get_message(&txch, &q).await.expect("message");
    txch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())
        .await
        .unwrap();
    (q, txch)
}

#[tokio::test]
async fn tx_publishes_are_invisible_until_commit() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let (q, txch) = queue_and_tx_channel(&conn, &ch).await;
    publish(&txch, "", &q, b"t1").await;
    publish(&txch, "", &q, b"t2").await;
    sync(&txch).await;
    assert_eq!(
        message_count(&ch, &q).await,
        0,
        "uncommitted publishes must not be enqueued"
    );
    txch.tx_commit().await.expect("tx.commit");
    assert_eq!(drain_bodies(&ch, &q).await, vec!["t1", "t2"]);
}

#[tokio::test]
async fn tx_rollback_discards_publishes() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let (q, txch) = queue_and_tx_channel(&conn, &ch).await;
    publish(&txch, "", &q, b"discarded").await;
    txch.tx_rollback().await.expect("tx.rollback");
    publish(&txch, "", &q, b"kept").await;
    txch.tx_commit().await.unwrap();
    assert_eq!(drain_bodies(&ch, &q).await, vec!["kept"]);
}

#[tokio::test]
async fn tx_acks_take_effect_on_commit() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let (q, txch) = uncommitted_ack(&conn, &ch, "tx-ack").await;
    txch.tx_commit().await.unwrap();
    txch.close(200, "bye".into()).await.unwrap();
    assert_eq!(
        message_count(&ch, &q).await,
        0,
        "committed ack removes the message"
    );
    delete_queue(&ch, &q).await;
}

#[tokio::test]
async fn tx_rolled_back_acks_leave_messages_unacked() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let (q, txch) = uncommitted_ack(&conn, &ch, "tx-ack-rb").await;
    txch.tx_rollback().await.unwrap();
    // Still unacked: not ready, and back in the queue once the channel closes.
    assert_eq!(message_count(&ch, &q).await, 0);
    txch.close(200, "bye".into()).await.unwrap();
    wait_message_count(&ch, &q, 1).await;
    let m = get_message_no_ack(&ch, &q).await.unwrap();
    assert!(m.delivery.redelivered);
    delete_queue(&ch, &q).await;
}

#[tokio::test]
async fn tx_channel_can_commit_repeatedly() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let (q, txch) = queue_and_tx_channel(&conn, &ch).await;
    for i in 0..3 {
        publish(&txch, "", &q, format!("{i}").as_bytes()).await;
        txch.tx_commit().await.unwrap();
        assert_eq!(message_count(&ch, &q).await, i + 1);
    }
    // Committing an empty transaction is fine too.
    txch.tx_commit().await.unwrap();
}

#[tokio::test]
async fn tx_commit_without_select_is_406() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    assert_eq!(
        expect_amqp_error(ch.tx_commit().await),
        precondition_failed("channel is not transactional")
    );
}

#[tokio::test]
async fn tx_rollback_without_select_is_406() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    raw.send_method(1, tx_method(tx::AMQPMethod::Rollback(tx::Rollback {})))
        .await;
    assert_eq!(
        raw.expect_channel_close(1).await,
        expected_close(precondition_failed("channel is not transactional"), 90, 30)
    );
}

#[tokio::test]
async fn tx_select_twice_is_ok() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    for _ in 0..2 {
        tx_select_on_1(&mut raw).await;
    }
}

#[tokio::test]
async fn uncommitted_publishes_are_dropped_when_channel_closes() {
    let (_broker, conn, ch) = broker_with_channel().await;
    let (q, txch) = queue_and_tx_channel(&conn, &ch).await;
    publish(&txch, "", &q, b"never").await;
    txch.close(200, "bye".into()).await.unwrap();
    sync(&ch).await;
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn consumer_sees_tx_messages_only_after_commit() {
    let (_broker, conn, ch, q) = broker_with_tmp_queue().await;
    let mut consumer = consume_no_ack(&ch, &q).await;
    let txch = tx_channel(&conn).await;
    publish(&txch, "", &q, b"late").await;
    assert_no_delivery(&mut consumer, Duration::from_millis(300)).await;
    txch.tx_commit().await.unwrap();
    let d = next_delivery(&mut consumer).await;
    assert_eq!(d.data, b"late");
}

#[tokio::test]
async fn tx_mandatory_unroutable_is_returned_on_commit() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    tx_select_on_1(&mut raw).await;
    raw.publish(1, "", &unique("nobody"), true, false, b"r")
        .await;
    match raw.recv_within(Duration::from_millis(300)).await {
        Recv::Timeout => {}
        other => panic!("nothing may happen before commit, got {other:?}"),
    }
    raw.send_method(1, tx_method(tx::AMQPMethod::Commit(tx::Commit {})))
        .await;
    let mut saw_return = false;
    loop {
        match raw.recv().await {
            AMQPFrame::Method(1, AMQPClass::Basic(basic::AMQPMethod::Return(r))) => {
                assert_eq!(r.reply_code, 312);
                saw_return = true;
            }
            AMQPFrame::Method(1, AMQPClass::Tx(tx::AMQPMethod::CommitOk(_))) => break,
            AMQPFrame::Header(..) | AMQPFrame::Body(..) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert!(saw_return, "basic.return must come before tx.commit-ok");
}
