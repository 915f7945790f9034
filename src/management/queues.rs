//! `/api/queues`: list (all, per vhost), show, declare (PUT), delete (with `if-empty` and
//! `if-unused`), purge (`DELETE …/contents`). Through the same vhost operations as
//! queue.declare, queue.delete and queue.purge over AMQP, so the same checks and errors apply
//! (as RabbitMQ's API reports them: see error.rs). Users see the queues of their vhosts.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::json::{self, table_json, with_rate};
use super::message_stats::{self, QUEUE_LENGTHS};
use super::rates::{Key, Rates, queue_lengths};
use super::{Api, State, node_name};
use crate::auth::{Access, ResourceKind};
use crate::broker::queue::{Queue, QueueDeclaration};
use crate::broker::vhost::VHost;

/// Connection id for operations that come from no connection (exclusive queues are refused).
pub const NO_CONNECTION: u64 = 0;

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/queues", get(list_all))
        .route("/api/queues/{vhost}", get(list_vhost))
        .route(
            "/api/queues/{vhost}/{name}",
            get(show).put(put).delete(remove),
        )
        .route("/api/queues/{vhost}/{name}/contents", delete(purge))
}

/// A queue as the lists show it.
pub fn queue_json(queue: &Queue, rates: &Rates) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("name".into(), queue.name.to_string().into());
    out.insert("vhost".into(), queue.vhost.to_string().into());
    out.insert("durable".into(), queue.options.durable.into());
    out.insert("auto_delete".into(), queue.options.auto_delete.into());
    out.insert(
        "exclusive".into(),
        queue.options.exclusive_owner.is_some().into(),
    );
    out.insert(
        "arguments".into(),
        table_json(queue.options.arguments.declared()),
    );
    out.insert("node".into(), node_name().into());
    out.insert(
        "type".into(),
        queue.options.arguments.queue_type.name().into(),
    );
    out.insert("state".into(), "running".into());
    out.insert("consumers".into(), queue.consumer_count().into());
    let applied = queue.applied_policies();
    out.insert("policy".into(), applied.policy_name().into());
    out.insert("operator_policy".into(), applied.operator_name().into());
    out.insert(
        "effective_policy_definition".into(),
        Value::Object(applied.definition),
    );
    let rates = rates.of(Key::of(queue));
    for (name, length) in QUEUE_LENGTHS.into_iter().zip(queue_lengths(queue)) {
        with_rate(&mut out, name, length, rates.rate(name));
    }
    if !queue.is_stream() {
        // RabbitMQ's backing-queue figures: ready messages with bodies in memory, and paged
        // out to disk (unacknowledged ones are in memory and not counted here).
        let split = queue.memory_split();
        out.insert("messages_ram".into(), split.ram.into());
        out.insert("message_bytes_ram".into(), split.ram_bytes.into());
        out.insert("messages_paged_out".into(), split.paged_out.into());
        out.insert(
            "message_bytes_paged_out".into(),
            split.paged_out_bytes.into(),
        );
        let ready_bytes = split.ram_bytes + split.paged_out_bytes;
        out.insert("message_bytes_ready".into(), ready_bytes.into());
        out.insert(
            "message_bytes_unacknowledged".into(),
            split.unacked_bytes.into(),
        );
        out.insert(
            "message_bytes".into(),
            (ready_bytes + split.unacked_bytes).into(),
        );
    }
    if queue.is_quorum() {
        // RabbitMQ 3.10 shows these for every quorum queue.
        let (held, held_bytes) = queue.dead_letters_held();
        out.insert("messages_dlx".into(), held.into());
        out.insert("message_bytes_dlx".into(), held_bytes.into());
    }
    if let Some(stats) = message_stats::queue(&queue.counts.figures(), &rates) {
        out.insert("message_stats".into(), stats);
    }
    out
}

/// The vhost of a path, if the caller may see it; RabbitMQ's 404 otherwise.
pub fn visible_vhost(api: &Api, caller: &Caller, name: &str) -> ApiResult<Arc<VHost>> {
    match api.broker.vhost(name) {
        Some(vhost) if caller.sees_vhost(api, name) => Ok(vhost),
        Some(_) => Err(ApiError::NotAuthorised("Not authorised to access vhost")),
        None => Err(ApiError::Missing("vhost_not_found".into())),
    }
}

/// The caller's `access` on a queue or exchange, as over AMQP (RabbitMQ's API checks it too,
/// for administrators alike): 401 "Access refused." otherwise.
pub fn check_access(
    api: &Api,
    caller: &Caller,
    vhost: &str,
    kind: ResourceKind,
    name: &str,
    access: Access,
) -> ApiResult<()> {
    api.broker
        .auth
        .check_resource(caller.name(), vhost, kind, name, access)?;
    Ok(())
}

/// Arguments RabbitMQ's API reads as integers: a value of another type is refused there with
/// `"expected integer, got T"` where AMQP says `{unacceptable_type,T}`.
const INTEGER_ARGUMENTS: [&str; 6] = [
    "x-message-ttl",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-delivery-limit",
];

fn as_http_argument_error(e: ApiError) -> ApiError {
    let ApiError::BadRequest(reason) = &e else {
        return e;
    };
    let integer = INTEGER_ARGUMENTS
        .iter()
        .any(|arg| reason.starts_with(&format!("invalid arg '{arg}' ")));
    match reason.rsplit_once("{unacceptable_type,") {
        Some((head, tail)) if integer && tail.ends_with('}') => ApiError::BadRequest(format!(
            "{head}\"expected integer, got {}\"",
            tail.trim_end_matches('}')
        )),
        _ => e,
    }
}

/// Queue, exchange and routing-key names longer than AMQP's short strings cannot exist.
pub fn check_name(name: &str) -> ApiResult<()> {
    if name.len() > 255 {
        return Err(ApiError::BadRequest(format!(
            "name too long: {} bytes, at most 255",
            name.len()
        )));
    }
    Ok(())
}

fn sorted(mut queues: Vec<Arc<Queue>>, rates: &Rates) -> Vec<Value> {
    queues.sort_by(|a, b| (&a.vhost, &a.name).cmp(&(&b.vhost, &b.name)));
    queues
        .iter()
        .map(|q| Value::Object(queue_json(q, rates)))
        .collect()
}

async fn list_all(state: State, caller: Caller) -> Json<Vec<Value>> {
    let api = state.0;
    let queues = api
        .broker
        .vhosts()
        .into_iter()
        .filter(|v| caller.sees_vhost(&api, &v.name))
        .flat_map(|v| v.queues())
        .collect();
    Json(sorted(queues, &api.rates))
}

async fn list_vhost(
    state: State,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    Ok(Json(sorted(vhost.queues(), &state.0.rates)))
}

async fn show(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let vhost = visible_vhost(&state.0, &caller, &vhost).map_err(|_| ApiError::NotFound)?;
    let queue = vhost.queue(&name).ok_or(ApiError::NotFound)?;
    let mut out = queue_json(&queue, &state.0.rates);
    // Per-consumer and per-link details RabbitMQ adds for one queue; none are kept yet.
    out.insert("consumer_details".into(), json!([]));
    out.insert("deliveries".into(), json!([]));
    out.insert("incoming".into(), json!([]));
    Ok(Json(Value::Object(out)))
}

async fn put(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let body = json::object(&body)?;
    check_name(&name)?;
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    check_access(
        &state.0,
        &caller,
        &vhost.name,
        ResourceKind::Queue,
        &name,
        Access::Configure,
    )?;
    let declaration = QueueDeclaration {
        durable: json::boolean(&body, "durable", false)?,
        exclusive_owner: None,
        auto_delete: json::boolean(&body, "auto_delete", false)?,
        arguments: json::arguments(&body)?,
    };
    let created = vhost.queue(&name).is_none();
    let declared =
        super::off_runtime(move || vhost.declare_queue(&name, declaration, false, NO_CONNECTION))
            .await?;
    declared.map_err(|e| as_http_argument_error(ApiError::from(e)))?;
    Ok(super::created_or_updated(created))
}

async fn remove(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Query(flags): Query<HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    if vhost.queue(&name).is_none() {
        return Err(ApiError::NotFound);
    }
    check_access(
        &state.0,
        &caller,
        &vhost.name,
        ResourceKind::Queue,
        &name,
        Access::Configure,
    )?;
    let if_empty = flags.get("if-empty").is_some_and(|v| v == "true");
    let if_unused = flags.get("if-unused").is_some_and(|v| v == "true");
    super::off_runtime(move || vhost.delete_queue(&name, if_unused, if_empty, NO_CONNECTION))
        .await??;
    Ok(StatusCode::NO_CONTENT)
}

async fn purge(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
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
    queue.check_access(NO_CONNECTION)?;
    super::off_runtime(move || queue.purge()).await?;
    Ok(StatusCode::NO_CONTENT)
}
