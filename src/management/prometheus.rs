//! Prometheus metrics as RabbitMQ's `rabbitmq_prometheus` plugin serves them: `/metrics`
//! (aggregated) and `/metrics/per-object` (queue figures labelled by vhost and queue), on their
//! own listener (127.0.0.1:15692 by default), without authentication, with RabbitMQ's metric
//! names, so its Grafana dashboards read warren.
//!
//! Everything is read when scraped (prometheus-client encodes a registry built for that scrape):
//! queue and connection figures from the broker, message counters from each channel's and
//! queue's own counters (broker/message_counts.rs), process figures from /proc. Nothing is
//! added to the message path for this.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{Api, State, node_name};
use crate::alarms::{Alarm, disk_free, open_descriptors, resident_memory};

type Labels = Vec<(String, String)>;

/// The metrics routes on `api`.
pub fn app(api: Arc<Api>) -> Router {
    Router::new()
        .route("/metrics", get(aggregated))
        .route("/metrics/per-object", get(per_object))
        .with_state(api)
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(value).unwrap_or(i64::MAX));
    registry.register(name, help, g);
}

/// `name` gets `_total` from the encoder, as OpenMetrics counters do.
fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter = Counter::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

fn info(registry: &mut Registry, name: &str, help: &str, labels: Labels) {
    let family = Family::<Labels, Gauge>::default();
    family.get_or_create(&labels).set(1);
    registry.register(name, help, family);
}

/// Everything but the per-queue figures.
fn node_metrics(api: &Api, registry: &mut Registry) {
    let version = api.config.product_version.clone();
    info(
        registry,
        "rabbitmq_build_info",
        "RabbitMQ & Erlang/OTP version info",
        vec![
            ("rabbitmq_version".into(), version),
            (
                "prometheus_plugin_version".into(),
                env!("CARGO_PKG_VERSION").into(),
            ),
            (
                "prometheus_client_version".into(),
                "prometheus-client".into(),
            ),
            ("erlang_version".into(), "none (warren)".into()),
        ],
    );
    info(
        registry,
        "rabbitmq_identity_info",
        "RabbitMQ node & cluster identity info",
        vec![
            ("rabbitmq_node".into(), node_name()),
            ("rabbitmq_cluster".into(), node_name()),
        ],
    );
    let connections = api.broker.connections.list();
    let channels: u64 = connections
        .iter()
        .map(|c| u64::from(c.channels.load(std::sync::atomic::Ordering::Relaxed)))
        .sum();
    gauge(
        registry,
        "rabbitmq_connections",
        "Connections currently open",
        connections.len() as u64,
    );
    gauge(
        registry,
        "rabbitmq_channels",
        "Channels currently open",
        channels,
    );
    for (name, count) in api.broker.churn.figures() {
        let metric = match name {
            "connection_created" => "rabbitmq_connections_opened",
            "connection_closed" => "rabbitmq_connections_closed",
            "channel_created" => "rabbitmq_channels_opened",
            "channel_closed" => "rabbitmq_channels_closed",
            "queue_declared" => "rabbitmq_queues_declared",
            "queue_created" => "rabbitmq_queues_created",
            _ => "rabbitmq_queues_deleted",
        };
        counter(
            registry,
            metric,
            &format!("Total number of {}", name.replace('_', " ")),
            count,
        );
    }
    // Labelled by protocol, as RabbitMQ labels its global counters.
    let amqp = vec![("protocol".to_string(), "amqp091".to_string())];
    for (name, count) in api.broker.connections.message_totals().prometheus() {
        let family = Family::<Labels, Counter>::default();
        family.get_or_create(&amqp).inc_by(count);
        let help = format!("Total number of messages {}", name.replace('_', " "));
        registry.register(format!("rabbitmq_global_messages_{name}"), help, family);
    }
    let alarm = *api.alarm.borrow();
    let (fds, max_fds) = open_descriptors();
    gauge(
        registry,
        "rabbitmq_process_resident_memory_bytes",
        "Memory used in bytes",
        resident_memory().unwrap_or(0),
    );
    gauge(
        registry,
        "rabbitmq_resident_memory_limit_bytes",
        "Memory high watermark in bytes",
        api.config.memory_limit(),
    );
    gauge(
        registry,
        "rabbitmq_disk_space_available_bytes",
        "Disk space available in bytes",
        disk_free(&api.config.data_dir).unwrap_or(0),
    );
    gauge(
        registry,
        "rabbitmq_disk_space_available_limit_bytes",
        "Free disk space low watermark in bytes",
        api.config.disk_free_limit_bytes,
    );
    gauge(
        registry,
        "rabbitmq_process_open_fds",
        "Open file descriptors",
        fds,
    );
    gauge(
        registry,
        "rabbitmq_process_max_fds",
        "Open file descriptors limit",
        max_fds,
    );
    gauge(
        registry,
        "rabbitmq_alarms_memory_used_watermark",
        "is 1 if VM memory watermark alarm is in effect",
        u64::from(alarm == Some(Alarm::Memory)),
    );
    gauge(
        registry,
        "rabbitmq_alarms_free_disk_space_watermark",
        "is 1 if free disk space watermark alarm is in effect",
        u64::from(alarm == Some(Alarm::Disk)),
    );
    gauge(
        registry,
        "rabbitmq_alarms_file_descriptor_limit",
        "is 1 if file descriptor limit alarm is in effect",
        0,
    );
}

/// One queue's figures: ready, unacknowledged, all, consumers.
fn queue_figures(queue: &crate::broker::queue::Queue) -> [u64; 4] {
    let (ready, unacked) = queue.ready_and_unacked();
    let (ready, unacked) = (u64::from(ready), u64::from(unacked));
    [
        ready,
        unacked,
        ready + unacked,
        u64::from(queue.consumer_count()),
    ]
}

const QUEUE_METRICS: [(&str, &str); 4] = [
    (
        "rabbitmq_queue_messages_ready",
        "Messages ready to be delivered to consumers",
    ),
    (
        "rabbitmq_queue_messages_unacked",
        "Messages delivered to consumers but not yet acknowledged",
    ),
    (
        "rabbitmq_queue_messages",
        "Sum of ready and unacknowledged messages - total queue depth",
    ),
    ("rabbitmq_queue_consumers", "Consumers on a queue"),
];

fn respond(registry: &Registry) -> axum::response::Response {
    let mut text = String::new();
    if encode(&mut text, registry).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn aggregated(state: State) -> axum::response::Response {
    let api = state.0;
    let mut registry = Registry::default();
    node_metrics(&api, &mut registry);
    let mut sums = [0u64; 4];
    let mut queues = 0u64;
    let mut consumers = 0u64;
    let mut published = 0u64;
    for vhost in api.broker.vhosts() {
        for queue in vhost.queues() {
            let figures = queue_figures(&queue);
            queues += 1;
            published += queue.counts.figures().publish;
            consumers += figures[3];
            for (sum, figure) in sums.iter_mut().zip(figures) {
                *sum += figure;
            }
        }
    }
    gauge(&mut registry, "rabbitmq_queues", "Queues available", queues);
    gauge(
        &mut registry,
        "rabbitmq_consumers",
        "Consumers currently connected",
        consumers,
    );
    for ((name, help), sum) in QUEUE_METRICS.iter().zip(sums) {
        gauge(&mut registry, name, help, sum);
    }
    let (name, help) = QUEUE_PUBLISHED;
    counter(&mut registry, name, help, published);
    respond(&registry)
}

/// The one per-queue message counter RabbitMQ 3.10's plugin has (`_total` added on encoding).
const QUEUE_PUBLISHED: (&str, &str) = (
    "rabbitmq_queue_messages_published",
    "Total number of messages published to queues",
);

async fn per_object(state: State) -> axum::response::Response {
    let api = state.0;
    let mut registry = Registry::default();
    node_metrics(&api, &mut registry);
    let families: [Family<Labels, Gauge>; 4] = Default::default();
    let published = Family::<Labels, Counter>::default();
    for vhost in api.broker.vhosts() {
        for queue in vhost.queues() {
            let labels = vec![
                ("vhost".to_string(), vhost.name.to_string()),
                ("queue".to_string(), queue.name.to_string()),
            ];
            for (family, figure) in families.iter().zip(queue_figures(&queue)) {
                family
                    .get_or_create(&labels)
                    .set(i64::try_from(figure).unwrap_or(i64::MAX));
            }
            published
                .get_or_create(&labels)
                .inc_by(queue.counts.figures().publish);
        }
    }
    for ((name, help), family) in QUEUE_METRICS.iter().zip(families) {
        registry.register(*name, *help, family);
    }
    let (name, help) = QUEUE_PUBLISHED;
    registry.register(name, help, published);
    respond(&registry)
}
