//! Where a stream consumer starts, for each form of `x-stream-offset`: "first", "last", "next",
//! no argument, integers of every AMQP integer type (below the head, inside, past the end), a
//! timestamp ('T', seconds), an interval ("1h", "30m", ...), and the values RabbitMQ refuses
//! (406 on the channel) or crashes on (541 on the connection).

use std::time::{SystemTime, UNIX_EPOCH};

use amq_protocol::types::ByteArray;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_starts_at_the_offset_it_names() {
    let broker = TestBroker::start();
    let q = filled_stream(&broker, "stream-offsets", 10).await;
    let cases: Vec<(AMQPValue, i64)> = vec![
        (long_str("first"), 0),
        (AMQPValue::ByteArray(ByteArray::from(b"first".to_vec())), 0),
        (AMQPValue::LongLongInt(0), 0),
        (AMQPValue::LongLongInt(5), 5),
        (AMQPValue::LongLongInt(9), 9),
        // Below the head: from the head.
        (AMQPValue::LongLongInt(-1), 0),
        (AMQPValue::LongLongInt(-5), 0),
        (AMQPValue::LongLongInt(-(1 << 40)), 0),
        // Every integer type.
        (AMQPValue::ShortShortInt(3), 3),
        (AMQPValue::ShortShortUInt(3), 3),
        (AMQPValue::ShortInt(3), 3),
        (AMQPValue::ShortUInt(3), 3),
        (AMQPValue::LongInt(3), 3),
        (AMQPValue::LongUInt(3), 3),
        // A timestamp before everything.
        (AMQPValue::Timestamp(0), 0),
    ];
    let (_conn, ch) = broker.channel().await;
    for (offset, first) in cases {
        let mut consumer = reader(&ch, &q, Some(offset.clone()), 100).await;
        let n = usize::try_from(10 - first).unwrap();
        assert_eq!(
            read_exactly(&mut consumer, n).await,
            numbered(first..10),
            "x-stream-offset {offset:?}"
        );
    }
    delete_stream(&broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_the_end_and_no_offset_deliver_only_what_comes_later() {
    let broker = TestBroker::start();
    let cases: [(Option<AMQPValue>, usize); 4] = [
        (None, 10),
        (Some(long_str("next")), 10),
        (Some(AMQPValue::LongLongInt(10)), 10),
        // "last" on an empty stream.
        (Some(long_str("last")), 0),
    ];
    for (offset, already) in cases {
        let q = filled_stream(&broker, "stream-next", already).await;
        let (conn, ch) = broker.channel().await;
        let mut consumer = reader(&ch, &q, offset.clone(), 100).await;
        assert_no_delivery(&mut consumer, QUIET).await;
        publish_each_confirmed(&conn, &q, already..already + 2).await;
        let from = i64::try_from(already).unwrap();
        assert_eq!(
            read_exactly(&mut consumer, 2).await,
            numbered(from..from + 2),
            "x-stream-offset {offset:?}"
        );
        delete_stream(&broker, &q).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offset_past_the_end_starts_exactly_there_once_it_exists() {
    let broker = TestBroker::start();
    let q = filled_stream(&broker, "stream-ahead", 10).await;
    let (conn, ch) = broker.channel().await;
    let mut ahead = reader(&ch, &q, Some(AMQPValue::LongLongInt(11)), 100).await;
    let mut far = reader(&ch, &q, Some(AMQPValue::LongLongInt(1 << 40)), 100).await;
    publish_each_confirmed(&conn, &q, 10..13).await;
    // 10 is skipped: delivery starts at 11.
    assert_eq!(read_exactly(&mut ahead, 2).await, numbered(11..13));
    assert_no_delivery(&mut far, QUIET).await;
    // On an empty stream too.
    let empty = filled_stream(&broker, "stream-ahead-empty", 0).await;
    let mut ahead = reader(&ch, &empty, Some(AMQPValue::LongLongInt(5)), 100).await;
    publish_each_confirmed(&conn, &empty, 0..7).await;
    assert_eq!(read_exactly(&mut ahead, 2).await, numbered(5..7));
    delete_stream(&broker, &q).await;
    delete_stream(&broker, &empty).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_starts_at_the_last_chunk() {
    let broker = TestBroker::start();
    // Published one at a time, each confirmed: each message is a chunk of its own.
    let q = filled_stream(&broker, "stream-last", 10).await;
    let (conn, ch) = broker.channel().await;
    let mut consumer = reader(&ch, &q, Some(long_str("last")), 100).await;
    assert_eq!(read_exactly(&mut consumer, 1).await, numbered(9..10));
    publish_each_confirmed(&conn, &q, 10..12).await;
    assert_eq!(read_exactly(&mut consumer, 2).await, numbered(10..12));
    // Published in a burst, messages share chunks: "last" gives the whole last chunk, which
    // ends with the last message (how many came before it in that chunk is RabbitMQ's choice).
    let burst = declare_stream(&ch, "stream-last-burst", vec![]).await;
    publish_numbered(&ch, &burst, 0..200).await;
    sync(&ch).await;
    let mut consumer = reader(&ch, &burst, Some(long_str("last")), 1000).await;
    let first = read(&mut consumer, 1).await.remove(0);
    assert!(first.0 > 0 && first.0 < 200, "{first:?}");
    let rest = read_exactly(&mut consumer, usize::try_from(199 - first.0).unwrap()).await;
    let mut got = vec![first.clone()];
    got.extend(rest);
    assert_eq!(got, numbered(first.0..200));
    delete_stream(&broker, &q).await;
    delete_stream(&broker, &burst).await;
}

fn now_secs_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_offset_starts_at_the_first_chunk_published_at_or_after_it() {
    let broker = TestBroker::start();
    let q = filled_stream(&broker, "stream-timestamp", 3).await;
    // Past the next whole second, so that the timestamp (in seconds) follows the first batch.
    let now = now_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(1.1 - now.fract())).await;
    let since = now_secs_f64().floor() as u64;
    let (conn, ch) = broker.channel().await;
    publish_each_confirmed(&conn, &q, 3..6).await;
    let mut at = reader(&ch, &q, Some(AMQPValue::Timestamp(since)), 100).await;
    assert_eq!(read_exactly(&mut at, 3).await, numbered(3..6));
    // 2000-01-01: everything.
    let mut before = reader(&ch, &q, Some(AMQPValue::Timestamp(946_684_800)), 100).await;
    assert_eq!(read_exactly(&mut before, 6).await, numbered(0..6));
    // In the future: like "next".
    let mut after = reader(&ch, &q, Some(AMQPValue::Timestamp(since + 3600)), 100).await;
    assert_no_delivery(&mut after, QUIET).await;
    publish_each_confirmed(&conn, &q, 6..7).await;
    assert_eq!(read_exactly(&mut after, 1).await, numbered(6..7));
    delete_stream(&broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_offset_reaches_back_that_long() {
    let broker = TestBroker::start();
    let q = filled_stream(&broker, "stream-interval", 4).await;
    let (_conn, ch) = broker.channel().await;
    for interval in ["1h", "30m", "1D", "1Y", "1M", "100Y"] {
        let mut consumer = reader(&ch, &q, Some(long_str(interval)), 100).await;
        assert_eq!(
            read_exactly(&mut consumer, 4).await,
            numbered(0..4),
            "x-stream-offset {interval:?}"
        );
    }
    delete_stream(&broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_interval_offset_is_refused_with_406() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = declare_stream(&ch, "stream-bad-offset", vec![]).await;
    for offset in ["0s", "10x"] {
        let (_conn, ch) = broker.channel().await;
        ch.basic_qos(1, Default::default()).await.unwrap();
        assert_eq!(
            consume_error(
                &ch,
                &q,
                Default::default(),
                offset_arg(Some(long_str(offset)))
            )
            .await,
            precondition_failed(format!(
                "invalid arg 'x-stream-offset' for queue '{q}' in vhost '/': {{invalid_stream_offset_arg,{{longstr,<<\"{offset}\">>}}}}"
            ))
        );
    }
    delete_queue(&ch, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_values_rabbitmq_crashes_on_are_refused_with_406() {
    // RabbitMQ 3.10 crashes on them (541 INTERNAL_ERROR, the connection closes); warren
    // refuses them as it refuses any other bad offset.
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = declare_stream(&ch, "stream-crash-offset", vec![]).await;
    let values = [
        (long_str("abc"), "longstr,<<\"abc\">>"),
        (long_str("FIRST"), "longstr,<<\"FIRST\">>"),
        (long_str(""), "longstr,<<\"\">>"),
        (AMQPValue::Boolean(true), "bool,true"),
        (AMQPValue::Double(1.0), "double,1"),
        (AMQPValue::Void, "void,undefined"),
    ];
    for (offset, shown) in values {
        let expected = if external() {
            internal_error()
        } else {
            precondition_failed(format!(
                "invalid arg 'x-stream-offset' for queue '{q}' in vhost '/': {{invalid_stream_offset_arg,{{{shown}}}}}"
            ))
        };
        let (_conn, ch) = broker.channel().await;
        ch.basic_qos(1, Default::default()).await.unwrap();
        assert_eq!(
            consume_error(
                &ch,
                &q,
                Default::default(),
                offset_arg(Some(offset.clone()))
            )
            .await,
            expected,
            "x-stream-offset {offset:?}"
        );
    }
    delete_queue(&ch, &q).await;
}
