//! Closing races found by amqp091-go's integration suite: both sides closing a channel at
//! once, and a client still sending after its connection.close-ok. RabbitMQ keeps a channel it
//! closed until the client's close-ok, and leaves closing the socket to the client.

use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, channel, connection, exchange, queue};

use crate::common::*;

fn declare_fanout(name: &str) -> AMQPClass {
    AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
        exchange: name.into(),
        kind: "fanout".into(),
        auto_delete: true,
        ..Default::default()
    }))
}

fn queue_delete(q: &str) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Delete(queue::Delete {
        queue: q.into(),
        ..Default::default()
    }))
}

async fn declare_queue_on_1(raw: &mut RawClient, q: &str, durable: bool) {
    let declare = AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: q.into(),
        durable,
        ..Default::default()
    }));
    match raw.rpc(1, declare).await {
        (1, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))) => {}
        other => panic!("expected queue.declare-ok, got {other:?}"),
    }
}

#[tokio::test]
async fn channel_closed_by_both_sides_stays_closing_until_the_clients_close_ok() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    raw.open_channel(2).await;

    // A soft error on channel 1, and the client closing channel 1 before it hears of it.
    raw.publish(1, &unique("missing-exchange"), "", false, false, b"x")
        .await;
    raw.send_method(1, channel_close()).await;
    match raw.recv_method().await {
        (1, AMQPClass::Channel(channel::AMQPMethod::Close(c))) => assert_eq!(c.reply_code, 404),
        other => panic!("expected channel.close 404 on 1, got {other:?}"),
    }
    match raw.recv_method().await {
        (1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))) => {}
        other => panic!("expected channel.close-ok on 1, got {other:?}"),
    }
    raw.send_method(1, channel_close_ok()).await;

    // The connection and its other channel are fine, and channel 1 can be opened again.
    let name = unique("close-race");
    match raw.rpc(2, declare_fanout(&name)).await {
        (2, AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(_))) => {}
        other => panic!("expected exchange.declare-ok on 2, got {other:?}"),
    }
    raw.open_channel(1).await;
}

#[tokio::test]
async fn reopening_a_channel_before_answering_the_brokers_close_is_a_connection_error() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    raw.publish(1, &unique("missing-exchange"), "", false, false, b"x")
        .await;
    raw.send_method(1, channel_close()).await;
    // channel.close 404 and the close-ok for ours, then a channel.open without our close-ok:
    // the channel still exists (closing), so RabbitMQ sees a second channel.open.
    for _ in 0..2 {
        raw.recv_method().await;
    }
    raw.send_method(1, channel_open()).await;
    assert_eq!(
        raw.expect_connection_close().await,
        expected_close(channel_error("second 'channel.open' seen"), 20, 10)
    );
}

#[tokio::test]
async fn after_connection_close_ok_the_client_closes_the_socket() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    // Several threads of one client closing at once: the second close follows the first.
    raw.send_method(0, connection_close()).await;
    raw.send_method(0, connection_close()).await;
    match raw.recv_method().await {
        (0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => {}
        other => panic!("expected connection.close-ok, got {other:?}"),
    }
    // The second close is answered too (RabbitMQ does), then nothing else arrives and the
    // socket stays open: it is the client's to close.
    match raw.recv_method().await {
        (0, AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))) => {}
        other => panic!("expected a second connection.close-ok, got {other:?}"),
    }
    match raw.recv_within(Duration::from_millis(500)).await {
        Recv::Timeout => {}
        Recv::Frame(AMQPFrame::Heartbeat) => {}
        other => panic!("expected silence on an open socket after close-ok, got {other:?}"),
    }
    assert!(
        raw.try_send_bytes(&method_frame(1, channel_open())).await,
        "the broker must still accept (and discard) bytes after close-ok"
    );
}

#[tokio::test]
async fn server_properties_name_rabbitmq_as_product_and_warren_as_platform() {
    if external() {
        return; // the platform check is about warren
    }
    let (_broker, _raw, start) = broker_with_raw_start().await;
    let prop = |key: &str| server_property(&start, key);
    // Clients switch RabbitMQ behaviour on this (amqp091-go's suite does).
    assert_eq!(prop("product"), "RabbitMQ");
    assert!(prop("version").starts_with("3."), "{}", prop("version"));
    assert!(
        prop("platform").starts_with("warren "),
        "{}",
        prop("platform")
    );
}

#[tokio::test]
async fn deleting_a_queue_answers_delete_ok_before_cancelling_own_consumers() {
    use amq_protocol::protocol::basic;
    let (_broker, mut raw) = broker_with_raw_channel().await;
    let q = unique("delete-order");
    declare_queue_on_1(&mut raw, &q, false).await;
    let consume = AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
        queue: q.as_str().into(),
        consumer_tag: "own".into(),
        ..Default::default()
    }));
    match raw.rpc(1, consume).await {
        (1, AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_))) => {}
        other => panic!("expected basic.consume-ok, got {other:?}"),
    }
    match raw.rpc(1, queue_delete(&q)).await {
        (1, AMQPClass::Queue(queue::AMQPMethod::DeleteOk(_))) => {}
        other => panic!("expected queue.delete-ok first (as RabbitMQ), got {other:?}"),
    }
    match raw.recv_method().await {
        (1, AMQPClass::Basic(basic::AMQPMethod::Cancel(c))) => {
            assert_eq!(c.consumer_tag.as_str(), "own")
        }
        other => panic!("expected basic.cancel after delete-ok, got {other:?}"),
    }
}

/// Persistent messages with confirms, then channel.close right behind them: the store commits
/// after the channel is gone, and nothing (no late basic.ack) may follow close-ok on that
/// channel id, nor land on a channel reopened with the same id. (amqp091-go deadlocked on a
/// frame after close-ok.)
#[tokio::test]
async fn confirms_committed_after_channel_close_are_not_sent() {
    use amq_protocol::frame::AMQPContentHeader;
    use amq_protocol::protocol::{BasicProperties, basic, confirm};
    let (_broker, mut raw) = broker_with_raw_channel().await;
    let q = unique("late-confirms");
    declare_queue_on_1(&mut raw, &q, true).await;
    let select = AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select {
        nowait: false,
    }));
    match raw.rpc(1, select).await {
        (1, AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_))) => {}
        other => panic!("expected confirm.select-ok, got {other:?}"),
    }
    // 200 persistent publishes and the close in one write: the close is handled before the
    // store's group commit of those messages finishes.
    let mut bytes = Vec::new();
    for _ in 0..200 {
        bytes.extend(publish_method_frame(1, "", &q));
        bytes.extend(encode(&AMQPFrame::Header(
            1,
            AMQPContentHeader {
                class_id: 60,
                body_size: 3,
                properties: BasicProperties::default().with_delivery_mode(2),
            },
        )));
        bytes.extend(encode(&AMQPFrame::Body(1, b"abc".to_vec())));
    }
    bytes.extend(method_frame(1, channel_close()));
    raw.send_bytes(&bytes).await;
    loop {
        match raw.recv_method().await {
            (1, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))) => break,
            (1, AMQPClass::Basic(basic::AMQPMethod::Ack(_))) => {} // before close-ok: fine
            other => panic!("expected basic.ack or channel.close-ok, got {other:?}"),
        }
    }
    raw.open_channel(1).await;
    match raw.recv_within(Duration::from_millis(500)).await {
        Recv::Timeout | Recv::Frame(AMQPFrame::Heartbeat) => {}
        other => panic!("nothing may arrive on channel 1 after close-ok and reopen, got {other:?}"),
    }
    // Cleanup (a durable queue outlives the test otherwise when run against another broker).
    match raw.rpc(1, queue_delete(&q)).await {
        (1, AMQPClass::Queue(queue::AMQPMethod::DeleteOk(_))) => {}
        other => panic!("expected queue.delete-ok, got {other:?}"),
    }
}
