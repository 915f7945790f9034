//! What stream consumers get and what consuming does: the `x-stream-offset` header (a signed
//! 64-bit integer) and the message's own properties on every delivery, never `redelivered`,
//! prefetch windows per consumer, independent consumers on one channel, consumption that removes
//! nothing, publishing (confirms, mandatory, tx), retention by whole segments, the cancel a
//! consumer gets when its stream is deleted, and (warren only) offsets and contents across kill -9.

use amq_protocol::protocol::BasicProperties;
use lapin::options::{BasicAckOptions, BasicCancelOptions};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_delivery_carries_its_offset_as_a_long_long_and_keeps_its_properties() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let q = declare_stream(&ch, "stream-props", vec![]).await;
    let props = BasicProperties::default()
        .with_content_type("text/plain".into())
        .with_content_encoding("gzip".into())
        .with_headers(table(vec![("h", long_str("v"))]))
        .with_delivery_mode(1)
        .with_priority(3)
        .with_correlation_id("cid".into())
        .with_reply_to("rt".into())
        .with_expiration("60000".into())
        .with_message_id("mid".into())
        .with_timestamp(12345)
        .with_type("t".into())
        .with_user_id("guest".into())
        .with_app_id("app".into());
    publish_acked(&ch, "", &q, b"with", props.clone()).await;
    publish_acked(&ch, "", &q, b"without", BasicProperties::default()).await;
    let mut consumer = reader(&ch, &q, Some(long_str("first")), 10).await;
    let got = next_deliveries(&mut consumer, 2).await;
    assert_eq!((got[0].redelivered, got[1].redelivered), (false, false));
    let expect_headers = |entries| Some(table(entries));
    assert_eq!(
        got[0].properties.headers(),
        &expect_headers(vec![
            ("h", long_str("v")),
            ("x-stream-offset", AMQPValue::LongLongInt(0))
        ])
    );
    assert_eq!(
        got[1].properties.headers(),
        &expect_headers(vec![("x-stream-offset", AMQPValue::LongLongInt(1))])
    );
    // Everything else as published.
    let without_headers = |p: &BasicProperties| p.clone().with_headers(FieldTable::default());
    assert_eq!(without_headers(&got[0].properties), without_headers(&props));
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_is_a_window_for_each_consumer() {
    let broker = TestBroker::start();
    let q = filled_stream(&broker, "stream-window", 6).await;
    let (_conn, ch) = broker.channel().await;
    let mut consumer = reader(&ch, &q, Some(long_str("first")), 2).await;
    let got = next_deliveries(&mut consumer, 2).await;
    assert_no_delivery(&mut consumer, QUIET).await;
    ch.basic_ack(got[0].delivery_tag, BasicAckOptions::default())
        .await
        .unwrap();
    let third = next_delivery(&mut consumer).await;
    assert_eq!(offset_of(&third), 2);
    assert_no_delivery(&mut consumer, QUIET).await;
    ch.basic_ack(third.delivery_tag, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    let more = next_deliveries(&mut consumer, 2).await;
    assert_eq!(more.iter().map(offset_of).collect::<Vec<_>>(), [3, 4]);
    // A second consumer on the channel has a window of its own.
    let mut other = reader(&ch, &q, Some(AMQPValue::LongLongInt(3)), 2).await;
    let theirs = next_deliveries(&mut other, 2).await;
    assert_eq!(theirs.iter().map(offset_of).collect::<Vec<_>>(), [3, 4]);
    assert_no_delivery(&mut other, QUIET).await;
    delete_stream(&broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_on_one_channel_read_independently() {
    let broker = TestBroker::start();
    let q = filled_stream(&broker, "stream-two", 5).await;
    let (_conn, ch) = broker.channel().await;
    let mut from_first = reader(&ch, &q, Some(long_str("first")), 10).await;
    let mut from_three = reader(&ch, &q, Some(AMQPValue::LongLongInt(3)), 10).await;
    let a = next_deliveries(&mut from_first, 5).await;
    let b = next_deliveries(&mut from_three, 2).await;
    assert_eq!(a.iter().map(offset_of).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    assert_eq!(b.iter().map(offset_of).collect::<Vec<_>>(), [3, 4]);
    // Delivery tags are the channel's: one sequence across both consumers.
    let mut tags: Vec<u64> = a.iter().chain(&b).map(|d| d.delivery_tag).collect();
    tags.sort_unstable();
    assert_eq!(tags, (1..=7).collect::<Vec<u64>>());
    ch.basic_ack(7, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    assert_no_delivery(&mut from_first, QUIET).await;
    assert_no_delivery(&mut from_three, Duration::ZERO).await;
    delete_stream(&broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consuming_and_acking_remove_nothing() {
    let broker = TestBroker::start();
    let q = filled_stream(&broker, "stream-keeps", 7).await;
    let (_conn, ch) = broker.channel().await;
    // RabbitMQ's message count for a stream is a statistic: it gets there asynchronously.
    wait_message_count(&ch, &q, 7).await;
    let mut consumer = reader(&ch, &q, Some(long_str("first")), 10).await;
    assert_eq!(read_exactly(&mut consumer, 7).await, numbered(0..7));
    let ok = declare_queue_passive(&ch, &q).await.unwrap();
    // All acked, all still there; and RabbitMQ's declare-ok counts no consumers on a stream.
    assert_eq!((ok.message_count(), ok.consumer_count()), (7, 0));
    let mut again = reader(&ch, &q, Some(long_str("first")), 10).await;
    let got = next_deliveries(&mut again, 7).await;
    let seen: Vec<(i64, bool)> = got.iter().map(|d| (offset_of(d), d.redelivered)).collect();
    assert_eq!(seen, (0..7).map(|i| (i, false)).collect::<Vec<_>>());
    delete_stream(&broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consuming_again_after_a_cancel_starts_over_with_new_tags() {
    let broker = TestBroker::start();
    let q = filled_stream(&broker, "stream-again", 5).await;
    let (_conn, ch) = broker.channel().await;
    let consumer = reader(&ch, &q, Some(AMQPValue::LongLongInt(3)), 10).await;
    let mut first = consumer.clone();
    let got = next_deliveries(&mut first, 2).await;
    ch.basic_cancel(
        consumer.tag().as_str().into(),
        BasicCancelOptions::default(),
    )
    .await
    .unwrap();
    // The two stay unacked; the same offsets come again under new tags, not redelivered.
    let mut second = reader(&ch, &q, Some(AMQPValue::LongLongInt(3)), 10).await;
    let again = next_deliveries(&mut second, 2).await;
    let seen = |ds: &[lapin::message::Delivery]| {
        ds.iter()
            .map(|d| (offset_of(d), d.delivery_tag, d.redelivered))
            .collect::<Vec<_>>()
    };
    assert_eq!(seen(&got), [(3, 1, false), (4, 2, false)]);
    assert_eq!(seen(&again), [(3, 3, false), (4, 4, false)]);
    ch.basic_ack(0, BasicAckOptions { multiple: true })
        .await
        .unwrap();
    sync(&ch).await;
    delete_stream(&broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_to_a_stream_with_confirms_mandatory_and_tx() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    let q = declare_stream(&ch, "stream-publish", vec![]).await;
    let confirmation = publish_mandatory_confirmed(&ch, "", &q, b"m0", transient()).await;
    assert!(confirmation.is_ack(), "{confirmation:?}");
    assert!(
        confirmation.take_message().is_none(),
        "a stream routes it: no basic.return"
    );
    let tx = conn.create_channel().await.unwrap();
    tx.tx_select().await.unwrap();
    publish(&tx, "", &q, b"m1").await;
    tx.tx_commit().await.unwrap();
    publish(&tx, "", &q, b"rolled back").await;
    tx.tx_rollback().await.unwrap();
    // A stream ignores expiration: a message published to expire at once is still there.
    let expiring = BasicProperties::default().with_expiration("1".into());
    publish_acked(&ch, "", &q, b"m2", expiring).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut consumer = reader(&ch, &q, Some(long_str("first")), 10).await;
    assert_eq!(read_exactly(&mut consumer, 3).await, numbered(0..3));
    delete_queue(&ch, &q).await;
}

/// The number a retention test's body starts with ("0042....").
fn body_number(body: &str) -> i64 {
    body[..4].parse().expect("a numbered body")
}

/// `head` and the deliveries after it up to the last message published (body "0099..."),
/// acking each; then asserts nothing more comes.
async fn read_to_the_last(consumer: &mut Consumer, head: (i64, String)) -> Vec<(i64, String)> {
    let mut got = vec![head];
    while body_number(&got[got.len() - 1].1) < 99 {
        got.extend(read(consumer, 1).await);
    }
    assert_no_delivery(consumer, QUIET).await;
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_whole_segments_from_the_head() {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    let q = declare_stream(
        &ch,
        "stream-retention",
        vec![
            ("x-max-length-bytes", AMQPValue::LongInt(2000)),
            ("x-stream-max-segment-size-bytes", AMQPValue::LongInt(500)),
        ],
    )
    .await;
    let publisher = conn.create_channel().await.unwrap();
    publisher.confirm_select(Default::default()).await.unwrap();
    for i in 0..100 {
        let body = format!("{i:04}{}", ".".repeat(96));
        publish_acked(&publisher, "", &q, body.as_bytes(), transient()).await;
    }
    // Retention runs as segments roll over: poll (a fresh consumer from "first" each time)
    // until the head has moved.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (mut consumer, head) = loop {
        let mut consumer = reader(&ch, &q, Some(long_str("first")), 1000).await;
        let head = read(&mut consumer, 1).await.remove(0);
        if head.0 > 0 || std::time::Instant::now() > deadline {
            break (consumer, head);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(head.0 > 0, "nothing removed from the head: {head:?}");
    let got = read_to_the_last(&mut consumer, head).await;
    // What is left is the tail, every message of it, ending with the last one published.
    let numbers: Vec<i64> = got.iter().map(|(_, b)| body_number(b)).collect();
    let first = numbers[0];
    assert!(first > 0, "{numbers:?}");
    assert_eq!(numbers, (first..100).collect::<Vec<_>>());
    // Offsets only increase. They are not contiguous: each new segment takes an offset.
    let offsets: Vec<i64> = got.iter().map(|(o, _)| *o).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    // A numeric offset below the head starts at the head (which may have moved on since).
    let mut below = reader(&ch, &q, Some(AMQPValue::LongLongInt(5)), 1000).await;
    let head = read(&mut below, 1).await.remove(0);
    let from_below = read_to_the_last(&mut below, head).await;
    assert!(
        got.ends_with(&from_below),
        "{from_below:?} is not a tail of {got:?}"
    );
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_stream_cancels_its_consumers() {
    let broker = TestBroker::start();
    let q = filled_stream(&broker, "stream-deleted", 2).await;
    let (conn, ch) = broker.channel().await;
    let mut consumer = reader(&ch, &q, Some(long_str("first")), 10).await;
    assert_eq!(read(&mut consumer, 2).await, numbered(0..2));
    delete_stream(&broker, &q).await;
    // basic.cancel from the broker: the consumer ends; channel and connection stay open.
    assert_consumer_ends(&mut consumer, "the stream's deletion cancels its consumer").await;
    sync(&ch).await;
    assert!(conn.status().connected());
}

/// warren only: kills the broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_keeps_its_offsets_and_contents_across_kill_9() {
    let dir = std::env::temp_dir().join(unique("stream-crash"));
    let mut broker = TestBroker::spawn_in(&dir, &[]);
    let (conn, ch) = broker.channel().await;
    declare_durable_queue_with(&ch, "stream-k9", stream_args(vec![])).await;
    ch.confirm_select(Default::default()).await.unwrap();
    for i in 0..5 {
        // Transient or persistent, a stream keeps it.
        let props = if i % 2 == 0 {
            persistent()
        } else {
            transient()
        };
        publish_acked(&ch, "", "stream-k9", format!("m{i}").as_bytes(), props).await;
    }
    drop(conn);
    broker.kill9();
    let broker = TestBroker::spawn_in(&dir, &[]);
    let (conn, ch) = broker.channel().await;
    let mut consumer = reader(&ch, "stream-k9", Some(long_str("first")), 10).await;
    assert_eq!(read_exactly(&mut consumer, 5).await, numbered(0..5));
    let mut resumed = reader(&ch, "stream-k9", Some(AMQPValue::LongLongInt(3)), 10).await;
    assert_eq!(read_exactly(&mut resumed, 2).await, numbered(3..5));
    // New messages go on from where the log ended.
    publish_each_confirmed(&conn, "stream-k9", 5..6).await;
    assert_eq!(read_exactly(&mut resumed, 1).await, numbered(5..6));
    drop(broker);
    let _ = std::fs::remove_dir_all(&dir);
}
