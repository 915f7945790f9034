//! `/api/definitions`: RabbitMQ's export (GET) and import (POST), of the whole broker or of one
//! vhost, in RabbitMQ 3.10's format (written by `tenancy::export`, read by
//! `tenancy::definitions_file`, the same reader `load_definitions` uses at boot).
//! Administrators only, as on RabbitMQ.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::Value;

use super::auth::{Caller, Level};
use super::error::{ApiError, ApiResult};
use super::{Api, State};
use crate::broker::tenancy::{definitions_file, export};

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/definitions", get(export_all).post(import_all))
        .route(
            "/api/definitions/{vhost}",
            get(export_vhost).post(import_vhost),
        )
}

async fn export_all(state: State, caller: Caller) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    let api = state.0;
    let config = &api.config;
    Ok(Json(export::broker_definitions(
        &api.broker,
        &config.product_version,
        &config.product,
    )))
}

async fn export_vhost(
    state: State,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(Level::Administrator)?;
    let vhost = state.0.broker.vhost(&vhost).ok_or(ApiError::NotFound)?;
    Ok(Json(export::vhost_definitions(
        &vhost,
        &state.0.config.product_version,
    )))
}

/// The body as definitions JSON (RabbitMQ's reason when it is not).
fn parse(body: &Bytes) -> ApiResult<Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(ApiError::BadRequest("failed_to_parse_json".into())),
    }
}

async fn import(api: Arc<Api>, definitions: Value) -> ApiResult<StatusCode> {
    let text = definitions.to_string();
    let imported =
        super::off_runtime(move || definitions_file::import_json(&api.broker, &text)).await?;
    match imported {
        Ok(imported) => {
            tracing::info!("imported definitions over HTTP: {imported:?}");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(reason) => Err(ApiError::BadRequest(reason)),
    }
}

async fn import_all(state: State, caller: Caller, body: Bytes) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let definitions = parse(&body)?;
    import(state.0, definitions).await
}

/// One vhost's definitions: its topology goes into `vhost` whatever the file says; users,
/// vhosts and permissions in it are ignored, as RabbitMQ does for a vhost import.
async fn import_vhost(
    state: State,
    caller: Caller,
    Path(vhost): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    if state.0.broker.vhost(&vhost).is_none() {
        return Err(ApiError::NotFound);
    }
    let Value::Object(mut definitions) = parse(&body)? else {
        return Err(ApiError::BadRequest("failed_to_parse_json".into()));
    };
    for global in [
        "users",
        "vhosts",
        "permissions",
        "topic_permissions",
        "global_parameters",
    ] {
        definitions.remove(global);
    }
    for section in ["queues", "exchanges", "bindings", "policies", "parameters"] {
        if let Some(Value::Array(items)) = definitions.get_mut(section) {
            for item in items {
                if let Value::Object(item) = item {
                    item.insert("vhost".into(), vhost.clone().into());
                }
            }
        }
    }
    import(state.0, Value::Object(definitions)).await
}
