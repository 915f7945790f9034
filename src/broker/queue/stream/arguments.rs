//! A stream's own argument checks, as RabbitMQ 3.10's stream queue type makes them: the values
//! of `x-max-length-bytes`, `x-max-age` and `x-stream-max-segment-size-bytes` in that fixed
//! order (not the table's), before any refused key is named, with the stream type's texts
//! (`"expected integer, got longstr"`, `invalid_max_age`, `Exceeded max value for …`).
//!
//! One difference on purpose: RabbitMQ crashes (541) on an `x-max-age` that does not start
//! with a digit; warren answers `invalid_max_age` as for any other bad one.

use amq_protocol::types::{AMQPValue, FieldTable};
use warren_protocol::AmqpError;

use super::retention::parse_max_age;
use crate::broker::field_display::{as_i64, type_name};

/// RabbitMQ's largest `x-stream-max-segment-size-bytes`.
const MAX_SEGMENT_BYTES: i64 = 3_000_000_000;

/// Checks the values a stream reads; `what` names the queue.
pub fn check_values(declared: &FieldTable, what: &str) -> Result<(), AmqpError> {
    let table = declared.inner();
    let invalid = |key: &str, reason: String| {
        AmqpError::precondition(format_args!("invalid arg '{key}' for {what}: {reason}"))
    };
    if let Some(v) = table.get("x-max-length-bytes") {
        non_negative(v).map_err(|r| invalid("x-max-length-bytes", r))?;
    }
    if let Some(v) = table.get("x-max-age") {
        max_age(v).map_err(|r| invalid("x-max-age", r))?;
    }
    if let Some(v) = table.get("x-stream-max-segment-size-bytes") {
        let n = non_negative(v).map_err(|r| invalid("x-stream-max-segment-size-bytes", r))?;
        if n > MAX_SEGMENT_BYTES {
            return Err(AmqpError::precondition(
                "Exceeded max value for x-stream-max-segment-size-bytes",
            ));
        }
    }
    Ok(())
}

/// `x-max-age`: a string of digits and one unit, more than zero.
pub fn max_age(v: &AMQPValue) -> Result<u64, String> {
    let text = match v {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_string(),
        other => return Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    };
    parse_max_age(&text)
        .filter(|ms| *ms > 0)
        .ok_or_else(|| "invalid_max_age".to_string())
}

fn non_negative(v: &AMQPValue) -> Result<i64, String> {
    let n = as_i64(v)
        .filter(|_| !matches!(v, AMQPValue::Timestamp(_)))
        .ok_or_else(|| format!("\"expected integer, got {}\"", type_name(v)))?;
    if n < 0 {
        return Err(format!("{{value_negative,{n}}}"));
    }
    Ok(n)
}
