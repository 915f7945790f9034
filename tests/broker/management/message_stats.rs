//! Message counts and rates in the management API, as RabbitMQ 3.10 reports them: a queue's,
//! an exchange's, a channel's and the overview's `message_stats` count exactly what clients
//! did (connections that closed stay in the overview), objects without traffic show none, and
//! the rates beside them follow a steady publisher and fall back to 0 when it stops.
//!
//! Both tests also run against the reference broker (`WARREN_TEST_AMQP_URL`), which shows its
//! counts at its next statistics emission, every 5 s.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lapin::options::{BasicAckOptions, BasicRejectOptions, ConfirmSelectOptions};
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use serde_json::{Value, json};

use crate::common::http::{Http, path_segment};
use crate::common::*;

/// RabbitMQ's statistics interval: every rate is over one, and the reference broker shows
/// what happened at the end of one.
const INTERVAL: Duration = Duration::from_secs(5);

async fn named_connection(broker: &TestBroker, name: &str) -> Connection {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    tokio::time::timeout(WAIT, Connection::connect(&broker.uri(), properties))
        .await
        .expect("connect timed out")
        .expect("connect")
}

/// Lets the reference broker emit what it counted (warren's counts are read live).
async fn counted() {
    if external() {
        tokio::time::sleep(INTERVAL + Duration::from_secs(1)).await;
    }
}

fn get(http: &Http, path: &str) -> Value {
    let answer = http.get(path);
    assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
    answer.body
}

/// The management API's name of the connection the client named `name`.
fn connection_named(http: &Http, name: &str) -> String {
    let connections = get(http, "/api/connections");
    let found = connections
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["user_provided_name"] == name)
        .unwrap_or_else(|| panic!("no connection named {name} in {connections}"));
    found["name"].as_str().unwrap().to_string()
}

/// The one channel of the connection the client named `name`.
fn channel_of(http: &Http, name: &str) -> Value {
    let connection = path_segment(&connection_named(http, name));
    let channels = get(http, &format!("/api/connections/{connection}/channels"));
    assert_eq!(channels.as_array().unwrap().len(), 1, "{channels}");
    channels[0].clone()
}

/// RabbitMQ's message store reads and writes, in its overview: warren does not keep them.
const NOT_KEPT: [&str; 2] = ["disk_reads", "disk_writes"];

/// The counters of a `message_stats`, without their rates (each of which must be there).
fn counters(stats: &Value) -> BTreeMap<String, u64> {
    let stats = stats
        .as_object()
        .unwrap_or_else(|| panic!("message_stats is not an object: {stats}"));
    stats
        .iter()
        .filter(|(key, _)| !key.ends_with("_details") && !NOT_KEPT.contains(&key.as_str()))
        .map(|(key, value)| {
            assert!(
                stats[&format!("{key}_details")]["rate"].is_f64(),
                "{key} has no rate in {stats:?}"
            );
            (key.clone(), value.as_u64().unwrap())
        })
        .collect()
}

fn expected(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// What the overview's counters grew by since `before`, leaving out those that did not.
fn overview_growth(http: &Http, before: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    counters(&get(http, "/api/overview")["message_stats"])
        .into_iter()
        .map(|(key, now)| {
            let grown = now - before.get(&key).copied().unwrap_or(0);
            (key, grown)
        })
        .filter(|(_, grown)| *grown > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_stats_count_what_clients_did_per_queue_exchange_channel_and_node() {
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let before = counters(&get(&http, "/api/overview")["message_stats"]);
    let (exchange, queue) = (unique("ms-x"), unique("ms-q"));
    let (idle_exchange, idle_queue) = (unique("ms-idle-x"), unique("ms-idle-q"));
    let (publisher_name, consumer_name) = (unique("ms-publisher"), unique("ms-consumer"));

    let publisher = named_connection(&broker, &publisher_name).await;
    let pch = publisher.create_channel().await.unwrap();
    declare_exchange(&pch, &exchange, ExchangeKind::Direct).await;
    declare_exchange(&pch, &idle_exchange, ExchangeKind::Direct).await;
    declare_queue(&pch, &queue).await;
    declare_queue(&pch, &idle_queue).await;
    bind_queue(&pch, &queue, &exchange, "k").await;
    pch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    for i in 0..10 {
        let body = format!("m{i}");
        publish_acked(&pch, &exchange, "k", body.as_bytes(), Default::default()).await;
    }
    for _ in 0..2 {
        let returned =
            publish_mandatory_confirmed(&pch, &exchange, "nowhere", b"r", Default::default()).await;
        assert!(returned.is_ack());
    }
    for _ in 0..3 {
        publish_acked(&pch, &exchange, "nowhere", b"d", Default::default()).await;
    }

    let consumer = named_connection(&broker, &consumer_name).await;
    let cch = consumer.create_channel().await.unwrap();
    for _ in 0..2 {
        let got = get_message(&cch, &queue).await.expect("a message");
        got.ack(BasicAckOptions::default()).await.unwrap();
    }
    get_message_no_ack(&cch, &queue).await.expect("a message");
    let got = get_message(&cch, &queue).await.expect("a message");
    got.reject(BasicRejectOptions { requeue: true })
        .await
        .unwrap();
    let again = get_message(&cch, &queue)
        .await
        .expect("the requeued message");
    assert!(again.delivery.redelivered);
    again.ack(BasicAckOptions::default()).await.unwrap();
    let mut deliveries = consume_from(&cch, &queue).await;
    for delivery in next_deliveries(&mut deliveries, 6).await {
        delivery.ack(BasicAckOptions::default()).await.unwrap();
    }
    assert!(get_message(&cch, &queue).await.is_none());
    sync(&cch).await;
    counted().await;

    let delivering = [
        ("ack", 9),
        ("deliver", 6),
        ("deliver_get", 11),
        ("deliver_no_ack", 0),
        ("get", 4),
        ("get_empty", 1),
        ("get_no_ack", 1),
        ("redeliver", 1),
    ];
    let shown = get(&http, &format!("/api/queues/%2F/{queue}"));
    let mut of_queue = expected(&delivering);
    of_queue.insert("publish".into(), 10);
    assert_eq!(counters(&shown["message_stats"]), of_queue, "{shown}");
    let shown = get(&http, &format!("/api/exchanges/%2F/{exchange}"));
    assert_eq!(
        counters(&shown["message_stats"]),
        expected(&[("publish_in", 15), ("publish_out", 10)]),
        "{shown}"
    );
    for idle in [
        format!("/api/queues/%2F/{idle_queue}"),
        format!("/api/exchanges/%2F/{idle_exchange}"),
    ] {
        let shown = get(&http, &idle);
        assert!(shown.get("message_stats").is_none(), "{shown}");
    }
    let publishing = [
        ("publish", 15),
        ("confirm", 15),
        ("return_unroutable", 2),
        ("drop_unroutable", 3),
    ];
    let shown = channel_of(&http, &publisher_name);
    assert_eq!(
        counters(&shown["message_stats"]),
        expected(&publishing),
        "{shown}"
    );
    let shown = channel_of(&http, &consumer_name);
    assert_eq!(
        counters(&shown["message_stats"]),
        expected(&delivering),
        "{shown}"
    );
    // RabbitMQ counts on channels: a connection has no message_stats.
    let connection = path_segment(&connection_named(&http, &publisher_name));
    let shown = get(&http, &format!("/api/connections/{connection}"));
    assert!(shown.get("message_stats").is_none(), "{shown}");
    assert!(shown["recv_oct_details"]["rate"].is_f64(), "{shown}");

    let mut node = expected(&publishing);
    node.extend(expected(&delivering));
    node.remove("deliver_no_ack");
    assert_grew_by(&overview_growth(&http, &before), &node);
    // Closed connections stay in the node's totals.
    publisher.close(200, "done".into()).await.unwrap();
    consumer.close(200, "done".into()).await.unwrap();
    counted().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_grew_by(&overview_growth(&http, &before), &node);
}

/// The node's counters grew by exactly `expected`; at least that on a reference broker that
/// other tests share.
fn assert_grew_by(grown: &BTreeMap<String, u64>, expected: &BTreeMap<String, u64>) {
    if !external() {
        assert_eq!(grown, expected);
        return;
    }
    for (key, n) in expected {
        assert!(grown.get(key).is_some_and(|g| g >= n), "{key}: {grown:?}");
    }
}

/// Polls `path` until `accept` takes it, for at most two intervals and a second: by then the
/// rates cover a whole interval of what the test did.
fn poll(http: &Http, path: &str, what: &str, accept: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + 2 * INTERVAL + Duration::from_secs(1);
    loop {
        let shown = get(http, path);
        if accept(&shown) {
            return shown;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {path} still shows {shown}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn rate(shown: &Value, pointer: &str) -> f64 {
    shown
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_follow_a_steady_publisher_and_fall_back_to_zero_when_it_stops() {
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let queue = unique("rates-q");
    let name = unique("rates-publisher");
    let connection = named_connection(&broker, &name).await;
    let ch = connection.create_channel().await.unwrap();
    declare_queue(&ch, &queue).await;
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = tokio::spawn({
        let (ch, queue, stop) = (ch.clone(), queue.clone(), stop.clone());
        async move {
            // About 50 messages a second, none consumed: the queue grows as steadily.
            while !stop.load(Ordering::Relaxed) {
                publish(&ch, "", &queue, b"tick").await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let queue_path = format!("/api/queues/%2F/{queue}");
    let publish_rate = "/message_stats/publish_details/rate";
    let growing = |path: &str, pointer: &str| {
        poll(&http, path, pointer, |shown| rate(shown, pointer) > 0.0);
    };
    // The HTTP client blocks: off the runtime's workers, which the publisher needs.
    tokio::task::block_in_place(|| {
        growing(&queue_path, publish_rate);
        growing(&queue_path, "/messages_details/rate");
        growing("/api/overview", publish_rate);
        growing("/api/overview", "/queue_totals/messages_ready_details/rate");
        growing(
            "/api/exchanges/%2F/amq.default",
            "/message_stats/publish_in_details/rate",
        );
        let connection = path_segment(&connection_named(&http, &name));
        growing(
            &format!("/api/connections/{connection}"),
            "/recv_oct_details/rate",
        );
        let channels = format!("/api/connections/{connection}/channels");
        growing(&channels, &format!("/0{publish_rate}"));
    });
    stop.store(true, Ordering::Relaxed);
    publishing.await.unwrap();
    tokio::task::block_in_place(|| {
        let still = |path: &str, pointer: &str| {
            poll(&http, path, pointer, |shown| rate(shown, pointer) == 0.0);
        };
        still(&queue_path, publish_rate);
        still(&queue_path, "/messages_details/rate");
        still("/api/overview", publish_rate);
    });
}

#[test]
fn the_overview_counts_the_vhosts_the_caller_sees_and_the_apis_own_publishes() {
    let broker = TestBroker::start();
    let http = Http::new(&broker.management_url());
    let (vhost, user, queue) = (unique("ms-seen"), unique("ms-watcher"), unique("ms-q"));
    assert_eq!(
        http.put(&format!("/api/vhosts/{vhost}"), &json!({})).status,
        201
    );
    let watcher = json!({"password": "w", "tags": "management"});
    assert_eq!(
        http.put(&format!("/api/users/{user}"), &watcher).status,
        201
    );
    let all = json!({"configure": ".*", "write": ".*", "read": ".*"});
    let permissions = format!("/api/permissions/{vhost}/{user}");
    assert_eq!(http.put(&permissions, &all).status, 201);
    let publish = |vhost: &str| {
        let body = json!({"properties": {}, "routing_key": queue, "payload": "x",
                          "payload_encoding": "string"});
        let path = format!("/api/exchanges/{vhost}/amq.default/publish");
        let answer = http.call("POST", &path, "guest", "guest", Some(&body.to_string()));
        assert_eq!(answer.body, json!({"routed": true}));
    };
    for v in ["%2F", vhost.as_str()] {
        let path = format!("/api/queues/{v}/{queue}");
        assert_eq!(http.put(&path, &json!({})).status, 201);
    }
    let before = counters(&get(&http, "/api/overview")["message_stats"]);
    publish("%2F");
    publish(&vhost);
    publish(&vhost);
    if external() {
        std::thread::sleep(INTERVAL + Duration::from_secs(1));
    }
    // The watcher sees its vhost only; RabbitMQ's API publishes in confirm mode.
    let seen = http.call("GET", "/api/overview", &user, "w", None).body;
    assert_eq!(
        counters(&seen["message_stats"]),
        expected(&[
            ("publish", 2),
            ("confirm", 2),
            ("return_unroutable", 0),
            ("drop_unroutable", 0),
        ]),
        "{seen}"
    );
    let grown = overview_growth(&http, &before);
    assert_grew_by(&grown, &expected(&[("publish", 3), ("confirm", 3)]));
    http.delete(&format!("/api/queues/%2F/{queue}"));
    http.delete(&format!("/api/vhosts/{vhost}"));
    http.delete(&format!("/api/users/{user}"));
}
