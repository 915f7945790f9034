//! `/api/vhost-limits` and `/api/user-limits`: RabbitMQ's per-vhost (`max-connections`,
//! `max-queues`) and per-user (`max-connections`, `max-channels`) limits, read by anyone who
//! sees the vhost or user, set and cleared by administrators. A negative value is no limit, as
//! on RabbitMQ. Stored with the vhost or user (tenancy operations).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, put};
use serde_json::{Map, Value, json};

use super::auth::{Caller, Level};
use super::error::{ApiError, ApiResult};
use super::json;
use super::vhosts::run_blocking;
use super::{Api, State};
use crate::auth::UserLimits;
use crate::broker::vhost::VhostLimits;

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/vhost-limits", get(vhost_limits))
        .route("/api/vhost-limits/{vhost}", get(vhost_limits_of))
        .route(
            "/api/vhost-limits/{vhost}/{name}",
            put(set_vhost_limit).delete(clear_vhost_limit),
        )
        .route("/api/user-limits", get(user_limits))
        .route("/api/user-limits/{user}", get(user_limits_of))
        .route(
            "/api/user-limits/{user}/{name}",
            put(set_user_limit).delete(clear_user_limit),
        )
}

fn limits_json(pairs: [(&str, Option<u64>); 2]) -> Map<String, Value> {
    pairs
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name.to_string(), v.into())))
        .collect()
}

fn vhost_entry(name: &str, limits: VhostLimits) -> Option<Value> {
    let value = limits_json([
        ("max-connections", limits.max_connections),
        ("max-queues", limits.max_queues),
    ]);
    (!value.is_empty()).then(|| json!({"vhost": name, "value": value}))
}

fn user_entry(name: &str, limits: UserLimits) -> Option<Value> {
    let value = limits_json([
        ("max-connections", limits.max_connections),
        ("max-channels", limits.max_channels),
    ]);
    (!value.is_empty()).then(|| json!({"user": name, "value": value}))
}

/// A limit's value from a PUT body, in RabbitMQ's words when it is not one: `None` is "no
/// limit" (a negative number).
fn value(body: &Bytes, name: &str, known: &[&str]) -> ApiResult<Option<u64>> {
    let body = json::object(body)?;
    let given = body.get("value").cloned().unwrap_or(Value::Null);
    if !known.contains(&name) {
        return Err(ApiError::BadRequest(format!(
            "Validation failed\n\nUnrecognised terms [{{<<\"{name}\">>,{given}}}] in limits\n"
        )));
    }
    match given.as_i64() {
        Some(n) => Ok(u64::try_from(n).ok()),
        None => {
            let shown = match &given {
                Value::String(s) => format!("<<\"{s}\">>"),
                other => other.to_string(),
            };
            Err(ApiError::BadRequest(format!(
                "Validation failed\n\n{name} should be a number, actually was {shown}\n"
            )))
        }
    }
}

async fn vhost_limits(state: State, caller: Caller) -> Json<Vec<Value>> {
    let api = state.0;
    let mut vhosts = api.broker.vhosts();
    vhosts.retain(|v| caller.sees_vhost(&api, &v.name));
    vhosts.sort_by(|a, b| a.name.cmp(&b.name));
    Json(
        vhosts
            .iter()
            .filter_map(|v| vhost_entry(&v.name, v.limits()))
            .collect(),
    )
}

async fn vhost_limits_of(
    state: State,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    let vhost =
        super::queues::visible_vhost(&state.0, &caller, &vhost).map_err(|_| ApiError::NotFound)?;
    Ok(Json(
        vhost_entry(&vhost.name, vhost.limits())
            .into_iter()
            .collect(),
    ))
}

async fn change_vhost_limit(
    api: Arc<Api>,
    vhost: String,
    name: String,
    limit: Option<u64>,
) -> ApiResult<StatusCode> {
    let Some(existing) = api.broker.vhost(&vhost) else {
        return Err(ApiError::NotFound);
    };
    let mut settings = existing.settings();
    match name.as_str() {
        "max-connections" => settings.limits.max_connections = limit,
        _ => settings.limits.max_queues = limit,
    }
    run_blocking(move || api.broker.put_vhost(&vhost, settings).map(|_| ())).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_vhost_limit(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let limit = value(&body, &name, &["max-connections", "max-queues"])?;
    change_vhost_limit(state.0, vhost, name, limit).await
}

async fn clear_vhost_limit(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    change_vhost_limit(state.0, vhost, name, None).await
}

async fn user_limits(state: State, caller: Caller) -> ApiResult<Json<Vec<Value>>> {
    caller.require(Level::Administrator)?;
    let mut users = state.0.broker.auth.users();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(
        users
            .iter()
            .filter_map(|u| user_entry(&u.name, u.limits))
            .collect(),
    ))
}

async fn user_limits_of(
    state: State,
    caller: Caller,
    Path(user): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    if caller.name() != user {
        caller.require(Level::Administrator)?;
    }
    let user = state.0.broker.auth.user(&user).ok_or(ApiError::NotFound)?;
    Ok(Json(
        user_entry(&user.name, user.limits).into_iter().collect(),
    ))
}

async fn change_user_limit(
    api: Arc<Api>,
    user: String,
    name: String,
    limit: Option<u64>,
) -> ApiResult<StatusCode> {
    let Some(existing) = api.broker.auth.user(&user) else {
        return Err(ApiError::NotFound);
    };
    let mut changed = (*existing).clone();
    match name.as_str() {
        "max-connections" => changed.limits.max_connections = limit,
        _ => changed.limits.max_channels = limit,
    }
    run_blocking(move || api.broker.put_user(changed)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_user_limit(
    state: State,
    caller: Caller,
    Path((user, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let limit = value(&body, &name, &["max-connections", "max-channels"])?;
    change_user_limit(state.0, user, name, limit).await
}

async fn clear_user_limit(
    state: State,
    caller: Caller,
    Path((user, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    change_user_limit(state.0, user, name, None).await
}
