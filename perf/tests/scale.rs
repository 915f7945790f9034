//! Tests of the scale-curve flags (issue #16) against the real warren binary (see `common`):
//! `--declare-queues` (pipelined declares, and a channel closed by the broker reported as an
//! error). Small N, bounded to seconds; counts only, no timing assertions.

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
