//! `/api/exchanges`: list (all, per vhost), show, declare (PUT), delete (with `if-unused`),
//! through the vhost's exchange.declare and exchange.delete. The default exchange is
//! `amq.default` in paths and `""` in answers, as on RabbitMQ.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::json::{self, table_json};
use super::message_stats;
use super::queues::{check_access, check_name, visible_vhost};
use super::rates::{Key, Rates};
use super::{Api, State};
use crate::auth::{Access, ResourceKind};
use crate::broker::exchange::{Exchange, ExchangeKind, ExchangeOptions};
use crate::broker::vhost::VHost;

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/exchanges", get(list_all))
        .route("/api/exchanges/{vhost}", get(list_vhost))
        .route(
            "/api/exchanges/{vhost}/{name}",
            get(show).put(put).delete(remove),
        )
}

/// `amq.default` in a path is the default exchange, whose name is empty.
pub fn exchange_name(path_name: &str) -> &str {
    if path_name == "amq.default" {
        ""
    } else {
        path_name
    }
}

fn exchange_json(vhost: &str, exchange: &Exchange, rates: &Rates) -> Value {
    let builtin = exchange.name.is_empty() || exchange.name.starts_with("amq.");
    let mut out = Map::new();
    out.insert("name".into(), exchange.name.to_string().into());
    out.insert("vhost".into(), vhost.into());
    out.insert("type".into(), exchange.kind().as_str().into());
    out.insert("durable".into(), exchange.options.durable.into());
    out.insert("auto_delete".into(), exchange.options.auto_delete.into());
    out.insert("internal".into(), exchange.options.internal.into());
    out.insert("arguments".into(), table_json(&exchange.options.arguments));
    // As the delayed-message plugin shows it.
    if let Some(schedule) = exchange.schedule() {
        out.insert(
            "messages_delayed".into(),
            schedule.messages_delayed().into(),
        );
    }
    // RabbitMQ names who declared it; warren does not keep that beyond its own exchanges.
    let who = if builtin { "rmq-internal" } else { "" };
    out.insert("user_who_performed_action".into(), who.into());
    // RabbitMQ shows `policy` only on an exchange a policy applies to.
    if let Some(policy) = exchange.applied_policies().policy_name() {
        out.insert("policy".into(), policy.into());
    }
    let rates = rates.of(Key::of(exchange));
    if let Some(stats) = message_stats::exchange(exchange.counts.figures(), &rates) {
        out.insert("message_stats".into(), stats);
    }
    Value::Object(out)
}

fn sorted(vhost: &VHost, rates: &Rates) -> Vec<Value> {
    let mut exchanges = vhost.exchanges();
    exchanges.sort_by(|a, b| a.name.cmp(&b.name));
    exchanges
        .iter()
        .map(|x| exchange_json(&vhost.name, x, rates))
        .collect()
}

async fn list_all(state: State, caller: Caller) -> Json<Vec<Value>> {
    let api = state.0;
    let mut vhosts = api.broker.vhosts();
    vhosts.retain(|v| caller.sees_vhost(&api, &v.name));
    vhosts.sort_by(|a, b| a.name.cmp(&b.name));
    Json(vhosts.iter().flat_map(|v| sorted(v, &api.rates)).collect())
}

async fn list_vhost(
    state: State,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    Ok(Json(sorted(&vhost, &state.0.rates)))
}

async fn show(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let vhost = visible_vhost(&state.0, &caller, &vhost).map_err(|_| ApiError::NotFound)?;
    let exchange = vhost
        .exchange(exchange_name(&name))
        .ok_or(ApiError::NotFound)?;
    let mut out = exchange_json(&vhost.name, &exchange, &state.0.rates);
    if let Value::Object(map) = &mut out {
        // Per-link message rates RabbitMQ adds for one exchange; none are kept yet.
        map.insert("incoming".into(), json!([]));
        map.insert("outgoing".into(), json!([]));
    }
    Ok(Json(out))
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
        ResourceKind::Exchange,
        &name,
        Access::Configure,
    )?;
    let kind_name = json::string(&body, "type")?.unwrap_or("direct");
    let kind = ExchangeKind::parse(kind_name)
        .ok_or_else(|| ApiError::BadRequest(format!("unknown exchange type '{kind_name}'")))?;
    let options = ExchangeOptions {
        kind,
        durable: json::boolean(&body, "durable", false)?,
        auto_delete: json::boolean(&body, "auto_delete", false)?,
        internal: json::boolean(&body, "internal", false)?,
        arguments: json::arguments(&body)?,
    };
    let created = vhost.exchange(&name).is_none();
    super::off_runtime(move || vhost.declare_exchange(&name, options, false)).await??;
    Ok(super::created_or_updated(created))
}

async fn remove(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    Query(flags): Query<HashMap<String, String>>,
) -> ApiResult<StatusCode> {
    let vhost = visible_vhost(&state.0, &caller, &vhost)?;
    let name = exchange_name(&name).to_string();
    check_access(
        &state.0,
        &caller,
        &vhost.name,
        ResourceKind::Exchange,
        &name,
        Access::Configure,
    )?;
    // RabbitMQ refuses the built-in exchanges before it looks them up.
    if !name.is_empty() && !name.starts_with("amq.") && vhost.exchange(&name).is_none() {
        return Err(ApiError::NotFound);
    }
    let if_unused = flags.get("if-unused").is_some_and(|v| v == "true");
    super::off_runtime(move || vhost.delete_exchange(&name, if_unused)).await??;
    Ok(StatusCode::NO_CONTENT)
}
