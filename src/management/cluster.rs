//! `/api/cluster-status` (warren's own; RabbitMQ has `rabbitmqctl cluster_status` instead):
//! members, links and each Raft group's leader, term and lag, as this node sees them. A node
//! that is not clustered answers 404.

use std::sync::Arc;

use axum::Json;
use axum::routing::get;

use super::auth::{Caller, Level};
use super::error::{ApiError, ApiResult};
use super::{Api, State};
use crate::cluster::status::ClusterStatus;

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new().route("/api/cluster-status", get(show))
}

async fn show(state: State, caller: Caller) -> ApiResult<Json<ClusterStatus>> {
    caller.require(Level::Monitoring)?;
    match &state.0.cluster {
        Some(node) => Ok(Json(node.status())),
        None => Err(ApiError::NotFound),
    }
}
