//! `/api/policies` and `/api/operator-policies`: list, get, put and delete policies as
//! RabbitMQ 3.10's API does. Any management user lists the policies of the vhosts they see;
//! reading or changing one needs the `policymaker` (or `administrator`) tag and access to its
//! vhost; operator policies are administrators' alone. Refusals carry RabbitMQ's texts — for
//! policies (not operator policies) with `<` and `>` HTML-escaped, as RabbitMQ's answer has
//! them. Checking, storing and applying is the broker's (`tenancy/policies.rs`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::Value;

use super::auth::{Caller, Level};
use super::error::{ApiError, ApiResult};
use super::vhosts::run_blocking;
use super::{Api, State, created_or_updated, json};
use crate::broker::policy::PolicyKind;
use crate::broker::tenancy::TenancyError;

pub fn routes() -> axum::Router<Arc<Api>> {
    axum::Router::new()
        .route("/api/policies", get(list_policies))
        .route("/api/policies/{vhost}", get(list_policies_of))
        .route(
            "/api/policies/{vhost}/{name}",
            get(get_policy).put(put_policy).delete(delete_policy),
        )
        .route("/api/operator-policies", get(list_operator_policies))
        .route(
            "/api/operator-policies/{vhost}",
            get(list_operator_policies_of),
        )
        .route(
            "/api/operator-policies/{vhost}/{name}",
            get(get_operator_policy)
                .put(put_operator_policy)
                .delete(delete_operator_policy),
        )
}

fn listed(api: &Api, caller: &Caller, kind: PolicyKind, vhost: Option<&str>) -> Vec<Value> {
    api.broker
        .all_policies(kind)
        .iter()
        .filter(|p| vhost.is_none_or(|v| p.vhost == v) && caller.sees_vhost(api, &p.vhost))
        .map(|p| p.to_json())
        .collect()
}

/// A listing of one vhost: 404 if it does not exist, 401 if the caller cannot see it.
fn listed_of(api: &Api, caller: &Caller, kind: PolicyKind, vhost: &str) -> ApiResult<Vec<Value>> {
    if api.broker.vhost(vhost).is_none() {
        return Err(ApiError::NotFound);
    }
    if !caller.sees_vhost(api, vhost) {
        return Err(ApiError::NotAuthorised(
            "User not authorised to access virtual host",
        ));
    }
    Ok(listed(api, caller, kind, Some(vhost)))
}

/// Who may read or change one policy of `kind` in `vhost`.
fn check_object_access(api: &Api, caller: &Caller, kind: PolicyKind, vhost: &str) -> ApiResult<()> {
    match kind {
        PolicyKind::Operator => caller.require(Level::Administrator),
        PolicyKind::Policy => {
            let policymaker = caller.is(Level::Administrator) || caller.user.has_tag("policymaker");
            let in_vhost = api.broker.auth.permissions(caller.name(), vhost).is_some()
                || caller.is(Level::Administrator);
            if policymaker && in_vhost {
                Ok(())
            } else {
                Err(ApiError::NotAuthorised(
                    "User not authorised to access object",
                ))
            }
        }
    }
}

async fn get_one(
    api: Arc<Api>,
    caller: Caller,
    kind: PolicyKind,
    vhost: String,
    name: String,
) -> ApiResult<Json<Value>> {
    check_object_access(&api, &caller, kind, &vhost)?;
    let host = api.broker.vhost(&vhost).ok_or(ApiError::NotFound)?;
    let policies = host.policies();
    let policy = policies.get(kind, &name).ok_or(ApiError::NotFound)?;
    Ok(Json(policy.to_json()))
}

async fn put_one(
    api: Arc<Api>,
    caller: Caller,
    kind: PolicyKind,
    vhost: String,
    name: String,
    body: Bytes,
) -> ApiResult<StatusCode> {
    check_object_access(&api, &caller, kind, &vhost)?;
    let body = Value::Object(json::object(&body)?);
    let broker = api.broker.clone();
    let outcome = super::off_runtime(move || broker.put_policy(&vhost, &name, kind, &body)).await?;
    match outcome {
        Ok(created) => Ok(created_or_updated(created)),
        Err(TenancyError::NotFound(_)) => Err(ApiError::Missing("vhost_not_found".into())),
        Err(TenancyError::Invalid(reason)) if kind == PolicyKind::Policy => {
            Err(ApiError::BadRequest(escape_html(&reason)))
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete_one(
    api: Arc<Api>,
    caller: Caller,
    kind: PolicyKind,
    vhost: String,
    name: String,
) -> ApiResult<StatusCode> {
    check_object_access(&api, &caller, kind, &vhost)?;
    let broker = api.broker.clone();
    run_blocking(move || broker.delete_policy(&vhost, &name, kind)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `<` and `>` as RabbitMQ's API escapes them in a policy's validation error.
fn escape_html(text: &str) -> String {
    text.replace('<', "&lt;").replace('>', "&gt;")
}

async fn list_policies(state: State, caller: Caller) -> Json<Vec<Value>> {
    Json(listed(&state.0, &caller, PolicyKind::Policy, None))
}

async fn list_policies_of(
    state: State,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    listed_of(&state.0, &caller, PolicyKind::Policy, &vhost).map(Json)
}

async fn get_policy(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    get_one(state.0, caller, PolicyKind::Policy, vhost, name).await
}

async fn put_policy(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    put_one(state.0, caller, PolicyKind::Policy, vhost, name, body).await
}

async fn delete_policy(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete_one(state.0, caller, PolicyKind::Policy, vhost, name).await
}

async fn list_operator_policies(state: State, caller: Caller) -> Json<Vec<Value>> {
    Json(listed(&state.0, &caller, PolicyKind::Operator, None))
}

async fn list_operator_policies_of(
    state: State,
    caller: Caller,
    Path(vhost): Path<String>,
) -> ApiResult<Json<Vec<Value>>> {
    listed_of(&state.0, &caller, PolicyKind::Operator, &vhost).map(Json)
}

async fn get_operator_policy(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    get_one(state.0, caller, PolicyKind::Operator, vhost, name).await
}

async fn put_operator_policy(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    put_one(state.0, caller, PolicyKind::Operator, vhost, name, body).await
}

async fn delete_operator_policy(
    state: State,
    caller: Caller,
    Path((vhost, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete_one(state.0, caller, PolicyKind::Operator, vhost, name).await
}
