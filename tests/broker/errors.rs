//! Error scoping: soft errors close only their channel, hard errors close
//! the connection (and only it).

use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, channel, queue};
use amq_protocol::types::FieldTable;
use lapin::options::{BasicConsumeOptions, QueueDeclareOptions};

use crate::common::*;

fn passive_declare(q: &str) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: q.into(),
        passive: true,
        ..Default::default()
    }))
}

fn exclusive_declare(q: &str) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: q.into(),
        exclusive: true,
        ..Default::default()
    }))
}

#[tokio::test]
async fn channel_error_closes_only_that_channel() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let good = conn.create_channel().await.unwrap();
    let bad = conn.create_channel().await.unwrap();
    let q = good
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let q = q.name().as_str().to_string();
    let mut consumer = good
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
    let (code, _) = expect_amqp_error(
        bad.queue_declare(
            unique("missing").as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await,
    );
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
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    let q = unique("missing");
    raw.send_method(1, passive_declare(&q)).await;
    let (code, text, class_id, method_id) = raw.expect_channel_close(1).await;
    assert_eq!(code, 404);
    assert_eq!(text, format!("NOT_FOUND - no queue '{q}' in vhost '/'"));
    assert_eq!((class_id, method_id), (50, 10));
}

#[tokio::test]
async fn methods_after_server_channel_close_are_ignored_until_close_ok() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    raw.open_channel(2).await;
    raw.send_method(1, passive_declare(&unique("missing")))
        .await;
    // Wait for the channel.close but do not answer it yet.
    match raw.recv_method().await {
        (1, AMQPClass::Channel(channel::AMQPMethod::Close(c))) => assert_eq!(c.reply_code, 404),
        other => panic!("expected channel.close, got {other:?}"),
    }
    // This declare must be discarded: the channel is closing.
    raw.send_method(1, exclusive_declare(&unique("ignored")))
        .await;
    // Channel 2 is unaffected.
    let q2 = unique("on-two");
    let (ch, reply) = raw.rpc(2, exclusive_declare(&q2)).await;
    assert_eq!(
        ch, 2,
        "nothing may be sent on the closing channel: {reply:?}"
    );
    assert!(
        matches!(reply, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))),
        "{reply:?}"
    );
    raw.send_method(
        1,
        AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
    )
    .await;
    // The channel number is free again.
    raw.open_channel(1).await;
    let (ch, reply) = raw.rpc(1, exclusive_declare(&unique("reopened"))).await;
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
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
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
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = unique("err-requeue");
    declare_queue(&ch, &q).await;
    publish(&ch, "", &q, b"m").await;
    sync(&ch).await;
    let bad = conn.create_channel().await.unwrap();
    let m = bad
        .basic_get(
            q.as_str().into(),
            lapin::options::BasicGetOptions { no_ack: false },
        )
        .await
        .unwrap()
        .expect("message");
    assert!(!m.delivery.redelivered);
    let (code, _) = expect_amqp_error(
        bad.queue_declare(
            unique("missing").as_str().into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await,
    );
    assert_eq!(code, 404);
    wait_message_count(&ch, &q, 1).await;
    let m = ch
        .basic_get(
            q.as_str().into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(m.delivery.redelivered);
    ch.queue_delete(q.as_str().into(), Default::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn connection_error_closes_every_channel() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let ch1 = conn.create_channel().await.unwrap();
    let ch2 = conn.create_channel().await.unwrap();
    let q = ch1
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut consumer = ch1
        .basic_consume(
            q.name().clone(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
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
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let q = q.name().as_str().to_string();
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
    let (_, reply) = raw.rpc(1, exclusive_declare(&q)).await;
    assert!(
        matches!(reply, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))),
        "{reply:?}"
    );
    raw.send_bytes(&raw_frame(9, 1, b"boom", 0xCE)).await;
    raw.expect_connection_close().await;
    raw.expect_eof(WAIT).await;
    let (_conn, ch) = broker.channel().await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match ch
            .queue_declare(
                q.as_str().into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
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
async fn frames_after_connection_close_are_ignored_until_close_ok() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    raw.send_bytes(&raw_frame(9, 1, b"boom", 0xCE)).await;
    match raw.recv_method().await {
        (0, AMQPClass::Connection(amq_protocol::protocol::connection::AMQPMethod::Close(c))) => {
            assert_eq!(c.reply_code, 501)
        }
        other => panic!("expected connection.close, got {other:?}"),
    }
    // A method sent now gets no answer.
    raw.send_method(1, exclusive_declare(&unique("ignored")))
        .await;
    match raw.recv_within(Duration::from_millis(300)).await {
        Recv::Timeout | Recv::Frame(AMQPFrame::Heartbeat) => {}
        other => panic!("nothing may follow connection.close, got {other:?}"),
    }
    raw.send_method(
        0,
        AMQPClass::Connection(amq_protocol::protocol::connection::AMQPMethod::CloseOk(
            amq_protocol::protocol::connection::CloseOk {},
        )),
    )
    .await;
    raw.expect_eof(WAIT).await;
}
