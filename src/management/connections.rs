//! `/api/connections`, `/api/channels`, `/api/consumers`: what is connected now, from the
//! broker's connection registry (each connection reports its channels and their consumers).
//! Administrators and monitors see everything; other users their own connections. A
//! connection can be closed with DELETE (320 with the `X-Reason` header's text, as RabbitMQ).

use std::sync::Arc;

use axum::Json;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::auth::{Caller, Level};
use super::error::{ApiError, ApiResult};
use super::json::table_json;
use super::message_stats;
use super::rates::{Key, Rates};
use super::{Api, State, node_name};
use crate::broker::connections::{ChannelAbout, ConnectionEntry};

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/connections", get(list))
        .route("/api/vhosts/{vhost}/connections", get(list_vhost))
        .route("/api/connections/{name}", get(show).delete(close))
        .route("/api/connections/{name}/channels", get(channels_of))
        .route("/api/channels", get(channels))
        .route("/api/vhosts/{vhost}/channels", get(channels_vhost))
        .route("/api/channels/{name}", get(channel))
        .route("/api/consumers", get(consumers))
        .route("/api/consumers/{vhost}", get(consumers_vhost))
}

/// The connections `caller` may see, oldest first.
fn visible(api: &Api, caller: &Caller) -> Vec<Arc<ConnectionEntry>> {
    let mut all = api.broker.connections.list();
    all.retain(|c| caller.is(Level::Monitoring) || c.user == caller.name());
    all
}

fn connection_json(c: &ConnectionEntry, rates: &Rates) -> Value {
    let about = &c.about;
    let traffic = c.traffic();
    let rates = rates.of(Key::of(c));
    let (host, port) = about
        .local
        .map_or((String::new(), 0), |l| (l.ip().to_string(), l.port()));
    json!({
        "name": c.name(),
        "node": node_name(),
        "user": c.user,
        "user_who_performed_action": c.user,
        "vhost": c.vhost,
        "state": "running",
        "type": "network",
        "protocol": "AMQP 0-9-1",
        "auth_mechanism": about.auth_mechanism,
        "host": host,
        "port": port,
        "peer_host": c.peer.ip().to_string(),
        "peer_port": c.peer.port(),
        "ssl": about.tls,
        "peer_cert_issuer": null,
        "peer_cert_subject": null,
        "peer_cert_validity": null,
        "ssl_cipher": null,
        "ssl_hash": null,
        "ssl_key_exchange": null,
        "ssl_protocol": null,
        "channels": c.channels.load(std::sync::atomic::Ordering::Relaxed),
        "channel_max": about.channel_max,
        "frame_max": about.frame_max,
        "timeout": about.heartbeat,
        "connected_at": about.connected_at,
        "recv_oct": traffic.recv_oct,
        "recv_oct_details": {"rate": rates.rate("recv_oct")},
        "recv_cnt": traffic.recv_cnt,
        "send_oct": traffic.send_oct,
        "send_oct_details": {"rate": rates.rate("send_oct")},
        "send_cnt": traffic.send_cnt,
        "send_pend": traffic.send_pend,
        "client_properties": table_json(&about.client_properties),
        "user_provided_name": about
            .client_properties
            .inner()
            .get("connection_name")
            .map(table_json_value),
    })
}

fn table_json_value(v: &amq_protocol::types::AMQPValue) -> Value {
    let mut t = amq_protocol::types::FieldTable::default();
    t.insert("v".into(), v.clone());
    table_json(&t)["v"].clone()
}

fn channel_name(c: &ConnectionEntry, number: u16) -> String {
    format!("{} ({number})", c.name())
}

fn connection_details(c: &ConnectionEntry) -> Value {
    json!({
        "name": c.name(),
        "peer_host": c.peer.ip().to_string(),
        "peer_port": c.peer.port(),
    })
}

fn channel_json(c: &ConnectionEntry, ch: &ChannelAbout, rates: &Rates) -> Value {
    let mut out = json!({
        "name": channel_name(c, ch.number),
        "node": node_name(),
        "number": ch.number,
        "user": c.user,
        "user_who_performed_action": c.user,
        "vhost": c.vhost,
        "connection_details": connection_details(c),
        "state": "running",
        "confirm": ch.confirm,
        "transactional": ch.transactional,
        "prefetch_count": ch.prefetch_count,
        "global_prefetch_count": ch.global_prefetch_count,
        "consumer_count": ch.consumers.len(),
        "messages_unacknowledged": ch.unacked,
        "messages_unconfirmed": 0,
        "messages_uncommitted": 0,
        "acks_uncommitted": 0,
        "pending_raft_commands": 0,
    });
    let rates = rates.of(Key::of(&*ch.counts));
    if let (Value::Object(map), Some(stats)) = (
        &mut out,
        message_stats::channel(&ch.counts.figures(), &rates),
    ) {
        map.insert("message_stats".into(), stats);
    }
    out
}

fn consumer_jsons(c: &ConnectionEntry, ch: &ChannelAbout) -> Vec<Value> {
    ch.consumers
        .iter()
        .map(|consumer| {
            let mut arguments = Map::new();
            if consumer.priority != 0 {
                arguments.insert("x-priority".into(), consumer.priority.into());
            }
            json!({
                "consumer_tag": consumer.tag,
                "queue": {"name": consumer.queue.as_ref(), "vhost": c.vhost},
                "channel_details": {
                    "name": channel_name(c, ch.number),
                    "number": ch.number,
                    "node": node_name(),
                    "connection_name": c.name(),
                    "peer_host": c.peer.ip().to_string(),
                    "peer_port": c.peer.port(),
                    "user": c.user,
                },
                "ack_required": consumer.ack_required,
                "exclusive": consumer.exclusive,
                "prefetch_count": consumer.prefetch_count,
                "arguments": arguments,
                "active": true,
                "activity_status": "up",
                "consumer_timeout": null,
            })
        })
        .collect()
}

fn find(api: &Api, caller: &Caller, name: &str) -> ApiResult<Arc<ConnectionEntry>> {
    visible(api, caller)
        .into_iter()
        .find(|c| c.name() == name)
        .ok_or(ApiError::NotFound)
}

async fn list(state: State, caller: Caller) -> Json<Vec<Value>> {
    Json(
        visible(&state.0, &caller)
            .iter()
            .map(|c| connection_json(c, &state.0.rates))
            .collect(),
    )
}

async fn list_vhost(
    state: State,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    if state.0.broker.vhost(&vhost).is_none() {
        return Err(ApiError::NotFound);
    }
    let mut all = visible(&state.0, &caller);
    all.retain(|c| c.vhost == vhost);
    Ok(Json(
        all.iter()
            .map(|c| connection_json(c, &state.0.rates))
            .collect(),
    ))
}

async fn show(state: State, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let connection = find(&state.0, &caller, &name)?;
    let mut out = connection_json(&connection, &state.0.rates);
    // One connection shows its TLS fields as empty strings where the list has nulls.
    if let Value::Object(map) = &mut out {
        for (key, value) in map.iter_mut() {
            if (key.starts_with("ssl_") || key.starts_with("peer_cert_")) && value.is_null() {
                *value = "".into();
            }
        }
    }
    Ok(Json(out))
}

async fn close(
    state: State,
    caller: Caller,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let connection = find(&state.0, &caller, &name)?;
    let reason = headers
        .get("x-reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Closed via management plugin");
    connection.force_close(reason.to_string());
    Ok(StatusCode::NO_CONTENT)
}

/// Rows made from every channel (`row`) of the connections the caller sees, those of one
/// vhost if it names one (404 if that vhost does not exist).
fn per_channel(
    api: &Api,
    caller: &Caller,
    vhost: Option<&str>,
    row: fn(&Api, &ConnectionEntry, &ChannelAbout) -> Vec<Value>,
) -> ApiResult<Json<Vec<Value>>> {
    if let Some(vhost) = vhost
        && api.broker.vhost(vhost).is_none()
    {
        return Err(ApiError::NotFound);
    }
    let rows = visible(api, caller)
        .iter()
        .filter(|c| vhost.is_none_or(|v| c.vhost == v))
        .flat_map(|c| {
            c.channel_list()
                .iter()
                .flat_map(|ch| row(api, c, ch))
                .collect::<Vec<_>>()
        })
        .collect();
    Ok(Json(rows))
}

fn channel_row(api: &Api, c: &ConnectionEntry, ch: &ChannelAbout) -> Vec<Value> {
    vec![channel_json(c, ch, &api.rates)]
}

fn consumer_row(_: &Api, c: &ConnectionEntry, ch: &ChannelAbout) -> Vec<Value> {
    consumer_jsons(c, ch)
}

async fn channels(state: State, caller: Caller) -> ApiResult<Json<Vec<Value>>> {
    per_channel(&state.0, &caller, None, channel_row)
}

async fn channels_vhost(
    state: State,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    per_channel(&state.0, &caller, Some(&vhost), channel_row)
}

async fn consumers(state: State, caller: Caller) -> ApiResult<Json<Vec<Value>>> {
    per_channel(&state.0, &caller, None, consumer_row)
}

async fn consumers_vhost(
    state: State,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    per_channel(&state.0, &caller, Some(&vhost), consumer_row)
}

async fn channels_of(
    state: State,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let connection = find(&state.0, &caller, &name)?;
    Ok(Json(
        connection
            .channel_list()
            .iter()
            .map(|ch| channel_json(&connection, ch, &state.0.rates))
            .collect(),
    ))
}

async fn channel(state: State, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    for c in visible(&state.0, &caller) {
        for ch in c.channel_list() {
            if channel_name(&c, ch.number) == name {
                let mut out = channel_json(&c, &ch, &state.0.rates);
                if let Value::Object(map) = &mut out {
                    map.insert("consumer_details".into(), consumer_jsons(&c, &ch).into());
                    map.insert("deliveries".into(), json!([]));
                    map.insert("publishes".into(), json!([]));
                }
                return Ok(Json(out));
            }
        }
    }
    Err(ApiError::NotFound)
}
