//! Tests of the scale-curve flags (issue #16) against the real warren binary (see `common`):
//! `--declare-queues` (pipelined declares, and a channel closed by the broker reported as an
//! error), `--topic-bindings` (every routing key routed to the queue, and the flag refused
//! without a topic exchange) and `--idle-channels` (every channel of every idle connection
//! open). Small N, bounded to seconds; counts only, no timing assertions.

mod common;

use amq_protocol::protocol::{AMQPClass, queue};
use amq_protocol::types::FieldTable;
use common::Broker;
use warren_perf::client::{CHANNEL, Conn};
use warren_perf::config::{parse_uri, short_str};

/// Whether `name` exists on the broker (a passive queue.declare on a fresh connection).
async fn queue_exists(broker: &Broker, name: &str) -> bool {
    let uri = parse_uri(&format!("amqp://guest:guest@{}/%2f", broker.addr)).expect("uri");
    let mut conn = Conn::open(&uri).await.expect("connect");
    let declare = queue::Declare {
        queue: short_str(name).expect("short name"),
        passive: true,
        durable: false,
        exclusive: false,
        auto_delete: false,
        nowait: false,
        arguments: FieldTable::default(),
    };
    let reply = conn
        .call(
            AMQPClass::Queue(queue::AMQPMethod::Declare(declare)),
            CHANNEL,
        )
        .await;
    conn.close().await;
    matches!(reply, Ok(AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_queues_pipelined_and_left_in_place() {
    let broker = Broker::start("declare");
    let config = broker.config(&[
        "--declare-queues",
        "200",
        "--declare-channels",
        "3",
        "--durable",
        "--queue-args",
        "x-max-length=1000",
        "--json",
    ]);
    config.validate().expect("valid");
    let summary = warren_perf::declare::run(&config)
        .await
        .expect("declare run");
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!(
        (summary.mode, summary.requested, summary.declared),
        ("declare-queues", 200, 200)
    );
    assert!(summary.declare_secs > 0.0 && summary.declare_rate > 0.0);
    for name in ["bench-s1-0", "bench-s1-199"] {
        assert!(queue_exists(&broker, name).await, "{name} missing");
    }
    assert!(!queue_exists(&broker, "bench-s1-200").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declare_queues_reports_a_closed_channel_as_an_error() {
    // The same names again with other arguments: the broker refuses them (inequivalent
    // argument) and closes the channels; that is an error string, not a panic.
    let broker = Broker::start("declare-refused");
    let first = ["--declare-queues", "100", "--queue-pattern", "dq-%d"];
    let plain = warren_perf::declare::run(&broker.config(&first))
        .await
        .expect("declare run");
    assert!(plain.ok(), "{plain:?}");
    let again = [&first[..], &["--queue-args", "x-max-length=5"]].concat();
    let refused = warren_perf::declare::run(&broker.config(&again))
        .await
        .expect("declare run");
    assert!(!refused.ok());
    assert!(refused.declared < 100, "{refused:?}");
    assert!(
        refused.errors.iter().any(|e| e.contains("channel")),
        "{:?}",
        refused.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_bindings_route_every_key_to_the_queue() {
    // 300 patterns, two producers at 500 msg/s each for 2 s: every key is used, and a message
    // no binding routed would be missing from what the consumer got.
    let broker = Broker::start("topic");
    let config = broker.config(&[
        "--exchange",
        "scale-topic",
        "--exchange-type",
        "topic",
        "--queue",
        "scale-topic-q",
        "--topic-bindings",
        "300",
        "--declare-channels",
        "4",
        "--producers",
        "2",
        "--consumers",
        "1",
        "--rate",
        "500",
        "--pmessages",
        "1000",
        "--confirm",
        "100",
        "--json",
    ]);
    let summary = warren_perf::run(config).await.expect("run");
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!(
        (summary.published, summary.confirmed, summary.consumed),
        (2000, 2000, 2000)
    );
    let b = summary
        .topic_bindings
        .clone()
        .expect("bindings in the summary");
    assert_eq!(b.bindings, 300);
    assert!(b.bind_secs > 0.0 && b.bind_rate > 0.0);
    let json = serde_json::to_value(&summary).expect("json");
    assert_eq!(json["bindings"], 300);
    assert!(json["bind_secs"].is_f64() && json["bind_rate"].is_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_bindings_need_a_topic_exchange_and_one_queue() {
    let broker = Broker::start("topic-refused");
    let direct = broker.config(&["--exchange", "x", "--queue", "q", "--topic-bindings", "10"]);
    let e = warren_perf::run(direct)
        .await
        .expect_err("a direct exchange");
    assert!(e.0.contains("topic exchange"), "{e}");
    let plain = broker.config(&["--topic-bindings", "10"]);
    assert!(warren_perf::run(plain).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_open_each_of_their_channels() {
    let broker = Broker::start("idle-channels");
    let config = broker.config(&[
        "--idle-connections",
        "50",
        "--idle-channels",
        "2",
        "--hold",
        "0.3",
    ]);
    config.validate().expect("valid");
    let summary = warren_perf::idle::run(&config).await.expect("idle run");
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!(
        (summary.requested, summary.opened, summary.lost),
        (50, 50, 0)
    );
    assert_eq!(summary.channels_per_connection, 2);
    let json = serde_json::to_value(&summary).expect("json");
    assert_eq!(json["channels_per_connection"], 2);
}
