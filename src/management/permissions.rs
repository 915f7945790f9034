//! `/api/permissions` and `/api/topic-permissions`: list, show, set (PUT) and clear, and the
//! per-user and per-vhost lists under `/api/users/{user}/…` and `/api/vhosts/{vhost}/…`. All
//! need `administrator`, as on RabbitMQ.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use super::auth::{Caller, Level};
use super::error::{ApiError, ApiResult};
use super::json;
use super::vhosts::run_blocking;
use super::{Api, State};

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/permissions", get(list))
        .route(
            "/api/permissions/{vhost}/{user}",
            get(show).put(put).delete(delete),
        )
        .route("/api/users/{user}/permissions", get(of_user))
        .route("/api/vhosts/{vhost}/permissions", get(of_vhost))
        .route("/api/topic-permissions", get(topic_list))
        .route(
            "/api/topic-permissions/{vhost}/{user}",
            get(topic_show).put(topic_put).delete(topic_delete),
        )
        .route("/api/users/{user}/topic-permissions", get(topic_of_user))
        .route("/api/vhosts/{vhost}/topic-permissions", get(topic_of_vhost))
}

/// Every permission, as JSON, that `keep(user, vhost)` selects, sorted by vhost then user.
fn permissions(api: &Api, keep: &dyn Fn(&str, &str) -> bool) -> Vec<Value> {
    let mut all = api.broker.auth.all_permissions();
    all.retain(|(user, vhost, _)| keep(user, vhost));
    all.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    all.iter()
        .map(|(user, vhost, p)| {
            json!({
                "user": user,
                "vhost": vhost,
                "configure": p.configure.source(),
                "write": p.write.source(),
                "read": p.read.source(),
            })
        })
        .collect()
}

fn topic_permissions(api: &Api, keep: &dyn Fn(&str, &str) -> bool) -> Vec<Value> {
    let mut all = api.broker.auth.all_topic_permissions();
    all.retain(|(user, vhost, _)| keep(user, vhost));
    all.sort_by(|a, b| (&a.1, &a.0, &a.2.exchange).cmp(&(&b.1, &b.0, &b.2.exchange)));
    all.iter()
        .map(|(user, vhost, p)| {
            json!({
                "user": user,
                "vhost": vhost,
                "exchange": p.exchange,
                "write": p.write,
                "read": p.read,
            })
        })
        .collect()
}

/// The user and vhost a PUT names must exist (RabbitMQ: 400, not 404).
fn existing(api: &Api, vhost: &str, user: &str) -> ApiResult<()> {
    if api.broker.vhost(vhost).is_none() || api.broker.auth.user(user).is_none() {
        return Err(ApiError::BadRequest("vhost_or_user_not_found".into()));
    }
    Ok(())
}

/// A permission's expression from a PUT body: RabbitMQ wants every one of them.
fn required<'a>(body: &'a serde_json::Map<String, Value>, key: &str) -> ApiResult<&'a str> {
    json::string(body, key)?.ok_or_else(|| ApiError::BadRequest(format!("[{{key_missing,{key}}}]")))
}

/// Builds a list of permissions from those a filter on (user, vhost) keeps.
type Lister = fn(&Api, &dyn Fn(&str, &str) -> bool) -> Vec<Value>;

/// Which permissions a list shows.
enum Of {
    All,
    User(String),
    Vhost(String),
}

/// A list of permissions (`lister`: plain or topic) for administrators; 404 for a user or
/// vhost that does not exist.
fn listed(state: State, caller: Caller, lister: Lister, of: Of) -> ApiResult<Json<Vec<Value>>> {
    caller.require(Level::Administrator)?;
    let api = &state.0;
    let exists = match &of {
        Of::All => true,
        Of::User(user) => api.broker.auth.user(user).is_some(),
        Of::Vhost(vhost) => api.broker.vhost(vhost).is_some(),
    };
    if !exists {
        return Err(ApiError::NotFound);
    }
    Ok(Json(lister(api, &|user, vhost| match &of {
        Of::All => true,
        Of::User(u) => u == user,
        Of::Vhost(v) => v == vhost,
    })))
}

async fn list(state: State, caller: Caller) -> ApiResult<Json<Vec<Value>>> {
    listed(state, caller, permissions, Of::All)
}

async fn of_user(
    state: State,
    caller: Caller,
    Path(user): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    listed(state, caller, permissions, Of::User(user))
}

async fn of_vhost(
    state: State,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    listed(state, caller, permissions, Of::Vhost(vhost))
}

async fn topic_list(state: State, caller: Caller) -> ApiResult<Json<Vec<Value>>> {
    listed(state, caller, topic_permissions, Of::All)
}

async fn topic_of_user(
    state: State,
    caller: Caller,
    Path(user): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    listed(state, caller, topic_permissions, Of::User(user))
}

async fn topic_of_vhost(
    state: State,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    listed(state, caller, topic_permissions, Of::Vhost(vhost))
}

async fn show(
    state: State,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    permissions(&state.0, &|u, v| u == user && v == vhost)
        .pop()
        .map(Json)
        .ok_or(ApiError::NotFound)
}

async fn put(
    state: State,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let body = json::object(&body)?;
    let api = state.0;
    existing(&api, &vhost, &user)?;
    let (configure, write, read) = (
        required(&body, "configure")?.to_string(),
        required(&body, "write")?.to_string(),
        required(&body, "read")?.to_string(),
    );
    let created = api.broker.auth.permissions(&user, &vhost).is_none();
    run_blocking(move || {
        api.broker
            .set_permissions(&user, &vhost, &configure, &write, &read)
    })
    .await?;
    Ok(super::created_or_updated(created))
}

async fn delete(
    state: State,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let api = state.0;
    run_blocking(move || api.broker.clear_permissions(&user, &vhost)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's topic permissions in one vhost: a list (one entry per exchange), 404 if none.
async fn topic_show(
    state: State,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<Json<Vec<Value>>> {
    caller.require(Level::Administrator)?;
    let found = topic_permissions(&state.0, &|u, v| u == user && v == vhost);
    if found.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(Json(found))
}

async fn topic_put(
    state: State,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let body = json::object(&body)?;
    let api = state.0;
    existing(&api, &vhost, &user)?;
    let (exchange, write, read) = (
        required(&body, "exchange")?.to_string(),
        required(&body, "write")?.to_string(),
        required(&body, "read")?.to_string(),
    );
    let created = !api
        .broker
        .auth
        .all_topic_permissions()
        .iter()
        .any(|(u, v, p)| *u == user && *v == vhost && p.exchange == exchange);
    run_blocking(move || {
        api.broker
            .set_topic_permission(&user, &vhost, &exchange, &write, &read)
    })
    .await?;
    Ok(super::created_or_updated(created))
}

async fn topic_delete(
    state: State,
    caller: Caller,
    Path((vhost, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let api = state.0;
    if api.broker.vhost(&vhost).is_none() || api.broker.auth.user(&user).is_none() {
        return Err(ApiError::NotFound);
    }
    run_blocking(move || api.broker.clear_topic_permissions(&user, &vhost, None)).await?;
    Ok(StatusCode::NO_CONTENT)
}
