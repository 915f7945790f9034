//! `/api/vhosts`: list, show, create or update (PUT), delete; and a vhost's permissions.
//!
//! Creating, changing and deleting need `administrator`; listing shows a user the vhosts it
//! has permissions in (every vhost to administrators and monitors), as RabbitMQ does. The
//! creator of a vhost gets `.*` permissions on it, as on RabbitMQ.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::auth::{Caller, Level};
use super::error::{ApiError, ApiResult};
use super::json::{self, with_rate};
use super::{Api, State, node_name};
use crate::broker::vhost::{VHost, VhostSettings};

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/vhosts", get(list))
        .route("/api/vhosts/{name}", get(show).put(put).delete(delete))
}

/// A vhost as `/api/vhosts` shows it.
pub fn vhost_json(vhost: &VHost) -> Value {
    let settings = vhost.settings();
    let (mut ready, mut unacked) = (0u64, 0u64);
    for queue in vhost.queues() {
        let (r, u) = queue.ready_and_unacked();
        ready += u64::from(r);
        unacked += u64::from(u);
    }
    let mut out = Map::new();
    out.insert("name".into(), vhost.name.to_string().into());
    out.insert("description".into(), settings.description.as_str().into());
    out.insert("tags".into(), json!(settings.tags));
    out.insert(
        "metadata".into(),
        json!({"description": settings.description, "tags": settings.tags}),
    );
    // RabbitMQ 3.10 shows the atom of an unset default: every vhost here.
    out.insert("default_queue_type".into(), "undefined".into());
    out.insert("tracing".into(), false.into());
    out.insert("cluster_state".into(), json!({ node_name(): "running" }));
    with_rate(&mut out, "messages", ready + unacked, 0.0);
    with_rate(&mut out, "messages_ready", ready, 0.0);
    with_rate(&mut out, "messages_unacknowledged", unacked, 0.0);
    Value::Object(out)
}

async fn list(state: State, caller: Caller) -> Json<Vec<Value>> {
    let api = state.0;
    let mut vhosts = api.broker.vhosts();
    vhosts.retain(|v| caller.sees_vhost(&api, &v.name));
    vhosts.sort_by(|a, b| a.name.cmp(&b.name));
    Json(vhosts.iter().map(|v| vhost_json(v)).collect())
}

async fn show(state: State, caller: Caller, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let api = state.0;
    let vhost = api.broker.vhost(&name).ok_or(ApiError::NotFound)?;
    if !caller.sees_vhost(&api, &name) {
        return Err(ApiError::NotAuthorised("Not authorised to access vhost"));
    }
    Ok(Json(vhost_json(&vhost)))
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
    let existing = api.broker.vhost(&name).map(|v| v.settings());
    // As RabbitMQ: description and tags are replaced (absent means none); limits have their
    // own endpoint and stay.
    let settings = VhostSettings {
        description: json::string(&body, "description")?
            .unwrap_or("")
            .to_string(),
        tags: json::tags(&body, "tags")?,
        limits: existing.as_ref().map(|s| s.limits).unwrap_or_default(),
    };
    let created = existing.is_none();
    let creator = caller.name().to_string();
    run_blocking(move || {
        api.broker.put_vhost(&name, settings)?;
        // RabbitMQ gives whoever creates a vhost full permissions on it.
        if created {
            api.broker
                .set_permissions(&creator, &name, ".*", ".*", ".*")?;
        }
        Ok(())
    })
    .await?;
    Ok(super::created_or_updated(created))
}

async fn delete(state: State, caller: Caller, Path(name): Path<String>) -> ApiResult<StatusCode> {
    caller.require(Level::Administrator)?;
    let api = state.0;
    run_blocking(move || api.broker.delete_vhost(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs a broker operation that commits to the store off the runtime's workers.
pub async fn run_blocking<T: Send + 'static>(
    operation: impl FnOnce() -> Result<T, crate::broker::tenancy::TenancyError> + Send + 'static,
) -> ApiResult<T> {
    super::off_runtime(operation).await?.map_err(ApiError::from)
}
