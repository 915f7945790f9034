//! What a stream refuses once it exists: basic.get and auto-ack consumers (540, the connection),
//! consumers without a prefetch of their own (406, the channel), nack and reject (540), queue.purge
//! (540), and `x-stream-offset` on a classic or quorum queue (406).

use lapin::options::{
    BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_get_on_a_stream_closes_the_connection_with_540() {
    let broker = TestBroker::start();
    let q = filled_stream(&broker, "stream-get", 1).await;
    for no_ack in [false, true] {
        let (_conn, ch) = broker.channel().await;
        assert_eq!(
            expect_amqp_error(
                ch.basic_get(q.as_str().into(), BasicGetOptions { no_ack })
                    .await
            ),
            not_supported_by_streams("basic.get", &q)
        );
    }
    delete_stream(&broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_ack_consumer_closes_the_connection_with_540() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = declare_stream(&ch, "stream-autoack", vec![]).await;
    ch.basic_qos(10, BasicQosOptions::default()).await.unwrap();
    let no_ack = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    assert_eq!(
        consume_error(&ch, &q, no_ack, FieldTable::default()).await,
        not_supported_by_streams("automatic acknowledgement", &q)
    );
    delete_stream(&broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_without_a_prefetch_of_its_own_is_refused_with_406() {
    let broker = TestBroker::start();
    let (_conn, ch) = broker.channel().await;
    let q = declare_stream(&ch, "stream-noqos", vec![]).await;
    let expected = precondition_failed(format!(
        "consumer prefetch count is not set for 'queue '{q}' in vhost '/''"
    ));
    // (qos calls before the consume, no_ack): prefetch is checked before auto-ack.
    let cases: [(&[(u16, bool)], bool); 4] = [
        (&[], false),
        (&[], true),
        (&[(10, false), (0, false)], false),
        (&[(10, true)], false),
    ];
    for (qos, no_ack) in cases {
        let (_conn, ch) = broker.channel().await;
        for (count, global) in qos {
            ch.basic_qos(*count, BasicQosOptions { global: *global })
                .await
                .unwrap();
        }
        let options = BasicConsumeOptions {
            no_ack,
            ..Default::default()
        };
        assert_eq!(
            consume_error(&ch, &q, options, FieldTable::default()).await,
            expected,
            "qos {qos:?}, no_ack {no_ack}"
        );
    }
    // A global prefetch beside the consumer's own is fine (no 540 as a quorum queue gives).
    let (conn, ch) = broker.channel().await;
    publish_each_confirmed(&conn, &q, 0..2).await;
    ch.basic_qos(10, BasicQosOptions { global: true })
        .await
        .unwrap();
    let mut consumer = reader(&ch, &q, Some(long_str("first")), 10).await;
    assert_eq!(read_exactly(&mut consumer, 2).await, numbered(0..2));
    delete_stream(&broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_and_reject_close_the_connection_with_540_and_nothing_is_redelivered() {
    let broker = TestBroker::start();
    let q = filled_stream(&broker, "stream-nack", 3).await;
    for (settle, requeue) in [
        ("nack", true),
        ("nack", false),
        ("reject", true),
        ("reject", false),
    ] {
        let (conn, ch) = broker.channel().await;
        let watch = ConnectionErrorWatch::new(&conn);
        let mut consumer = reader(&ch, &q, Some(AMQPValue::LongLongInt(0)), 10).await;
        let first = next_delivery(&mut consumer).await;
        if settle == "nack" {
            let options = BasicNackOptions {
                requeue,
                ..Default::default()
            };
            ch.basic_nack(first.delivery_tag, options).await.unwrap();
        } else {
            let options = BasicRejectOptions { requeue };
            ch.basic_reject(first.delivery_tag, options).await.unwrap();
        }
        assert_eq!(
            watch.error().await,
            not_supported_by_streams("basic.nack and basic.reject", &q),
            "{settle} requeue={requeue}"
        );
    }
    // Read again: the same three, none of them redelivered.
    let (_conn, ch) = broker.channel().await;
    let mut consumer = reader(&ch, &q, Some(long_str("first")), 10).await;
    let got = next_deliveries(&mut consumer, 3).await;
    let seen: Vec<(i64, bool)> = got.iter().map(|d| (offset_of(d), d.redelivered)).collect();
    assert_eq!(seen, [(0, false), (1, false), (2, false)]);
    assert_no_delivery(&mut consumer, QUIET).await;
    delete_stream(&broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purging_a_stream_closes_the_connection_with_540() {
    let broker = TestBroker::start();
    let q = filled_stream(&broker, "stream-purge", 2).await;
    let (_conn, ch) = broker.channel().await;
    assert_eq!(
        purge_error(&ch, &q).await,
        not_supported_by_streams("queue.purge", &q)
    );
    // Nothing was removed.
    let (_conn, ch) = broker.channel().await;
    let mut consumer = reader(&ch, &q, Some(long_str("first")), 10).await;
    assert_eq!(read_exactly(&mut consumer, 2).await, numbered(0..2));
    delete_stream(&broker, &q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_stream_offset_is_refused_by_classic_and_quorum_queues() {
    let broker = TestBroker::start();
    for queue_type in ["classic", "quorum"] {
        let (_conn, ch) = broker.channel().await;
        let q = unique("not-a-stream");
        declare_durable_queue_with(&ch, &q, table(vec![("x-queue-type", long_str(queue_type))]))
            .await;
        ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
        assert_eq!(
            consume_error(
                &ch,
                &q,
                BasicConsumeOptions::default(),
                offset_arg(Some(long_str("first")))
            )
            .await,
            precondition_failed(format!(
                "invalid arg 'x-stream-offset' for queue '{q}' in vhost '/' of queue type rabbit_{queue_type}_queue"
            ))
        );
        delete_stream(&broker, &q).await;
    }
}
