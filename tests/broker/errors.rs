//! Error scoping: soft errors close only their channel, hard errors close
//! the connection (and only it).

use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, channel, queue};

use crate::common::*;

#[tokio::test]
async fn channel_error_closes_only_that_channel() {
    let (_broker, conn, good) = broker_with_channel().await;
    let bad = conn.create_channel().await.unwrap();
    let q = declare_tmp_queue(&good).await;
    let mut consumer = consume_no_ack(&good, &q).await;
    let (code, _) = expect_amqp_error(declare_queue_passive(&bad, &unique("missing")).await);
    assert_eq!(code, 404);
    assert!(!bad.status().connected(), "the failing channel is closed");
    // The other channel, its consumer and the connection keep working.
    publish(&good, "", &q, b"still-works").await;
    assert_eq!(next_delivery(&mut consumer).await.data, b"still-works");
    let fresh = conn
        .create_channel()
        .await
        .expect("new channel after a channel error");
    sync(&fresh).await;
    assert!(conn.status().connected());
}

#[tokio::test]
async fn channel_close_carries_the_failing_class_and_method() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    let q = unique("missing");
    raw.send_method(1, queue_declare_passive(&q)).await;
    assert_eq!(
        raw.expect_channel_close(1).await,
        expected_close(no_queue(&q), 50, 10)
    );
}

#[tokio::test]
async fn methods_after_server_channel_close_are_ignored_until_close_ok() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    raw.open_channel(2).await;
    raw.send_method(1, queue_declare_passive(&unique("missing")))
        .await;
    // Wait for the channel.close but do not answer it yet.
    match raw.recv_method().await {
        (1, AMQPClass::Channel(channel::AMQPMethod::Close(c))) => assert_eq!(c.reply_code, 404),
        other => panic!("expected channel.close, got {other:?}"),
    }
    // This declare must be discarded: the channel is closing.
    raw.send_method(1, queue_declare_exclusive(&unique("ignored")))
        .await;
    // Channel 2 is unaffected.
    let q2 = unique("on-two");
    let (ch, reply) = raw.rpc(2, queue_declare_exclusive(&q2)).await;
    assert_eq!(
        ch, 2,
        "nothing may be sent on the closing channel: {reply:?}"
    );
    assert!(
        matches!(reply, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))),
        "{reply:?}"
    );
    raw.send_method(1, channel_close_ok()).await;
    // The channel number is free again.
    raw.open_channel(1).await;
    let (ch, reply) = raw
        .rpc(1, queue_declare_exclusive(&unique("reopened")))
        .await;
    assert_eq!(ch, 1);
    assert!(
        matches!(reply, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))),
        "{reply:?}"
    );
    match raw.recv_within(Duration::from_millis(200)).await {
        Recv::Timeout => {}
        other => panic!("unexpected frame {other:?}"),
    }
}

#[tokio::test]
async fn client_channel_close_with_error_code_gets_close_ok() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    let (ch, reply) = raw
        .rpc(
            1,
            AMQPClass::Channel(channel::AMQPMethod::Close(channel::Close {
                reply_code: 406,
                reply_text: "client gave up".into(),
                class_id: 60,
                method_id: 40,
            })),
        )
        .await;
    assert_eq!(ch, 1);
    assert!(
        matches!(reply, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))),
        "{reply:?}"
    );
}

#[tokio::test]
async fn channel_error_requeues_the_channels_unacked_messages() {
    let (_broker, conn, ch, q) = broker_with_queue("err-requeue").await;
    publish(&ch, "", &q, b"m").await;
    sync(&ch).await;
    let bad = conn.create_channel().await.unwrap();
    let m = get_message(&bad, &q).await.expect("message");
    assert!(!m.delivery.redelivered);
    let (code, _) = expect_amqp_error(declare_queue_passive(&bad, &unique("missing")).await);
    assert_eq!(code, 404);
    wait_message_count(&ch, &q, 1).await;
    let m = get_message_no_ack(&ch, &q).await.unwrap();
    assert!(m.delivery.redelivered);
    delete_queue(&ch, &q).await;
}

#[tokio::test]
async fn connection_error_closes_every_channel() {
    let (_broker, conn, ch1) = broker_with_channel().await;
    let ch2 = conn.create_channel().await.unwrap();
    let q = declare_tmp_queue(&ch1).await;
    let mut consumer = consume_from(&ch1, &q).await;
    // basic.recover requeue=false is a hard error (540) in RabbitMQ.
    let (code, _) = expect_amqp_error(
        ch2.basic_recover(lapin::options::BasicRecoverOptions { requeue: false })
            .await,
    );
    assert_eq!(code, 540);
    match tokio::time::timeout(WAIT, futures_lite::StreamExt::next(&mut consumer)).await {
        Ok(Some(Err(_))) | Ok(None) => {}
        other => panic!("consumer on another channel must end with the connection, got {other:?}"),
    }
    assert!(!conn.status().connected());
    assert!(ch1.basic_qos(1, Default::default()).await.is_err());
}

#[tokio::test]
async fn connection_error_does_not_affect_other_connections() {
    let (broker, _conn, ch, q) = broker_with_tmp_queue().await;
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    raw.send_bytes(&raw_frame(9, 1, b"boom", 0xCE)).await;
    let (code, _, _, _) = raw.expect_connection_close().await;
    assert_eq!(code, 501);
    publish(&ch, "", &q, b"unaffected").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, vec!["unaffected"]);
}

#[tokio::test]
async fn exclusive_queues_are_deleted_when_connection_dies_of_an_error() {
    let broker = TestBroker::start();
    let q = unique("excl-err");
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    let (_, reply) = raw.rpc(1, queue_declare_exclusive(&q)).await;
    assert!(
        matches!(reply, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))),
        "{reply:?}"
    );
    raw.send_bytes(&raw_frame(9, 1, b"boom", 0xCE)).await;
    raw.expect_connection_close().await;
    raw.expect_eof(WAIT).await;
    let (_conn, ch) = broker.channel().await;
    wait_until_queue_is_gone(&ch, &q, "exclusive queue outlived its connection").await;
}

#[tokio::test]
async fn frames_after_connection_close_are_ignored_until_close_ok() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    raw.send_bytes(&raw_frame(9, 1, b"boom", 0xCE)).await;
    match raw.recv_method().await {
        (0, AMQPClass::Connection(amq_protocol::protocol::connection::AMQPMethod::Close(c))) => {
            assert_eq!(c.reply_code, 501)
        }
        other => panic!("expected connection.close, got {other:?}"),
    }
    // A method sent now gets no answer.
    raw.send_method(1, queue_declare_exclusive(&unique("ignored")))
        .await;
    match raw.recv_within(Duration::from_millis(300)).await {
        Recv::Timeout | Recv::Frame(AMQPFrame::Heartbeat) => {}
        other => panic!("nothing may follow connection.close, got {other:?}"),
    }
    raw.send_method(0, connection_close_ok()).await;
    raw.expect_eof(WAIT).await;
}
