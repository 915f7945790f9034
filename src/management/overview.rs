//! `/api/overview` and `/api/extensions`: what the node is (RabbitMQ's version it behaves as,
//! its listeners) and totals over the objects the caller may see: message counts and rates of
//! the vhosts they see (connections that closed included), queue lengths, object counts.

use std::sync::Arc;

use axum::Json;
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::auth::{Caller, Level};
use super::json::with_rate;
use super::message_stats::{self, QUEUE_LENGTHS};
use super::rates::{Key, RateSet};
use super::{Api, State, node_name};
use crate::broker::message_counts::MessageFigures;

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/overview", get(overview))
        // No management plugins to extend the UI with.
        .route(
            "/api/extensions",
            get(|_caller: Caller| async { Json(json!([])) }),
        )
}

pub fn exchange_types() -> Value {
    let types = [
        (
            "direct",
            "AMQP direct exchange, as per the AMQP specification",
        ),
        (
            "fanout",
            "AMQP fanout exchange, as per the AMQP specification",
        ),
        (
            "headers",
            "AMQP headers exchange, as per the AMQP specification",
        ),
        (
            "topic",
            "AMQP topic exchange, as per the AMQP specification",
        ),
    ];
    types
        .iter()
        .map(|(name, description)| json!({"name": name, "description": description, "enabled": true}))
        .collect()
}

pub fn listeners(api: &Api) -> Value {
    let node = node_name();
    let plain = api.amqp.iter().map(|a| ("amqp", a));
    let tls = api.amqps.iter().map(|a| ("amqp/ssl", a));
    let http = std::iter::once(("http", &api.http));
    plain
        .chain(tls)
        .chain(http)
        .map(|(protocol, addr)| {
            json!({
                "node": node,
                "protocol": protocol,
                "ip_address": addr.ip().to_string(),
                "port": addr.port(),
                "socket_opts": socket_opts(protocol),
            })
        })
        .collect()
}

/// The listener options RabbitMQ shows, as they are on warren's sockets.
fn socket_opts(protocol: &str) -> Value {
    match protocol {
        "http" => json!({"cowboy_opts": {"sendfile": false}}),
        _ => {
            json!({"backlog": 1024, "nodelay": true, "linger": [false, 0], "exit_on_close": false})
        }
    }
}

/// Connections, channels and queues created and gone since the start, with their rates.
pub fn churn_rates(api: &Api) -> Map<String, Value> {
    let rates = api.rates.of(Key::NODE);
    let mut out = Map::new();
    for (key, count) in api.broker.churn.figures() {
        with_rate(&mut out, key, count, rates.rate(key));
    }
    out
}

async fn overview(state: State, caller: Caller) -> Json<Value> {
    let api = state.0;
    let version = &api.config.product_version;
    let (mut queues, mut exchanges, mut consumers) = (0u64, 0u64, 0u64);
    let (mut ready, mut unacked) = (0u64, 0u64);
    let messages_by_vhost = api.broker.connections.message_totals_by_vhost();
    let mut messages = MessageFigures::default();
    let mut rates = RateSet::default();
    for vhost in api.broker.vhosts() {
        if !caller.sees_vhost(&api, &vhost.name) {
            continue;
        }
        if let Some(figures) = messages_by_vhost.get(vhost.name.as_ref()) {
            messages.add(figures);
        }
        rates.add(&api.rates.of(Key::of(&*vhost)));
        exchanges += vhost.exchange_count() as u64;
        for queue in vhost.queues() {
            queues += 1;
            let (r, u) = queue.ready_and_unacked();
            ready += u64::from(r);
            unacked += u64::from(u);
            consumers += u64::from(queue.consumer_count());
        }
    }
    let connections = api
        .broker
        .connections
        .list()
        .into_iter()
        .filter(|c| caller.is(Level::Monitoring) || c.user == caller.name())
        .collect::<Vec<_>>();
    let channels: u64 = connections
        .iter()
        .map(|c| u64::from(c.channels.load(std::sync::atomic::Ordering::Relaxed)))
        .sum();
    let mut queue_totals = Map::new();
    for (name, length) in QUEUE_LENGTHS
        .into_iter()
        .zip([ready + unacked, ready, unacked])
    {
        with_rate(&mut queue_totals, name, length, rates.rate(name));
    }
    let stats = message_stats::channel(&messages, &rates).unwrap_or_else(|| json!({}));
    Json(json!({
        "management_version": version,
        "rates_mode": "basic",
        "release_series_support_status": "supported",
        "sample_retention_policies": {
            "global": [600, 3600, 28800, 86400],
            "basic": [600, 3600],
            "detailed": [600],
        },
        "exchange_types": exchange_types(),
        "product_version": version,
        "product_name": api.config.product,
        "rabbitmq_version": version,
        "cluster_name": node_name(),
        "erlang_version": "none (warren)",
        "erlang_full_version": concat!("warren ", env!("CARGO_PKG_VERSION")),
        "disable_stats": false,
        "enable_queue_totals": false,
        "message_stats": stats,
        "churn_rates": churn_rates(&api),
        "queue_totals": queue_totals,
        "object_totals": {
            "channels": channels,
            "connections": connections.len(),
            "consumers": consumers,
            "exchanges": exchanges,
            "queues": queues,
        },
        "statistics_db_event_queue": 0,
        "node": node_name(),
        "listeners": listeners(&api),
        "contexts": contexts(&api),
    }))
}

/// The HTTP listeners (RabbitMQ's "contexts"): the management API's own.
pub fn contexts(api: &Api) -> Value {
    json!([{
        "ssl_opts": [],
        "node": node_name(),
        "description": "RabbitMQ Management",
        "path": "/",
        "ip": api.http.ip().to_string(),
        "port": api.http.port().to_string(),
        "cowboy_opts": "[{sendfile,false}]",
    }])
}
