//! Resource alarms: with the memory (or disk) alarm on, a connection that publishes is sent
//! connection.blocked with RabbitMQ's reason and is no longer read from, while consuming
//! connections go on. The alarms are forced through warren's config file, so these always spawn
//! warren.

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;

use crate::common::*;

async fn publisher_is_blocked_and_consumers_still_work(broker: TestBroker, reason_hint: &str) {
    let (_setup, ch) = broker.channel().await;
    let q = unique("alarm-q");
    declare_queue(&ch, &q).await;

    let publisher = broker.connect().await;
    let pch = publisher.create_channel().await.unwrap();
    let publish = |body: &'static [u8]| {
        let pch = pch.clone();
        let q = q.clone();
        async move {
            pch.basic_publish(
                "".into(),
                q.as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
        }
    };
    publish(b"first").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !publisher.status().blocked() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no connection.blocked ({reason_hint}) within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The broker no longer reads this connection: a second publish does not arrive.
    tokio::spawn(tokio::time::timeout(
        Duration::from_secs(2),
        publish(b"second"),
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        message_count(&ch, &q).await,
        1,
        "only the publish before the block was read"
    );
    // Consumers are not blocked.
    assert_eq!(get_body(&ch, &q).await.expect("message"), b"first");
}

#[tokio::test]
async fn memory_alarm_blocks_publishers_with_connection_blocked() {
    // A 1-byte limit: the alarm is on from the start.
    let broker = TestBroker::spawn_with_config("memory_limit_bytes = 1\n");
    publisher_is_blocked_and_consumers_still_work(broker, "low on memory").await;
}

#[tokio::test]
async fn disk_alarm_blocks_publishers_with_connection_blocked() {
    // More free disk than any machine has: the disk alarm is on from the start.
    let broker = TestBroker::spawn_with_config("disk_free_limit_bytes = 18000000000000000000\n");
    publisher_is_blocked_and_consumers_still_work(broker, "low on disk").await;
}

#[tokio::test]
async fn connection_blocked_reason_is_rabbitmqs_text() {
    let broker = TestBroker::spawn_with_config("memory_limit_bytes = 1\n");
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    raw.send_bytes(&publish_frames(1, "", "nowhere", b"x"))
        .await;
    match raw.recv_method().await {
        (
            0,
            amq_protocol::protocol::AMQPClass::Connection(
                amq_protocol::protocol::connection::AMQPMethod::Blocked(b),
            ),
        ) => {
            assert_eq!(b.reason.as_str(), "low on memory")
        }
        other => panic!("expected connection.blocked, got {other:?}"),
    }
}
