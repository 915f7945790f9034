//! Request bodies as RabbitMQ's management API reads them: a JSON object (an empty body is an
//! empty object), fields that may be a string or a list (tags), and RabbitMQ's 400 reasons.

use axum::body::Bytes;
use serde_json::{Map, Value};

use super::error::{ApiError, ApiResult};

/// The body as a JSON object.
pub fn object(body: &Bytes) -> ApiResult<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        // RabbitMQ's reason, whatever is wrong with the body.
        Ok(_) | Err(_) => Err(ApiError::BadRequest("not_json".into())),
    }
}

/// A string field; `None` when absent or null.
pub fn string<'a>(body: &'a Map<String, Value>, key: &str) -> ApiResult<Option<&'a str>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::BadRequest(format!(
            "{key} must be a string, not {other}"
        ))),
    }
}

/// Tags as RabbitMQ takes them: `"a,b"` or `["a", "b"]`; absent is none.
pub fn tags(body: &Map<String, Value>, key: &str) -> ApiResult<Vec<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(crate::auth::users::parse_tags(s)),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(ApiError::BadRequest(format!(
                    "{key} must be strings, not {other}"
                ))),
            })
            .filter(|tag| !matches!(tag, Ok(t) if t.is_empty()))
            .collect(),
        Some(other) => Err(ApiError::BadRequest(format!(
            "{key} must be a string or a list, not {other}"
        ))),
    }
}

/// A figure with its rate, as RabbitMQ reports every counter (`x` and `x_details.rate`).
pub fn with_rate(into: &mut Map<String, Value>, key: &str, value: u64, rate: f64) {
    into.insert(key.to_string(), value.into());
    into.insert(
        format!("{key}_details"),
        serde_json::json!({ "rate": rate }),
    );
}

pub use crate::broker::arguments_json::table_json;

/// A boolean field with a default; RabbitMQ's reason for anything else.
pub fn boolean(body: &Map<String, Value>, key: &str, default: bool) -> ApiResult<bool> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) if s == "true" || s == "false" => Ok(s == "true"),
        Some(other) => Err(ApiError::BadRequest(format!("[\"not_boolean\",{other}]"))),
    }
}

/// The `arguments` object of a body (absent: none).
pub fn arguments(body: &Map<String, Value>) -> ApiResult<amq_protocol::types::FieldTable> {
    match body.get("arguments") {
        None | Some(Value::Null) => Ok(Default::default()),
        Some(Value::Object(map)) => Ok(crate::broker::tenancy::definitions_file::table(map)),
        Some(other) => Err(ApiError::BadRequest(format!(
            "arguments must be an object, not {other}"
        ))),
    }
}
