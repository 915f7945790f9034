//! `/api/bindings`: list (all, per vhost, between two objects), show, create (POST) and delete
//! one by its properties key; and the binding lists of a queue or an exchange. Through the
//! vhost's queue.bind/exchange.bind and their unbinds, with the same permission checks.
//!
//! A properties key is the routing key, form-encoded, when the binding has no arguments (`~`
//! for an empty one), else the routing key, `~` and a hash of the arguments (RabbitMQ's hash
//! differs; clients take the key from a listing, they never compute it).

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

/// The hash of a binding's arguments in its properties key.
fn arguments_hash(binding: &Binding) -> String {
    let arguments = table_json(&binding.arguments).to_string();
    let hash = crc32fast::hash(arguments.as_bytes()).to_be_bytes();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash)
}

/// The properties key as RabbitMQ writes it: the routing key form-encoded (so it holds no
/// `~`), then `~` and the arguments' hash when there are arguments; `~` alone for an empty
/// routing key without arguments.
fn props_key(binding: &Binding) -> String {
    let key = encode(&binding.routing_key);
    match (binding.arguments.inner().is_empty(), key.is_empty()) {
        (true, true) => "~".into(),
        (true, false) => key,
        (false, _) => format!("{key}~{}", arguments_hash(binding)),
    }
}

/// Whether a properties key from a path (decoded once, as every path segment is) names this
/// binding. Its routing key part is decoded once more, as RabbitMQ does: clients send the key
/// from a listing either as it is or escaped again.
fn props_match(binding: &Binding, props: &str) -> bool {
    let (key, hash) = match props.split_once('~') {
        Some((key, hash)) => (key, Some(hash)),
        None => (props, None),
    };
    let hash_matches = match hash {
        None | Some("") => binding.arguments.inner().is_empty(),
        Some(hash) => !binding.arguments.inner().is_empty() && arguments_hash(binding) == hash,
    };
    hash_matches && decode(key).as_deref() == Some(binding.routing_key.as_str())
}

/// Form-encodes everything but letters, digits, `-`, `_` and `.` (a space becomes `+`), as
/// RabbitMQ encodes routing keys in properties keys.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(byte as char),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// The reverse of [`encode`]; `None` for a malformed escape or bytes that are not UTF-8.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
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
        "properties_key": props_key(&listed.binding),
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
        *l.source == *source && l.binding.destination == dest && props_match(&l.binding, &props)
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
    let location = format!("{}/{}", encode(&dest), props_key(&binding));
    super::off_runtime(move || vhost.bind(&source, binding, NO_CONNECTION)).await??;
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
        *l.source == *source && l.binding.destination == dest && props_match(&l.binding, &props)
    });
    let Some(found) = found else {
        return Err(ApiError::NotFound);
    };
    check_bind_access(&state.0, &caller, &vhost.name, &source, &dest)?;
    super::off_runtime(move || vhost.unbind(&source, &found.binding, NO_CONNECTION)).await??;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(key: &str) -> Binding {
        Binding {
            destination: Destination::Queue(Arc::from("q")),
            routing_key: key.into(),
            arguments: Default::default(),
        }
    }

    #[test]
    fn properties_keys_are_encoded_as_rabbitmq_3_10_encodes_them() {
        // Recorded from the reference broker.
        let recorded = [
            ("a.*", "a.%2A"),
            ("a b", "a+b"),
            ("x/y", "x%2Fy"),
            ("k~1", "k%7E1"),
            ("p%q", "p%25q"),
            ("c:d@e", "c%3Ad%40e"),
            ("ü", "%C3%BC"),
            ("a+b", "a%2Bb"),
            ("(x)", "%28x%29"),
            ("!$&,;=", "%21%24%26%2C%3B%3D"),
            ("\"<>^`{|}", "%22%3C%3E%5E%60%7B%7C%7D"),
            ("a.#", "a.%23"),
            ("", "~"),
        ];
        for (key, expected) in recorded {
            assert_eq!(props_key(&binding(key)), expected, "{key:?}");
        }
    }

    #[test]
    fn a_properties_key_matches_decoded_once_or_twice() {
        let b = binding("a.*");
        assert!(
            props_match(&b, "a.%2A"),
            "escaped again by the client, decoded once"
        );
        assert!(props_match(&b, "a.*"), "sent as listed, decoded once");
        assert!(!props_match(&b, "a.%2B"));
        assert!(props_match(&binding(""), "~"));
        let mut with_args = binding("k");
        with_args
            .arguments
            .insert("x".into(), amq_protocol::types::AMQPValue::Boolean(true));
        let key = props_key(&with_args);
        assert!(key.starts_with("k~"), "{key}");
        assert!(props_match(&with_args, &key));
        assert!(!props_match(&with_args, "k"), "without its hash");
        assert!(
            !props_match(&binding("k"), &key),
            "a hash where there are no arguments"
        );
    }
}
