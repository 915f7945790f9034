//! Messages over HTTP, as RabbitMQ's API offers them for poking at a broker:
//! `POST /api/exchanges/{vhost}/{name}/publish` (through the vhost's one publish path, and,
//! like RabbitMQ's, answered once the message is safe: after the store's commit when it was
//! stored) and `POST /api/queues/{vhost}/{name}/get` (basic.get with RabbitMQ's four ack modes).
//! Both count in the vhost's message totals, as RabbitMQ counts the channel its API uses.

use std::sync::Arc;

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::ShortString;
use axum::Json;
use axum::body::Bytes as Body;
use axum::extract::Path;
use axum::routing::post;
use base64::Engine;
use bytes::Bytes;
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use tokio::sync::oneshot;
use warren_protocol::{Properties, ShortStr};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::exchanges::exchange_name;
use super::json::{self, table_json};
use super::queues::{check_access, visible_vhost};
use super::{Api, State};
use crate::auth::{Access, ResourceKind};
use crate::broker::message_counts::MessageFigures;
use crate::broker::publish::{CommitListener, PublishRequest, Publisher};

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/exchanges/{vhost}/{name}/publish", post(publish))
        .route("/api/queues/{vhost}/{name}/get", post(get))
}

/// A short string property: AMQP allows at most 255 bytes.
fn short(key: &str, value: &Value) -> ApiResult<ShortString> {
    match value {
        Value::String(s) if s.len() <= 255 => Ok(s.as_str().into()),
        Value::String(_) => Err(ApiError::BadRequest(format!(
            "{key} is longer than 255 bytes"
        ))),
        other => Err(ApiError::BadRequest(format!(
            "{key} must be a string, not {other}"
        ))),
    }
}

fn octet(key: &str, value: &Value) -> ApiResult<u8> {
    value
        .as_u64()
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| ApiError::BadRequest(format!("{key} must be an integer 0-255, not {value}")))
}

/// The `properties` of a publish body as AMQP basic properties.
fn properties(body: &Map<String, Value>) -> ApiResult<BasicProperties> {
    let mut p = BasicProperties::default();
    let Some(given) = body.get("properties") else {
        return Ok(p);
    };
    let Value::Object(given) = given else {
        return Err(ApiError::BadRequest("properties must be an object".into()));
    };
    for (key, value) in given {
        p = match key.as_str() {
            "content_type" => p.with_content_type(short(key, value)?),
            "content_encoding" => p.with_content_encoding(short(key, value)?),
            "correlation_id" => p.with_correlation_id(short(key, value)?),
            "reply_to" => p.with_reply_to(short(key, value)?),
            "expiration" => p.with_expiration(short(key, value)?),
            "message_id" => p.with_message_id(short(key, value)?),
            "type" => p.with_type(short(key, value)?),
            "user_id" => p.with_user_id(short(key, value)?),
            "app_id" => p.with_app_id(short(key, value)?),
            "cluster_id" => p.with_cluster_id(short(key, value)?),
            "delivery_mode" => p.with_delivery_mode(octet(key, value)?),
            "priority" => p.with_priority(octet(key, value)?),
            "timestamp" => p.with_timestamp(value.as_u64().ok_or_else(|| {
                ApiError::BadRequest(format!("timestamp must be an integer, not {value}"))
            })?),
            "headers" => match value {
                Value::Object(map) => {
                    p.with_headers(crate::broker::tenancy::definitions_file::table(map))
                }
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "headers must be an object, not {other}"
                    )));
                }
            },
            other => return Err(ApiError::BadRequest(format!("unknown property {other}"))),
        };
    }
    Ok(p)
}

/// Basic properties as RabbitMQ's API shows them: only those that are set.
fn properties_json(p: &BasicProperties) -> Value {
    let mut out = Map::new();
    let mut text = |key: &str, v: Option<&ShortString>| {
        if let Some(v) = v {
            out.insert(key.into(), v.as_str().into());
        }
    };
    text("content_type", p.content_type().as_ref());
    text("content_encoding", p.content_encoding().as_ref());
    text("correlation_id", p.correlation_id().as_ref());
    text("reply_to", p.reply_to().as_ref());
    text("expiration", p.expiration().as_ref());
    text("message_id", p.message_id().as_ref());
    text("type", p.kind().as_ref());
    text("user_id", p.user_id().as_ref());
    text("app_id", p.app_id().as_ref());
    text("cluster_id", p.cluster_id().as_ref());
    if let Some(v) = p.delivery_mode() {
        out.insert("delivery_mode".into(), (*v).into());
    }
    if let Some(v) = p.priority() {
        out.insert("priority".into(), (*v).into());
    }
    if let Some(v) = p.timestamp() {
        out.insert("timestamp".into(), (*v).into());
    }
    if let Some(headers) = p.headers() {
        out.insert("headers".into(), table_json(headers));
    }
    if out.is_empty() {
        // RabbitMQ renders no properties as an empty (Erlang) list.
        return json!([]);
    }
    Value::Object(out)
}

/// Tells the waiting request whether the commit holding its message succeeded.
struct CommitWaiter(Mutex<Option<oneshot::Sender<bool>>>);

impl CommitListener for CommitWaiter {
    fn committed(&self, _token: u64, ok: bool) {
        if let Some(tx) = self.0.lock().take() {
            let _ = tx.send(ok);
        }
    }
}

async fn publish(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let body = json::object(&body)?;
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    let exchange = exchange_name(&name).to_string();
    let routing_key = json::string(&body, "routing_key")?
        .unwrap_or("")
        .to_string();
    let payload = json::string(&body, "payload")?.unwrap_or("");
    let payload = match json::string(&body, "payload_encoding")?.unwrap_or("string") {
        "string" => Bytes::copy_from_slice(payload.as_bytes()),
        "base64" => Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(payload)
                .map_err(|_| ApiError::BadRequest("payload is not valid base64".into()))?,
        ),
        other => {
            return Err(ApiError::BadRequest(format!(
                "payload_encoding must be string or base64, not {other}"
            )));
        }
    };
    let properties = Properties::from_basic(&properties(&body)?);
    let (Some(exchange_short), Some(key_short)) = (
        ShortStr::from_slice(exchange.as_bytes()),
        ShortStr::from_slice(routing_key.as_bytes()),
    ) else {
        return Err(ApiError::BadRequest(
            "name or routing key longer than 255 bytes".into(),
        ));
    };
    let api = &state.0;
    check_access(
        api,
        &caller,
        &vhost.name,
        ResourceKind::Exchange,
        &exchange,
        Access::Write,
    )?;
    api.broker.auth.check_topic(
        caller.name(),
        &vhost.name,
        &exchange,
        &routing_key,
        Access::Write,
    )?;
    let request = PublishRequest {
        exchange: exchange_short,
        routing_key: key_short,
        mandatory: false,
        properties,
        body: payload,
        user: &caller.user,
        reply_address: None,
    };
    // RabbitMQ's API reports a refused publish as 400 with the whole AMQP reply.
    let outcome = vhost
        .publish(request, &mut Publisher::default())
        .map_err(|e| ApiError::BadRequest(format!("{} {}", e.code, e.text)))?;
    let routed = outcome.routed > 0 && !outcome.rejected;
    let mut counted = MessageFigures {
        publish: 1,
        ..MessageFigures::default()
    };
    match outcome.routed {
        0 => counted.drop_unroutable = 1,
        _ => counted.routed = 1,
    }
    if let Some(ticket) = outcome.durable {
        let (tx, rx) = oneshot::channel();
        ticket.when_committed(Arc::new(CommitWaiter(Mutex::new(Some(tx)))), 0);
        if rx.await != Ok(true) {
            api.broker.connections.count_detached(&vhost.name, &counted);
            return Err(ApiError::Internal(
                "the message could not be written to disk".into(),
            ));
        }
    }
    // RabbitMQ's API publishes in confirm mode.
    counted.confirm = u64::from(!outcome.rejected);
    api.broker.connections.count_detached(&vhost.name, &counted);
    Ok(Json(json!({ "routed": routed })))
}

/// A count as RabbitMQ's API takes it: a number or a string of digits (rabbitmqadmin sends
/// strings).
fn number(body: &Map<String, Value>, key: &str) -> ApiResult<Option<u64>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
        Some(Value::String(s)) if s.parse::<u64>().is_ok() => Ok(s.parse().ok()),
        Some(other) => Err(ApiError::BadRequest(format!(
            "{key} must be a non-negative integer, not {other}"
        ))),
    }
}

/// RabbitMQ's `ackmode`: whether the messages got stay in the queue, and how they leave.
#[derive(Clone, Copy)]
enum AckMode {
    /// Back in the queue, marked redelivered.
    Requeue,
    /// Gone, as if acknowledged.
    Ack,
    /// Gone, dead-lettered if the queue says so.
    Reject,
}

async fn get(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Vec<Value>>> {
    let body = json::object(&body)?;
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    let queue = vhost.queue(&name).ok_or(ApiError::NotFound)?;
    check_access(
        &state.0,
        &caller,
        &vhost.name,
        ResourceKind::Queue,
        &name,
        Access::Read,
    )?;
    queue.check_access(super::queues::NO_CONNECTION)?;
    let count = number(&body, "count")?.unwrap_or(1);
    let mode = match json::string(&body, "ackmode")?.unwrap_or("ack_requeue_true") {
        "ack_requeue_true" | "reject_requeue_true" => AckMode::Requeue,
        "ack_requeue_false" => AckMode::Ack,
        "reject_requeue_false" => AckMode::Reject,
        other => return Err(ApiError::BadRequest(format!("unknown ackmode {other}"))),
    };
    let base64_only = json::string(&body, "encoding")?.unwrap_or("auto") == "base64";
    let truncate = number(&body, "truncate")?;
    let messages = super::off_runtime(move || {
        let mut got = Vec::new();
        for _ in 0..count {
            let Some(next) = queue.get(matches!(mode, AckMode::Ack)) else {
                break;
            };
            got.push(next);
        }
        let held: Vec<_> = got.iter().map(|(m, _)| m.clone()).collect();
        match mode {
            AckMode::Requeue => queue.requeue(None, held),
            AckMode::Reject => queue.reject(None, &held),
            AckMode::Ack => {}
        }
        got
    })
    .await?;
    let mut counted = MessageFigures::default();
    for (queued, _) in &messages {
        let counter = match mode {
            AckMode::Ack => &mut counted.get_no_ack,
            AckMode::Requeue | AckMode::Reject => &mut counted.get,
        };
        *counter += 1;
        counted.redeliver += u64::from(queued.redelivered);
    }
    // The gets stop at the first that finds the queue empty.
    counted.get_empty = u64::from((messages.len() as u64) < count);
    state
        .0
        .broker
        .connections
        .count_detached(&vhost.name, &counted);
    let answers = messages
        .iter()
        .map(|(queued, remaining)| {
            let m = &queued.message;
            let mut payload = &m.body[..];
            if let Some(limit) = truncate {
                payload = &payload[..payload.len().min(limit as usize)];
            }
            let (payload, encoding) = match std::str::from_utf8(payload) {
                Ok(text) if !base64_only => (text.to_string(), "string"),
                _ => (
                    base64::engine::general_purpose::STANDARD.encode(payload),
                    "base64",
                ),
            };
            json!({
                "payload_bytes": m.body.len(),
                "redelivered": queued.redelivered,
                "exchange": m.exchange.as_ref(),
                "routing_key": m.routing_key.as_str(),
                "message_count": remaining,
                "properties": properties_json(&m.properties.to_basic()),
                "payload": payload,
                "payload_encoding": encoding,
            })
        })
        .collect();
    Ok(Json(answers))
}
