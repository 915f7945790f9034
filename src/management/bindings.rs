//! `/api/bindings`: list (all, per vhost, between two objects), show, create (POST) and delete
//! one by its properties key; and the binding lists of a queue or an exchange. Through the
//! vhost's queue.bind/exchange.bind and their unbinds, with the same permission checks.
//!
//! A properties key is the routing key, percent-encoded, when the binding has no arguments
//! (`~` for an empty one), else the routing key, `~` and a hash of the arguments (RabbitMQ's hash differs; clients
//! take the key from a listing, they never compute it).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::exchanges::exchange_name;
use super::json::{self, table_json};
use super::queues::{NO_CONNECTION, check_access, check_name, visible_vhost};
use super::{Api, State};
use crate::auth::{Access, ResourceKind};
use crate::broker::exchange::{Binding, Destination};
use crate::broker::vhost::{ListedBinding, VHost};

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/bindings", get(list_all))
        .route("/api/bindings/{vhost}", get(list_vhost))
        .route(
            "/api/bindings/{vhost}/e/{source}/{kind}/{destination}",
            get(list_between).post(create),
        )
        .route(
            "/api/bindings/{vhost}/e/{source}/{kind}/{destination}/{props}",
            get(show).delete(remove),
        )
        .route("/api/queues/{vhost}/{name}/bindings", get(of_queue))
        .route(
            "/api/exchanges/{vhost}/{name}/bindings/source",
            get(from_exchange),
        )
        .route(
            "/api/exchanges/{vhost}/{name}/bindings/destination",
            get(to_exchange),
        )
}

/// The properties key, not yet percent-encoded (as it arrives, decoded, in a path).
fn props_key(binding: &Binding) -> String {
    if binding.arguments.inner().is_empty() {
        // RabbitMQ's key for an empty routing key without arguments.
        if binding.routing_key.is_empty() {
            return "~".into();
        }
        return binding.routing_key.clone();
    }
    let arguments = table_json(&binding.arguments).to_string();
    let hash = crc32fast::hash(arguments.as_bytes()).to_be_bytes();
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash);
    format!("{}~{hash}", binding.routing_key)
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn binding_json(vhost: &str, listed: &ListedBinding) -> Value {
    let (destination, kind) = match &listed.binding.destination {
        Destination::Queue(name) => (name, "queue"),
        Destination::Exchange(name) => (name, "exchange"),
    };
    json!({
        "source": listed.source.as_ref(),
        "vhost": vhost,
        "destination": destination.as_ref(),
        "destination_type": kind,
        "routing_key": listed.binding.routing_key,
        "arguments": table_json(&listed.binding.arguments),
        "properties_key": encode(&props_key(&listed.binding)),
    })
}

fn listed(vhost: &VHost, keep: impl Fn(&ListedBinding) -> bool) -> Vec<Value> {
    vhost
        .list_bindings()
        .iter()
        .filter(|l| keep(l))
        .map(|l| binding_json(&vhost.name, l))
        .collect()
}

/// The destination a path names: `q` a queue, `e` an exchange.
fn destination(kind: &str, name: &str) -> ApiResult<Destination> {
    match kind {
        "q" => Ok(Destination::Queue(Arc::from(name))),
        "e" => Ok(Destination::Exchange(Arc::from(exchange_name(name)))),
        _ => Err(ApiError::NotFound),
    }
}

async fn list_all(state: State, caller: Caller) -> Json<Vec<Value>> {
    let api = state.0;
    let mut vhosts = api.broker.vhosts();
    vhosts.retain(|v| caller.sees_vhost(&api, &v.name));
    vhosts.sort_by(|a, b| a.name.cmp(&b.name));
    Json(vhosts.iter().flat_map(|v| listed(v, |_| true)).collect())
}

async fn list_vhost(
    state: State,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    Ok(Json(listed(&vhost, |_| true)))
}

async fn list_between(
    state: State,
    caller: Caller,
    Path((vhost, source, kind, dest)): Path<(String, String, String, String)>,
) -> ApiResult<Json<Vec<Value>>> {
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    let source = exchange_name(&source).to_string();
    let dest = destination(&kind, &dest)?;
    Ok(Json(listed(&vhost, |l| {
        *l.source == *source && l.binding.destination == dest
    })))
}

async fn show(
    state: State,
    caller: Caller,
    Path((vhost, source, kind, dest, props)): Path<(String, String, String, String, String)>,
) -> ApiResult<Json<Value>> {
    let vhost = visible_vhost(&state.0, &caller, &vhost).map_err(|_| ApiError::NotFound)?;
    let source = exchange_name(&source).to_string();
    let dest = destination(&kind, &dest)?;
    listed(&vhost, |l| {
        *l.source == *source && l.binding.destination == dest && props_key(&l.binding) == props
    })
    .pop()
    .map(Json)
    .ok_or(ApiError::NotFound)
}

/// Read on the source exchange, write on the destination: what queue.bind checks.
fn check_bind_access(
    api: &Api,
    caller: &Caller,
    vhost: &str,
    source: &str,
    dest: &Destination,
) -> ApiResult<()> {
    let (kind, name) = match dest {
        Destination::Queue(name) => (ResourceKind::Queue, name),
        Destination::Exchange(name) => (ResourceKind::Exchange, name),
    };
    check_access(api, caller, vhost, kind, name, Access::Write)?;
    check_access(
        api,
        caller,
        vhost,
        ResourceKind::Exchange,
        source,
        Access::Read,
    )
}

async fn create(
    state: State,
    caller: Caller,
    Path((vhost, source, kind, dest)): Path<(String, String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let body = json::object(&body)?;
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    let source = exchange_name(&source).to_string();
    let destination = destination(&kind, &dest)?;
    let routing_key = json::string(&body, "routing_key")?
        .unwrap_or("")
        .to_string();
    check_name(&routing_key)?;
    check_bind_access(&state.0, &caller, &vhost.name, &source, &destination)?;
    let binding = Binding {
        destination,
        routing_key,
        arguments: json::arguments(&body)?,
    };
    let location = format!("{}/{}", encode(&dest), encode(&props_key(&binding)));
    tokio::task::spawn_blocking(move || vhost.bind(&source, binding, NO_CONNECTION))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    let mut response = StatusCode::CREATED.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

async fn remove(
    state: State,
    caller: Caller,
    Path((vhost, source, kind, dest, props)): Path<(String, String, String, String, String)>,
) -> ApiResult<StatusCode> {
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    let source = exchange_name(&source).to_string();
    let dest = destination(&kind, &dest)?;
    let found = vhost.list_bindings().into_iter().find(|l| {
        *l.source == *source && l.binding.destination == dest && props_key(&l.binding) == props
    });
    let Some(found) = found else {
        return Err(ApiError::NotFound);
    };
    check_bind_access(&state.0, &caller, &vhost.name, &source, &dest)?;
    tokio::task::spawn_blocking(move || vhost.unbind(&source, &found.binding, NO_CONNECTION))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    Ok(StatusCode::NO_CONTENT)
}

async fn of_queue(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<Value>>> {
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    if vhost.queue(&name).is_none() {
        return Err(ApiError::NotFound);
    }
    let dest = Destination::Queue(Arc::from(name.as_str()));
    Ok(Json(listed(&vhost, |l| l.binding.destination == dest)))
}

async fn from_exchange(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<Value>>> {
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    let name = exchange_name(&name).to_string();
    if vhost.exchange(&name).is_none() {
        return Err(ApiError::NotFound);
    }
    Ok(Json(listed(&vhost, |l| *l.source == *name)))
}

async fn to_exchange(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Vec<Value>>> {
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    let name = exchange_name(&name).to_string();
    if vhost.exchange(&name).is_none() {
        return Err(ApiError::NotFound);
    }
    let dest = Destination::Exchange(Arc::from(name.as_str()));
    Ok(Json(listed(&vhost, |l| l.binding.destination == dest)))
}
