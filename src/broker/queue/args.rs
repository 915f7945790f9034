//! `x-*` queue arguments: type and range checks at declare time, and the equivalence check on
//! redeclare — both in one place and in RabbitMQ's wording
//! (`invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}`).
//!
//! Only validation lives here; what each argument does belongs to the file of its feature.

use amq_protocol::types::{AMQPValue, FieldTable};
use warren_protocol::AmqpError;

use crate::broker::field_display::{as_i64, type_name, value};

/// Arguments RabbitMQ compares when a queue is redeclared; other arguments are ignored there.
const EQUIVALENCE_CHECKED: [&str; 11] = [
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-type",
    "x-single-active-consumer",
];

/// RabbitMQ's largest TTL / expiry in milliseconds.
const MAX_EXPIRY: i64 = 365 * 24 * 3600 * 1000 * 10;

/// Checks every known `x-*` argument of a queue declaration. `what` is `queue 'q' in vhost '/'`.
pub fn validate(arguments: &FieldTable, what: &str) -> Result<(), AmqpError> {
    for (key, v) in arguments.inner() {
        let key = key.as_str();
        let check = match key {
            "x-expires" => positive_int(v),
            "x-message-ttl" => non_negative_int(v, MAX_EXPIRY),
            "x-max-length" | "x-max-length-bytes" | "x-delivery-limit" => {
                non_negative_int(v, i64::MAX)
            }
            "x-max-priority" => max_priority_arg(v),
            "x-consumer-timeout" => non_negative_int(v, i64::MAX),
            "x-dead-letter-exchange" | "x-dead-letter-routing-key" => string(v).map(|_| ()),
            "x-overflow" => one_of(
                v,
                &["drop-head", "reject-publish", "reject-publish-dlx"],
                "invalid_overflow",
            ),
            "x-queue-mode" => one_of(v, &["default", "lazy"], "invalid_queue_mode"),
            "x-queue-type" => one_of(v, &["classic"], "invalid_queue_type"),
            "x-single-active-consumer" => match v {
                AMQPValue::Boolean(_) => Ok(()),
                other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
            },
            _ => Ok(()),
        };
        check.map_err(|reason| {
            AmqpError::precondition(format_args!("invalid arg '{key}' for {what}: {reason}"))
        })?;
    }
    if arguments.inner().contains_key("x-dead-letter-routing-key")
        && !arguments.inner().contains_key("x-dead-letter-exchange")
    {
        return Err(AmqpError::precondition(format_args!(
            "invalid arg 'x-dead-letter-routing-key' for {what}: routing_key_but_no_dlx_defined"
        )));
    }
    Ok(())
}

fn int(v: &AMQPValue) -> Result<i64, String> {
    as_i64(v)
        .filter(|_| !matches!(v, AMQPValue::Timestamp(_)))
        .ok_or_else(|| format!("{{unacceptable_type,{}}}", type_name(v)))
}

fn positive_int(v: &AMQPValue) -> Result<(), String> {
    match int(v)? {
        0 => Err("{value_zero,0}".into()),
        n if n < 0 => Err(format!("{{value_negative,{n}}}")),
        n if n > MAX_EXPIRY => Err(format!("{{value_too_large,{n},{MAX_EXPIRY}}}")),
        _ => Ok(()),
    }
}

fn non_negative_int(v: &AMQPValue, max: i64) -> Result<(), String> {
    match int(v)? {
        n if n < 0 => Err(format!("{{value_negative,{n}}}")),
        n if n > max => Err(format!("{{value_too_large,{n},{max}}}")),
        _ => Ok(()),
    }
}

fn string(v: &AMQPValue) -> Result<String, String> {
    match v {
        AMQPValue::LongString(s) => Ok(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Ok(s.as_str().to_string()),
        other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    }
}

/// RabbitMQ reports an unknown value by its error atom alone (`invalid_overflow`).
fn one_of(v: &AMQPValue, allowed: &[&str], error: &str) -> Result<(), String> {
    let s = string(v)?;
    if allowed.contains(&s.as_str()) {
        Ok(())
    } else {
        Err(error.to_string())
    }
}

/// `x-max-priority`: an integer up to 255 (0 is accepted: an ordinary queue).
fn max_priority_arg(v: &AMQPValue) -> Result<(), String> {
    let Some(n) = as_i64(v).filter(|_| !matches!(v, AMQPValue::Timestamp(_))) else {
        return Err(format!("\"expected integer, got {}\"", type_name(v)));
    };
    match n {
        n if n < 0 => Err(format!("{{value_negative,{n}}}")),
        n if n > 255 => Err(format!("{{max_value_exceeded,{n}}}")),
        _ => Ok(()),
    }
}

/// `x-max-length`, if set (validated at declare: a non-negative integer).
pub fn max_length(arguments: &FieldTable) -> Option<u64> {
    arguments
        .inner()
        .get("x-max-length")
        .and_then(as_i64)
        .and_then(|n| u64::try_from(n).ok())
}

/// What a full queue does with a new message (`x-overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

pub fn overflow(arguments: &FieldTable) -> Overflow {
    match arguments
        .inner()
        .get("x-overflow")
        .and_then(|v| string(v).ok())
        .as_deref()
    {
        Some("reject-publish") => Overflow::RejectPublish,
        Some("reject-publish-dlx") => Overflow::RejectPublishDlx,
        _ => Overflow::DropHead,
    }
}

/// `x-max-length-bytes`.
pub fn max_length_bytes(arguments: &FieldTable) -> Option<u64> {
    arguments
        .inner()
        .get("x-max-length-bytes")
        .and_then(as_i64)
        .and_then(|n| u64::try_from(n).ok())
}

/// `x-consumer-timeout` in milliseconds.
pub fn consumer_timeout(arguments: &FieldTable) -> Option<u64> {
    arguments
        .inner()
        .get("x-consumer-timeout")
        .and_then(as_i64)
        .and_then(|n| u64::try_from(n).ok())
}

/// `x-message-ttl` in milliseconds.
pub fn message_ttl(arguments: &FieldTable) -> Option<u64> {
    arguments
        .inner()
        .get("x-message-ttl")
        .and_then(as_i64)
        .and_then(|n| u64::try_from(n).ok())
}

/// `x-expires` in milliseconds.
pub fn expires(arguments: &FieldTable) -> Option<u64> {
    arguments
        .inner()
        .get("x-expires")
        .and_then(as_i64)
        .and_then(|n| u64::try_from(n).ok())
}

/// `x-max-priority`: the highest priority level (0 = not a priority queue).
pub fn max_priority(arguments: &FieldTable) -> u8 {
    arguments
        .inner()
        .get("x-max-priority")
        .and_then(as_i64)
        .map_or(0, |n| n.clamp(0, 255) as u8)
}

/// `x-single-active-consumer`.
pub fn single_active_consumer(arguments: &FieldTable) -> bool {
    matches!(
        arguments.inner().get("x-single-active-consumer"),
        Some(AMQPValue::Boolean(true))
    )
}

/// Compares the arguments RabbitMQ compares on redeclare (integers of any width are equal
/// when their values are).
pub fn check_equivalent(
    current: &FieldTable,
    new: &FieldTable,
    what: &str,
) -> Result<(), AmqpError> {
    for key in EQUIVALENCE_CHECKED {
        let (cur, new) = (current.inner().get(key), new.inner().get(key));
        let same = match (cur, new) {
            (None, None) => true,
            (Some(a), Some(b)) => match (as_i64(a), as_i64(b)) {
                (Some(x), Some(y)) => x == y,
                _ => a == b,
            },
            _ => false,
        };
        if !same {
            return Err(inequivalent(key, what, new, cur));
        }
    }
    Ok(())
}

/// RabbitMQ's text for a mismatch: plain values when both sides have one, typed otherwise.
pub fn inequivalent(
    key: &str,
    what: &str,
    received: Option<&AMQPValue>,
    current: Option<&AMQPValue>,
) -> AmqpError {
    let describe = |v: Option<&AMQPValue>, both: bool| match v {
        None => "none".to_string(),
        Some(v) if both => format!("'{}'", value(v)),
        Some(v) => format!("the value '{}' of type '{}'", value(v), type_name(v)),
    };
    let both = received.is_some() && current.is_some();
    AmqpError::precondition(format_args!(
        "inequivalent arg '{key}' for {what}: received {} but current is {}",
        describe(received, both),
        describe(current, both)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(key: &str, v: AMQPValue) -> FieldTable {
        let mut t = FieldTable::default();
        t.insert(key.into(), v);
        t
    }

    #[test]
    fn negative_max_length_is_refused_in_rabbitmq_words() {
        let err = validate(
            &table("x-max-length", AMQPValue::LongLongInt(-1)),
            "queue 'q' in vhost '/'",
        )
        .unwrap_err();
        assert_eq!(
            err.text,
            "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"
        );
    }

    #[test]
    fn integer_widths_are_equivalent_and_values_are_compared() {
        let what = "queue 'q' in vhost '/'";
        assert!(
            check_equivalent(
                &table("x-max-length", AMQPValue::LongInt(10)),
                &table("x-max-length", AMQPValue::LongLongInt(10)),
                what
            )
            .is_ok()
        );
        let err = check_equivalent(
            &table("x-max-length", AMQPValue::LongInt(10)),
            &table("x-max-length", AMQPValue::LongInt(20)),
            what,
        )
        .unwrap_err();
        assert_eq!(
            err.text,
            "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received '20' but current is '10'"
        );
        // Arguments RabbitMQ does not compare are ignored.
        assert!(
            check_equivalent(
                &table("x-foo", AMQPValue::LongInt(1)),
                &FieldTable::default(),
                what
            )
            .is_ok()
        );
    }
}
