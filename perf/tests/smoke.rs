//! Smoke tests of warren-perf against the real warren binary: a plain publish → consume run,
//! a confirm-mode run with persistent messages on a durable queue, per-consumer counts with
//! consumer arguments, and the message shapes of bench/compare's P5S: priorities with the
//! drain's order checks, per-message expiration, and connection.blocked under a memory alarm.
//! Counts only, no timing assertions. The broker binary is `<workspace target>/debug/warren`,
//! built on demand.

mod common;

use common::Broker;
use warren_perf::{Config, Summary};

async fn run(config: Config) -> Summary {
    warren_perf::run(config).await.expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_consume_5000() {
    let broker = Broker::start("plain");
    let summary = run(broker.config(&[
        "--producers",
        "1",
        "--consumers",
        "1",
        "--pmessages",
        "5000",
        "--queue",
        "smoke-plain",
        "--auto-ack",
    ]))
    .await;
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!(summary.published, 5000);
    assert_eq!(summary.consumed, 5000);
    assert_eq!(summary.latency.count, 5000);
    assert!(summary.confirm_latency.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirms_persistent_durable_2000() {
    let broker = Broker::start("confirm");
    let summary = run(broker.config(&[
        "--producers",
        "1",
        "--consumers",
        "1",
        "--pmessages",
        "2000",
        "--queue",
        "smoke-confirm",
        "--confirm",
        "100",
        "--persistent",
        "--durable",
        "--prefetch",
        "500",
        "--multi-ack-every",
        "50",
        "--size",
        "256",
    ]))
    .await;
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!(summary.published, 2000);
    assert_eq!(summary.confirmed, 2000);
    assert_eq!(summary.nacked, 0);
    assert_eq!(summary.consumed, 2000);
    assert_eq!(summary.latency.count, 2000);
    assert_eq!(summary.confirm_latency.map(|c| c.count), Some(2000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_measures_the_tool_alone() {
    let config = Config::from_args([
        "warren-perf",
        "--sink",
        "--quiet",
        "--consumers",
        "0",
        "--pmessages",
        "20000",
        "--confirm",
        "1000",
    ])
    .expect("valid flags");
    let summary = run(config).await;
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!((summary.published, summary.confirmed), (20000, 20000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_drains_with_a_small_prefetch() {
    // Deliveries that arrive in the same read as consume-ok must not wait for more bytes.
    let broker = Broker::start("backlog");
    let fill = run(broker.config(&[
        "--consumers",
        "0",
        "--pmessages",
        "300",
        "--queue",
        "smoke-backlog",
    ]))
    .await;
    assert_eq!(fill.published, 300);
    let drain = run(broker.config(&[
        "--producers",
        "0",
        "--cmessages",
        "300",
        "--prefetch",
        "50",
        "--multi-ack-every",
        "10",
        "--queue",
        "smoke-backlog",
    ]))
    .await;
    assert!(drain.errors.is_empty(), "{:?}", drain.errors);
    assert_eq!((drain.consumed, drain.latency.count), (300, 300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_consumer_stops_at_its_count_and_reports_its_rate() {
    // Fanout to two streams, one consumer on each from the first entry: both see every
    // message. (x-stream-offset on a classic queue is refused, as RabbitMQ refuses it.)
    let broker = Broker::start("per-consumer");
    let summary = run(broker.config(&[
        "--queue-type",
        "stream",
        "--durable",
        "--producers",
        "1",
        "--consumers",
        "2",
        "--exchange",
        "smoke-fan",
        "--exchange-type",
        "fanout",
        "--queue-pattern",
        "smoke-fan-%d",
        "--queues",
        "2",
        "--pmessages",
        "3000",
        "--confirm",
        "500",
        "--consume-count",
        "1000",
        "--prefetch",
        "200",
        "--multi-ack-every",
        "50",
        "--stream-offset",
        "first",
        "--consumer-args",
        "x-priority=1",
    ]))
    .await;
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    let per: Vec<(usize, u64)> = summary
        .consumers
        .iter()
        .map(|c| (c.id, c.consumed))
        .collect();
    assert_eq!(per, [(0, 1000), (1, 1000)]);
    assert_eq!(summary.consumed, 2000);
    assert!(summary.consumers.iter().all(|c| c.consume_rate > 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_open_hold_and_close() {
    let broker = Broker::start("idle");
    let config = broker.config(&["--idle-connections", "200", "--hold", "0.3"]);
    let summary = warren_perf::idle::run(&config).await.expect("idle run");
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert_eq!(
        (summary.requested, summary.opened, summary.lost),
        (200, 200, 0)
    );
    assert!(summary.hold_secs >= 0.3);
}

/// No connection.blocked from a broker without an alarm, and no order checks broken.
fn assert_clean(summary: &Summary) {
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert!(!summary.blocked, "blocked: {:?}", summary.blocked_reason);
    assert_eq!(summary.blocked_count, 0);
    assert_eq!(summary.order_violations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_backlog_drains_highest_first_and_in_order() {
    let broker = Broker::start("priorities");
    let fill = run(broker.config(&[
        "--producers",
        "2",
        "--consumers",
        "0",
        "--pmessages",
        "1000",
        "--priorities",
        "10",
        "--queue",
        "smoke-prio",
        "--queue-args",
        "x-max-priority=10",
        "--durable",
        "--persistent",
        "--confirm",
        "200",
        "--size",
        "1024",
    ]))
    .await;
    assert_clean(&fill);
    assert_eq!(fill.confirmed, 2000);
    let drain = run(broker.config(&[
        "--producers",
        "0",
        "--predeclared",
        "--queue",
        "smoke-prio",
        "--prefetch",
        "100",
        "--multi-ack-every",
        "50",
        "--cmessages",
        "2000",
    ]))
    .await;
    assert_clean(&drain);
    assert_eq!(drain.consumed, 2000);
    assert_eq!(drain.priority_inversions, 0);

    // The same messages through a queue without x-max-priority come first in, first out: the
    // priority check sees the cycle rise again and again, the order check is still clean.
    let fifo = run(broker.config(&[
        "--producers",
        "1",
        "--consumers",
        "0",
        "--pmessages",
        "100",
        "--priorities",
        "10",
        "--queue",
        "smoke-prio-fifo",
        "--confirm",
        "100",
    ]))
    .await;
    assert_clean(&fifo);
    let drain = run(broker.config(&[
        "--producers",
        "0",
        "--predeclared",
        "--queue",
        "smoke-prio-fifo",
        "--cmessages",
        "100",
    ]))
    .await;
    assert_clean(&drain);
    assert_eq!(drain.priority_inversions, 90);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_messages_are_not_delivered() {
    let broker = Broker::start("expiration");
    let queue = [
        "--queue",
        "smoke-ttl",
        "--consumers",
        "0",
        "--confirm",
        "100",
    ];
    let short =
        run(broker.config(&[&queue[..], &["--pmessages", "100", "--expiration", "1"]].concat()))
            .await;
    assert_clean(&short);
    assert_eq!(short.confirmed, 100);
    let long = run(
        broker.config(&[&queue[..], &["--pmessages", "50", "--expiration", "600000"]].concat())
    )
    .await;
    assert_eq!(long.confirmed, 50);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // Everything that is left within two seconds: only the 50 with an hour to live.
    let drain = run(broker.config(&[
        "--producers",
        "0",
        "--predeclared",
        "--queue",
        "smoke-ttl",
        "--time",
        "2",
    ]))
    .await;
    assert_clean(&drain);
    assert_eq!(drain.consumed, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_blocked_is_reported() {
    // A 1-byte memory limit: the alarm is on from the start. The publisher is blocked after
    // its first publishes (those read before the pause are confirmed) and stays blocked until
    // the run ends, waiting for the confirms of what the broker no longer reads.
    let broker = Broker::start_with_config("blocked", "memory_limit_bytes = 1\n");
    let summary = run(broker.config(&[
        "--producers",
        "1",
        "--consumers",
        "0",
        "--confirm",
        "10",
        "--queue",
        "smoke-blocked",
        "--time",
        "2",
    ]))
    .await;
    assert!(summary.errors.is_empty(), "{:?}", summary.errors);
    assert!(summary.blocked);
    assert_eq!((summary.blocked_count, summary.unblocked_count), (1, 0));
    assert_eq!(summary.blocked_reason.as_deref(), Some("low on memory"));
    assert!(summary.blocked_secs > 1.0, "{}", summary.blocked_secs);
    assert!(summary.confirmed < summary.published);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_header_mode_holds_then_delivers() {
    let broker = Broker::start("delayed-header");
    let summary = run(broker.config(&[
        "--producers",
        "2",
        "--pmessages",
        "100",
        "--queue",
        "smoke-delayed",
        "--exchange",
        "smoke-later",
        "--exchange-type",
        "x-delayed-message",
        "--durable",
        "--persistent",
        "--confirm",
        "50",
        "--size",
        "64",
        "--delays",
        "300,600",
    ]))
    .await;
    assert_clean(&summary);
    assert_eq!((summary.confirmed, summary.consumed), (200, 200));
    let d = summary.delayed.expect("delayed summary");
    assert_eq!((d.count, d.early), (200, 0));
    // Plain latency excludes delayed messages.
    assert_eq!(summary.latency.count, 0);
    // The run waited for the 600 ms ones.
    assert!(summary.duration_secs >= 0.6, "{}", summary.duration_secs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_ttl_queues_dead_letter_into_the_queue() {
    let broker = Broker::start("delayed-ttl");
    let summary = run(broker.config(&[
        "--pmessages",
        "100",
        "--queue",
        "smoke-ttlq",
        "--delay-mode",
        "ttl-queues",
        "--size",
        "24",
        "--delays",
        "200,400,200",
    ]))
    .await;
    assert_clean(&summary);
    assert_eq!(summary.consumed, 100);
    let d = summary.delayed.expect("delayed summary");
    assert_eq!((d.count, d.early), (100, 0));
}
