//! `/api/health/checks/…`: RabbitMQ 3.10's health checks, `200 {"status":"ok"}` or `503`
//! with `"status":"failed"` and its reason. Any management user may call them. And
//! `/api/aliveness-test/{vhost}`: a message through the vhost's publish path and back.

use std::sync::Arc;

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use warren_protocol::{AmqpError, Properties, ShortStr};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::{Api, State, node_name};
use crate::alarms::Alarm;
use crate::broker::publish::{PublishRequest, Publisher};
use crate::broker::queue::QueueDeclaration;

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/health/checks/alarms", get(alarms))
        .route("/api/health/checks/local-alarms", get(local_alarms))
        .route(
            "/api/health/checks/port-listener/{port}",
            get(port_listener),
        )
        .route(
            "/api/health/checks/protocol-listener/{protocol}",
            get(protocol_listener),
        )
        .route("/api/health/checks/virtual-hosts", get(ok))
        // One node: stopping it cannot cost a quorum or a mirror (RabbitMQ's answer alike).
        .route(
            "/api/health/checks/node-is-quorum-critical",
            get(single_node),
        )
        .route(
            "/api/health/checks/node-is-mirror-sync-critical",
            get(single_node),
        )
        .route("/api/aliveness-test/{vhost}", get(aliveness))
}

/// RabbitMQ's aliveness test: declares the (transient) queue `aliveness-test`, publishes a
/// message to it through the default exchange and gets it back.
async fn aliveness(state: State, caller: Caller, Path(vhost): Path<String>) -> ApiResult<Answer> {
    let api = state.0;
    let vhost = api.broker.vhost(&vhost).ok_or(ApiError::NotFound)?;
    if api
        .broker
        .auth
        .permissions(caller.name(), &vhost.name)
        .is_none()
    {
        return Err(ApiError::NotAuthorised("Not authorised to access vhost"));
    }
    const QUEUE: &str = "aliveness-test";
    const BODY: &[u8] = b"test_message";
    let user = caller.user.clone();
    let outcome = super::off_runtime(move || -> Result<bool, AmqpError> {
        let declaration = QueueDeclaration {
            durable: false,
            exclusive_owner: None,
            auto_delete: false,
            arguments: Default::default(),
        };
        let queue = vhost
            .declare_queue(QUEUE, declaration, false, super::queues::NO_CONNECTION)?
            .queue;
        let (Some(exchange), Some(routing_key)) =
            (ShortStr::from_static(""), ShortStr::from_static(QUEUE))
        else {
            return Ok(false);
        };
        let request = PublishRequest {
            exchange,
            routing_key,
            mandatory: false,
            properties: Properties::from_basic(&Default::default()),
            body: bytes::Bytes::from_static(BODY),
            user: &user,
            reply_address: None,
        };
        let _ = vhost.publish(request, &mut Publisher::default())?;
        Ok(queue
            .get(true)
            .is_some_and(|(m, _)| m.message.body.as_ref() == BODY))
    })
    .await?;
    Ok(match outcome {
        Ok(true) => passed(json!({})),
        Ok(false) => failed("the test message did not come back", json!({})),
        Err(e) => failed(&e.text, json!({})),
    })
}

type Answer = (StatusCode, Json<Value>);

fn passed(extra: Value) -> Answer {
    let mut body = json!({"status": "ok"});
    merge(&mut body, extra);
    (StatusCode::OK, Json(body))
}

fn failed(reason: &str, extra: Value) -> Answer {
    let mut body = json!({"status": "failed", "reason": reason});
    merge(&mut body, extra);
    (StatusCode::SERVICE_UNAVAILABLE, Json(body))
}

fn merge(into: &mut Value, extra: Value) {
    if let (Value::Object(into), Value::Object(extra)) = (into, extra) {
        into.extend(extra);
    }
}

async fn ok(_caller: Caller) -> Answer {
    passed(json!({}))
}

async fn single_node(_caller: Caller) -> Answer {
    passed(json!({"reason": "single node cluster"}))
}

fn active_alarm(api: &Api) -> Option<Alarm> {
    *api.alarm.borrow()
}

fn alarm_list(alarm: Alarm) -> Value {
    let resource = match alarm {
        Alarm::Memory => "memory",
        Alarm::Disk => "disk",
    };
    json!([{"node": node_name(), "resource": resource}])
}

async fn alarms(state: State, _caller: Caller) -> Answer {
    match active_alarm(&state.0) {
        None => passed(json!({})),
        Some(alarm) => failed(
            "resource alarm(s) in effect in the cluster",
            json!({"alarms": alarm_list(alarm)}),
        ),
    }
}

async fn local_alarms(state: State, _caller: Caller) -> Answer {
    match active_alarm(&state.0) {
        None => passed(json!({})),
        Some(alarm) => failed(
            "resource alarm(s) in effect on the node",
            json!({"alarms": alarm_list(alarm)}),
        ),
    }
}

/// Every port this node listens on, as RabbitMQ lists them.
fn ports(api: &Api) -> Vec<u16> {
    let mut ports: Vec<u16> = api
        .amqp
        .iter()
        .chain(&api.amqps)
        .chain(std::iter::once(&api.http))
        .map(|addr| addr.port())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

async fn port_listener(
    state: State,
    _caller: Caller,
    Path(port): Path<String>,
) -> ApiResult<Answer> {
    let port: u16 = port
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("Invalid port: {port}")))?;
    let ports = ports(&state.0);
    Ok(if ports.contains(&port) {
        passed(json!({"port": port}))
    } else {
        failed(
            "No active listener",
            json!({"missing": port, "ports": ports}),
        )
    })
}

/// The protocols this node listens for, in RabbitMQ's names.
fn protocols(api: &Api) -> Vec<&'static str> {
    let mut protocols = vec!["http"];
    if !api.amqp.is_empty() {
        protocols.push("amqp");
    }
    if !api.amqps.is_empty() {
        protocols.push("amqp/ssl");
    }
    protocols.sort_unstable();
    protocols
}

/// RabbitMQ's spellings of a protocol name, normalised as it does.
fn normalise(protocol: &str) -> String {
    match protocol.to_ascii_lowercase().as_str() {
        "amqp091" | "amqp0.9.1" | "amqp0-9-1" | "amqp" => "amqp".into(),
        "amqps" | "amqp/ssl" | "amqp091/ssl" => "amqp/ssl".into(),
        "management" | "http" => "http".into(),
        "https" | "management/ssl" => "https".into(),
        other => other.to_string(),
    }
}

async fn protocol_listener(state: State, _caller: Caller, Path(protocol): Path<String>) -> Answer {
    let wanted = normalise(&protocol);
    let protocols = protocols(&state.0);
    if protocols.iter().any(|p| *p == wanted) {
        passed(json!({"protocol": wanted}))
    } else {
        failed(
            "No active listener",
            json!({"missing": wanted, "protocols": protocols}),
        )
    }
}
