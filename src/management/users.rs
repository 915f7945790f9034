//! `/api/users`: list, show, create or replace (PUT), delete; `/api/whoami`. Everything but
//! `whoami` needs `administrator`, as on RabbitMQ.
//!
//! A PUT takes `password` (hashed here with RabbitMQ's default, salted SHA-256) or
//! `password_hash` with `hashing_algorithm` (as a definitions export gives them), and `tags`.

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
use crate::auth::{HashingAlgorithm, PasswordHash, User};

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/whoami", get(whoami))
        .route("/api/users", get(list))
        .route("/api/users/{name}", get(show).put(put).delete(delete))
}

/// A user as `/api/users` shows it.
pub fn user_json(user: &User) -> Value {
    let (hash, algorithm) = match &user.password {
        Some(hash) => (hash.to_base64(), hash.algorithm()),
        None => (String::new(), HashingAlgorithm::Sha256),
    };
    let mut limits = serde_json::Map::new();
    if let Some(n) = user.limits.max_connections {
        limits.insert("max-connections".into(), n.into());
    }
    if let Some(n) = user.limits.max_channels {
        limits.insert("max-channels".into(), n.into());
    }
    json!({
        "name": user.name,
        "password_hash": hash,
        "hashing_algorithm": algorithm.rabbit_name(),
        "tags": user.tags,
        "limits": limits,
    })
}

async fn whoami(caller: Caller) -> Json<Value> {
    Json(json!({"name": caller.user.name, "tags": caller.user.tags}))
}

async fn list(state: State, caller: Caller) -> ApiResult<Json<Vec<Value>>> {
    caller.require(Level::Administrator)?;
    let mut users = state.0.broker.auth.users();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(users.iter().map(|u| user_json(u)).collect()))
}

async fn show(state: State, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    let user = state.0.broker.auth.user(&name).ok_or(ApiError::NotFound)?;
    Ok(Json(user_json(&user)))
}

async fn put(
    state: State,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let body = json::object(&body)?;
    let api = state.0;
    let existing = api.broker.auth.user(&name);
    let password = match (
        json::string(&body, "password")?,
        json::string(&body, "password_hash")?,
    ) {
        (Some(password), _) => Some(PasswordHash::new(HashingAlgorithm::Sha256, password)),
        (None, Some("")) => None,
        (None, Some(hash)) => {
            let algorithm = match json::string(&body, "hashing_algorithm")? {
                None => HashingAlgorithm::Sha256,
                Some(name) => HashingAlgorithm::from_rabbit_name(name).ok_or_else(|| {
                    ApiError::BadRequest(format!("unknown hashing algorithm {name}"))
                })?,
            };
            Some(PasswordHash::from_base64(algorithm, hash).map_err(ApiError::BadRequest)?)
        }
        // Neither: an existing user keeps its password, a new one has none (certificates).
        (None, None) => existing.as_ref().and_then(|u| u.password.clone()),
    };
    let mut user = User {
        name: name.clone(),
        password,
        tags: json::tags(&body, "tags")?,
        limits: existing.as_ref().map(|u| u.limits).unwrap_or_default(),
    };
    user.tags.dedup();
    let created = existing.is_none();
    run_blocking(move || api.broker.put_user(user)).await?;
    Ok(super::created_or_updated(created))
}

async fn delete(state: State, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let api = state.0;
    run_blocking(move || api.broker.delete_user(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}
