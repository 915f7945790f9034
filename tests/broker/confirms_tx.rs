//! Publisher confirms (confirm.select) and transactions (tx.*).

use std::collections::BTreeSet;
use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic, confirm, tx};
use amq_protocol::types::FieldTable;
use lapin::{
    BasicProperties, Channel,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicGetOptions, ConfirmSelectOptions,
        QueueDeclareOptions,
    },
};

use crate::common::*;

async fn tmp_queue(ch: &Channel) -> String {
    ch.queue_declare(
        "".into(),
        QueueDeclareOptions {
            exclusive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("declare server-named queue")
    .name()
    .as_str()
    .to_string()
}

fn confirm_select(nowait: bool) -> AMQPClass {
    AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select { nowait }))
}

fn tx_method(m: tx::AMQPMethod) -> AMQPClass {
    AMQPClass::Tx(m)
}

// --- confirms ----------------------------------------------------------------------

#[tokio::test]
async fn confirm_select_makes_publishes_acked() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let confirmation = ch
        .basic_publish(
            "".into(),
            q.as_str().into(),
            Default::default(),
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirmation.is_ack());
    // An unroutable (non-mandatory) message is confirmed too.
    let confirmation = ch
        .basic_publish(
            "".into(),
            unique("nowhere").as_str().into(),
            Default::default(),
            b"m",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirmation.is_ack());
}

#[tokio::test]
async fn confirms_cover_every_publish_in_order_with_sequence_numbers_from_one() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
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
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
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
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
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
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
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
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
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
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = unique("durable-confirm");
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
    ch.confirm_select(Default::default()).await.unwrap();
    let c = ch
        .basic_publish(
            "".into(),
            q.as_str().into(),
            Default::default(),
            b"persistent",
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(c.is_ack());
    assert_eq!(drain_bodies(&ch, &q).await, vec!["persistent"]);
    ch.queue_delete(q.as_str().into(), Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn confirm_select_on_transactional_channel_is_406() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    ch.tx_select().await.unwrap();
    let (code, text) = expect_amqp_error(ch.confirm_select(Default::default()).await);
    assert_eq!(code, 406);
    assert_eq!(
        text,
        "PRECONDITION_FAILED - cannot switch from tx to confirm mode"
    );
}

#[tokio::test]
async fn tx_select_on_confirm_channel_is_406() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let (code, text) = expect_amqp_error(ch.tx_select().await);
    assert_eq!(code, 406);
    assert_eq!(
        text,
        "PRECONDITION_FAILED - cannot switch from confirm to tx mode"
    );
}

// --- transactions --------------------------------------------------------------------

#[tokio::test]
async fn tx_publishes_are_invisible_until_commit() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let txch = conn.create_channel().await.unwrap();
    txch.tx_select().await.expect("tx.select");
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
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let txch = conn.create_channel().await.unwrap();
    txch.tx_select().await.unwrap();
    publish(&txch, "", &q, b"discarded").await;
    txch.tx_rollback().await.expect("tx.rollback");
    publish(&txch, "", &q, b"kept").await;
    txch.tx_commit().await.unwrap();
    assert_eq!(drain_bodies(&ch, &q).await, vec!["kept"]);
}

#[tokio::test]
async fn tx_acks_take_effect_on_commit() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = unique("tx-ack");
    declare_queue(&ch, &q).await;
    publish(&ch, "", &q, b"m").await;
    sync(&ch).await;
    let txch = conn.create_channel().await.unwrap();
    txch.tx_select().await.unwrap();
    let m = txch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .expect("message");
    txch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())
        .await
        .unwrap();
    txch.tx_commit().await.unwrap();
    txch.close(200, "bye".into()).await.unwrap();
    assert_eq!(
        message_count(&ch, &q).await,
        0,
        "committed ack removes the message"
    );
    ch.queue_delete(q.as_str().into(), Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn tx_rolled_back_acks_leave_messages_unacked() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = unique("tx-ack-rb");
    declare_queue(&ch, &q).await;
    publish(&ch, "", &q, b"m").await;
    sync(&ch).await;
    let txch = conn.create_channel().await.unwrap();
    txch.tx_select().await.unwrap();
    let m = txch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: false })
        .await
        .unwrap()
        .expect("message");
    txch.basic_ack(m.delivery.delivery_tag, BasicAckOptions::default())
        .await
        .unwrap();
    txch.tx_rollback().await.unwrap();
    // Still unacked: not ready, and back in the queue once the channel closes.
    assert_eq!(message_count(&ch, &q).await, 0);
    txch.close(200, "bye".into()).await.unwrap();
    wait_message_count(&ch, &q, 1).await;
    let m = ch
        .basic_get(q.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .unwrap();
    assert!(m.delivery.redelivered);
    ch.queue_delete(q.as_str().into(), Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn tx_channel_can_commit_repeatedly() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let txch = conn.create_channel().await.unwrap();
    txch.tx_select().await.unwrap();
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
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let (code, text) = expect_amqp_error(ch.tx_commit().await);
    assert_eq!(code, 406);
    assert_eq!(text, "PRECONDITION_FAILED - channel is not transactional");
}

#[tokio::test]
async fn tx_rollback_without_select_is_406() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    raw.send_method(1, tx_method(tx::AMQPMethod::Rollback(tx::Rollback {})))
        .await;
    let (code, text, class_id, method_id) = raw.expect_channel_close(1).await;
    assert_eq!(code, 406);
    assert_eq!(text, "PRECONDITION_FAILED - channel is not transactional");
    assert_eq!((class_id, method_id), (90, 30));
}

#[tokio::test]
async fn tx_select_twice_is_ok() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    for _ in 0..2 {
        let (_, ok) = raw
            .rpc(1, tx_method(tx::AMQPMethod::Select(tx::Select {})))
            .await;
        assert!(
            matches!(ok, AMQPClass::Tx(tx::AMQPMethod::SelectOk(_))),
            "{ok:?}"
        );
    }
}

#[tokio::test]
async fn uncommitted_publishes_are_dropped_when_channel_closes() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let txch = conn.create_channel().await.unwrap();
    txch.tx_select().await.unwrap();
    publish(&txch, "", &q, b"never").await;
    txch.close(200, "bye".into()).await.unwrap();
    sync(&ch).await;
    assert_eq!(message_count(&ch, &q).await, 0);
}

#[tokio::test]
async fn consumer_sees_tx_messages_only_after_commit() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = tmp_queue(&ch).await;
    let mut consumer = ch
        .basic_consume(
            q.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let txch = conn.create_channel().await.unwrap();
    txch.tx_select().await.unwrap();
    publish(&txch, "", &q, b"late").await;
    assert_no_delivery(&mut consumer, Duration::from_millis(300)).await;
    txch.tx_commit().await.unwrap();
    let d = next_delivery(&mut consumer).await;
    assert_eq!(d.data, b"late");
}

#[tokio::test]
async fn tx_mandatory_unroutable_is_returned_on_commit() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    let (_, ok) = raw
        .rpc(1, tx_method(tx::AMQPMethod::Select(tx::Select {})))
        .await;
    assert!(
        matches!(ok, AMQPClass::Tx(tx::AMQPMethod::SelectOk(_))),
        "{ok:?}"
    );
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
