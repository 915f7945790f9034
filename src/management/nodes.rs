//! `/api/nodes`: this one node, with the figures RabbitMQ's node page and `rabbitmqadmin list
//! nodes` read (memory, disk, descriptors, uptime), measured on the spot.

use std::sync::Arc;

use axum::Json;
use axum::extract::Path;
use axum::routing::get;
use serde_json::{Value, json};

use super::auth::{Caller, Level};
use super::error::{ApiError, ApiResult};
use super::overview::{churn_rates, contexts, exchange_types, listeners};
use super::rates::{Key, NODE_GAUGES};
use super::{Api, State, node_name};
use crate::alarms::{Alarm, disk_free, open_descriptors, resident_memory};

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/nodes", get(list))
        .route("/api/nodes/{name}", get(show))
}

fn node_json(api: &Api) -> Value {
    let mut out = node_figures(api);
    let rates = api.rates.of(Key::NODE);
    if let Value::Object(map) = &mut out {
        // The figures RabbitMQ shows with a rate beside them (measured now, rates sampled).
        for key in NODE_GAUGES {
            map.insert(format!("{key}_details"), json!({"rate": rates.rate(key)}));
        }
        map.extend(churn_rates(api));
    }
    out
}

fn node_figures(api: &Api) -> Value {
    let alarm = *api.alarm.borrow();
    let (fd_used, fd_total) = open_descriptors();
    let connections = api.broker.connections.list().len();
    let processors = std::thread::available_parallelism().map_or(1, |n| n.get());
    json!({
        "name": node_name(),
        "type": "disc",
        "running": true,
        "being_drained": false,
        "os_pid": std::process::id().to_string(),
        "uptime": api.started.elapsed().as_millis() as u64,
        "processors": processors,
        "run_queue": 0,
        "mem_used": resident_memory().unwrap_or(0),
        "mem_limit": api.config.memory_limit(),
        "mem_alarm": alarm == Some(Alarm::Memory),
        "disk_free": disk_free(&api.config.data_dir).unwrap_or(0),
        "disk_free_limit": api.config.disk_free_limit_bytes,
        "disk_free_alarm": alarm == Some(Alarm::Disk),
        "fd_used": fd_used,
        "fd_total": fd_total,
        "sockets_used": connections,
        "sockets_total": fd_total,
        "partitions": [],
        "rates_mode": "basic",
        "db_dir": api.config.data_dir.display().to_string(),
        "enabled_plugins": ["rabbitmq_management"],
        "applications": [{
            "name": "warren",
            "description": "warren, an AMQP 0-9-1 broker that behaves like RabbitMQ",
            "version": env!("CARGO_PKG_VERSION"),
        }],
        "auth_mechanisms": auth_mechanisms(api),
        "exchange_types": exchange_types(),
        "contexts": contexts(api),
        "listeners": listeners(api),
        "cluster_links": [],
        "config_files": [],
        "log_files": ["<stderr>"],
        "mem_calculation_strategy": "rss",
        "net_ticktime": 60,
    })
}

/// The SASL mechanisms, as RabbitMQ lists them: each with whether it is enabled.
fn auth_mechanisms(api: &Api) -> Value {
    use crate::config::AuthMechanism;
    [
        AuthMechanism::Plain,
        AuthMechanism::Amqplain,
        AuthMechanism::External,
    ]
    .iter()
    .map(|m| {
        json!({
            "name": m.name(),
            "description": match m {
                AuthMechanism::Plain => "SASL PLAIN authentication mechanism",
                AuthMechanism::Amqplain => "QPid AMQPLAIN mechanism",
                AuthMechanism::External => "SASL EXTERNAL authentication mechanism",
            },
            "enabled": api.config.auth_mechanisms.contains(m),
        })
    })
    .collect()
}

async fn list(state: State, caller: Caller) -> ApiResult<Json<Vec<Value>>> {
    caller.require(Level::Monitoring)?;
    Ok(Json(vec![node_json(&state.0)]))
}

async fn show(state: State, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    caller.require(Level::Monitoring)?;
    if name != node_name() {
        return Err(ApiError::NotFound);
    }
    Ok(Json(node_json(&state.0)))
}
