//! Prometheus metrics: RabbitMQ's names (every metric warren serves is one RabbitMQ 3.10's
//! `rabbitmq_prometheus` serves, listed in `rabbitmq-prometheus-metrics.txt`), and figures
//! that follow what clients do: queue depths, connections, the global message counters, which
//! never go down when a connection closes.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::*;

const RABBITMQ_METRICS: &str = include_str!("rabbitmq-prometheus-metrics.txt");

/// Every sample of a scrape, by metric name and label text (`""` without labels).
fn scrape(url: &str) -> BTreeMap<(String, String), f64> {
    let text = ureq::get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .body_mut()
        .read_to_string()
        .unwrap();
    let mut samples = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (series, ""),
        };
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        samples.insert((name.to_string(), labels.to_string()), value);
    }
    samples
}

fn value(samples: &BTreeMap<(String, String), f64>, name: &str, labels: &str) -> f64 {
    *samples
        .get(&(name.to_string(), labels.to_string()))
        .unwrap_or_else(|| panic!("no {name}{{{labels}}} in the scrape"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_use_rabbitmqs_names_and_follow_the_clients() {
    let broker = TestBroker::spawn(&[]);
    let base = broker.prometheus_url();
    let known: BTreeSet<&str> = RABBITMQ_METRICS.lines().collect();

    let (conn, ch) = broker.channel().await;
    let queue = declare_tmp_queue(&ch).await;
    ch.confirm_select(lapin::options::ConfirmSelectOptions::default())
        .await
        .unwrap();
    for i in 0..10 {
        let body = format!("m{i}");
        publish_acked(&ch, "", &queue, body.as_bytes(), Default::default()).await;
    }
    for _ in 0..4 {
        let got = get_message(&ch, &queue).await.expect("a message");
        got.ack(lapin::options::BasicAckOptions::default())
            .await
            .unwrap();
    }

    let aggregated = scrape(&format!("{base}/metrics"));
    let per_object = scrape(&format!("{base}/metrics/per-object"));
    for (name, _) in aggregated.keys().chain(per_object.keys()) {
        assert!(
            known.contains(name.as_str()),
            "{name} is not one of RabbitMQ 3.10's metrics"
        );
    }
    let amqp = "protocol=\"amqp091\"";
    assert_eq!(
        value(&aggregated, "rabbitmq_global_messages_received_total", amqp),
        10.0
    );
    assert_eq!(
        value(&aggregated, "rabbitmq_global_messages_routed_total", amqp),
        10.0
    );
    assert_eq!(
        value(
            &aggregated,
            "rabbitmq_global_messages_confirmed_total",
            amqp
        ),
        10.0
    );
    assert_eq!(
        value(
            &aggregated,
            "rabbitmq_global_messages_delivered_total",
            amqp
        ),
        4.0
    );
    assert_eq!(
        value(
            &aggregated,
            "rabbitmq_global_messages_acknowledged_total",
            amqp
        ),
        4.0
    );
    assert_eq!(
        value(
            &aggregated,
            "rabbitmq_global_messages_delivered_get_manual_ack_total",
            amqp
        ),
        4.0
    );
    assert_eq!(
        value(&aggregated, "rabbitmq_queue_messages_published_total", ""),
        10.0
    );
    assert_eq!(value(&aggregated, "rabbitmq_queue_messages_ready", ""), 6.0);
    assert_eq!(value(&aggregated, "rabbitmq_connections", ""), 1.0);
    assert_eq!(value(&aggregated, "rabbitmq_queues", ""), 1.0);
    let labels = format!("vhost=\"/\",queue=\"{queue}\"");
    assert_eq!(
        value(&per_object, "rabbitmq_queue_messages_ready", &labels),
        6.0
    );
    assert_eq!(
        value(
            &per_object,
            "rabbitmq_queue_messages_published_total",
            &labels
        ),
        10.0
    );
    assert!(value(&aggregated, "rabbitmq_process_resident_memory_bytes", "") > 0.0);

    // A closed connection's counts stay in the totals.
    conn.close(200, "done".into()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let after = scrape(&format!("{base}/metrics"));
    assert_eq!(
        value(&after, "rabbitmq_global_messages_received_total", amqp),
        10.0
    );
    assert_eq!(value(&after, "rabbitmq_connections", ""), 0.0);
    assert_eq!(value(&after, "rabbitmq_connections_closed_total", ""), 1.0);
}
