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

/// Nesting deeper than this is shown as null (tables come from peers; the codec bounds them
/// already, this keeps the rendering bounded on its own).
const MAX_DEPTH: usize = 32;

/// AMQP arguments as RabbitMQ's API shows them: numbers, strings, booleans, lists, objects.
pub fn table_json(table: &amq_protocol::types::FieldTable) -> Value {
    table_at(table, 0)
}

fn table_at(table: &amq_protocol::types::FieldTable, depth: usize) -> Value {
    table
        .inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), value_at(v, depth + 1)))
        .collect::<Map<_, _>>()
        .into()
}

fn value_at(v: &amq_protocol::types::AMQPValue, depth: usize) -> Value {
    use amq_protocol::types::AMQPValue as V;
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match v {
        V::Boolean(b) => (*b).into(),
        V::ShortShortInt(n) => (*n).into(),
        V::ShortShortUInt(n) => (*n).into(),
        V::ShortInt(n) => (*n).into(),
        V::ShortUInt(n) => (*n).into(),
        V::LongInt(n) => (*n).into(),
        V::LongUInt(n) => (*n).into(),
        V::LongLongInt(n) => (*n).into(),
        V::Timestamp(n) => (*n).into(),
        V::Float(n) => f64::from(*n).into(),
        V::Double(n) => (*n).into(),
        V::DecimalValue(d) => (f64::from(d.value) / 10f64.powi(i32::from(d.scale))).into(),
        V::ShortString(s) => s.as_str().into(),
        V::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into(),
        V::ByteArray(b) => String::from_utf8_lossy(b.as_slice()).into(),
        V::FieldArray(items) => items
            .as_slice()
            .iter()
            .map(|item| value_at(item, depth + 1))
            .collect(),
        V::FieldTable(t) => table_at(t, depth),
        V::Void => Value::Null,
    }
}

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
