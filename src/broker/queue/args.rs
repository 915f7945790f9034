//! A queue's `x-*` arguments: [`QueueArguments::parse`] reads and checks them once, when a queue
//! is created (by queue.declare or from the store), with RabbitMQ's reply texts
//! (`invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}`); and
//! [`QueueArguments::check_equivalent`] compares them on redeclare.
//!
//! Only the reading of arguments lives here; what each one does belongs to the file of its
//! feature (limits.rs, ttl.rs, dead_letter.rs, consumers.rs, ready.rs), which reads the typed
//! field and never the table.

use amq_protocol::types::{AMQPValue, FieldTable};
use warren_protocol::AmqpError;

use super::dead_letter::DeadLetterTarget;
use crate::broker::field_display::{as_i64, type_name, value};

/// Arguments RabbitMQ compares when a queue is redeclared; other arguments are ignored there.
const EQUIVALENCE_CHECKED: [&str; 14] = [
    "x-retry-delays",
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
    "x-max-age",
    "x-stream-max-segment-size-bytes",
];

/// What RabbitMQ 3.10 compares when a stream is redeclared (a key streams refuse at creation
/// is accepted on a redeclare, and not compared).
const STREAM_EQUIVALENCE_CHECKED: [&str; 6] = [
    "x-queue-type",
    "x-max-length-bytes",
    "x-max-age",
    "x-stream-max-segment-size-bytes",
    "x-initial-cluster-size",
    "x-queue-leader-locator",
];

/// RabbitMQ's largest TTL / expiry in milliseconds.
const MAX_EXPIRY: i64 = 365 * 24 * 3600 * 1000 * 10;

/// What a full queue does with a new message (`x-overflow`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Overflow {
    /// The oldest ready messages go (dead-lettered as `maxlen`).
    #[default]
    DropHead,
    /// The new message is refused (the publisher gets a nack).
    RejectPublish,
    /// As `RejectPublish`, and the refused message is dead-lettered.
    RejectPublishDlx,
}

/// `x-dead-letter-strategy` (quorum queues): how dead letters leave (dead_letter/at_least_once.rs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeadLetterStrategy {
    /// Published to the dead-letter exchange and forgotten, as classic queues do.
    #[default]
    AtMostOnce,
    /// Kept in the queue until every queue it routes to has accepted it.
    AtLeastOnce,
}

impl DeadLetterStrategy {
    /// A value of the argument or of the `dead-letter-strategy` policy key.
    pub fn parse(s: &str) -> Option<DeadLetterStrategy> {
        match s {
            "at-most-once" => Some(DeadLetterStrategy::AtMostOnce),
            "at-least-once" => Some(DeadLetterStrategy::AtLeastOnce),
            _ => None,
        }
    }
}

/// `x-queue-type`: what kind of queue this is (queue_type.rs says what each means).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueueType {
    #[default]
    Classic,
    /// RabbitMQ's quorum queue, on one node: every message stored, whatever its delivery
    /// mode.
    Quorum,
    /// RabbitMQ's stream: an append-only log read from offsets (queue/stream/).
    Stream,
}

/// `x-queue-mode`. Accepted as RabbitMQ accepts it; durable queues page their backlog to the
/// store in either mode (see backlog.rs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QueueMode {
    #[default]
    Default,
    Lazy,
}

/// A queue's arguments, typed and checked. The [`Default`] is a queue declared without any.
///
/// What the queue acts on is these merged with the policies that apply to it
/// ([`QueueSettings`](super::QueueSettings), settings.rs); these stay as the client declared
/// them, since redeclare equivalence and the stored definition use the declaration alone.
#[derive(Debug, Clone, Default)]
pub struct QueueArguments {
    /// `x-max-length`: ready messages allowed before [`Self::overflow`] applies.
    pub max_length: Option<u64>,
    /// `x-max-length-bytes`: body bytes of ready messages allowed before the same.
    pub max_length_bytes: Option<u64>,
    /// `x-overflow`.
    pub overflow: Overflow,
    /// `x-message-ttl` in milliseconds.
    pub message_ttl_ms: Option<u64>,
    /// `x-expires` in milliseconds (never 0).
    pub expires_ms: Option<u64>,
    /// `x-dead-letter-exchange`, with `x-dead-letter-routing-key` if given.
    pub dead_letter: Option<DeadLetterTarget>,
    /// `x-max-priority`: the highest priority level; 0 = not a priority queue.
    pub max_priority: u8,
    /// `x-single-active-consumer`.
    pub single_active_consumer: bool,
    /// `x-consumer-timeout` in milliseconds (0 = off); `None` leaves the broker's default.
    pub consumer_timeout_ms: Option<u64>,
    /// `x-delivery-limit`: checked as RabbitMQ checks it; it acts on quorum queues only.
    pub delivery_limit: Option<u64>,
    /// `x-dead-letter-strategy` (quorum queues only; a classic queue refuses the key).
    pub dead_letter_strategy: Option<DeadLetterStrategy>,
    /// `x-queue-mode`.
    pub mode: QueueMode,
    /// `x-queue-type`.
    pub queue_type: QueueType,
    /// `x-max-age` in milliseconds (streams: retention by age).
    pub max_age_ms: Option<u64>,
    /// `x-stream-max-segment-size-bytes` (streams: the unit retention removes).
    pub stream_segment_bytes: Option<u64>,
    /// `x-retry-delays` in ms (classic queues: retry.rs).
    pub retry_delays: Option<Vec<u64>>,
    /// The table as declared, unknown keys included.
    declared: FieldTable,
}

/// The two dead-letter keys, gathered while reading: a routing key needs an exchange.
#[derive(Default)]
struct DeadLetterKeys {
    exchange: Option<String>,
    routing_key: Option<String>,
}

impl QueueArguments {
    /// Reads every known `x-*` argument, refusing a wrong type or value with RabbitMQ's 406
    /// text; keys are checked in the table's (sorted) order, so the first bad one is reported.
    /// Unknown keys are kept in [`Self::declared`] and mean nothing, as in RabbitMQ. `what`
    /// names the queue: `queue 'q' in vhost '/'`.
    pub fn parse(declared: FieldTable, what: &str) -> Result<Self, AmqpError> {
        let mut arguments = QueueArguments::default();
        let mut dead_letter = DeadLetterKeys::default();
        let stream = declared
            .inner()
            .get("x-queue-type")
            .is_some_and(|v| super::queue_type::parse(v) == Ok(QueueType::Stream));
        if stream {
            // A stream checks its own values first, then refuses keys whatever their values.
            super::stream::arguments::check_values(&declared, what)?;
            QueueType::Stream.check_arguments(&declared, what)?;
        }
        // RabbitMQ checks the values of its type's arguments only: a classic queue's
        // x-dead-letter-strategy and x-delivery-limit are refused as keys (queue_type.rs),
        // whatever their values.
        let quorum = declared
            .inner()
            .get("x-queue-type")
            .is_some_and(|v| super::queue_type::parse(v) == Ok(QueueType::Quorum));
        for (key, v) in declared.inner() {
            let key = key.as_str();
            if matches!(key, "x-dead-letter-strategy" | "x-delivery-limit") && !quorum {
                continue;
            }
            arguments
                .read(key, v, &mut dead_letter)
                .map_err(|reason| invalid(key, what, reason))?;
        }
        arguments.dead_letter = match dead_letter {
            DeadLetterKeys {
                exchange: Some(exchange),
                routing_key,
            } => Some(DeadLetterTarget {
                exchange,
                routing_key,
            }),
            DeadLetterKeys {
                routing_key: Some(_),
                ..
            } => {
                return Err(invalid(
                    "x-dead-letter-routing-key",
                    what,
                    "routing_key_but_no_dlx_defined".into(),
                ));
            }
            _ => None,
        };
        arguments.queue_type.check_arguments(&declared, what)?;
        if arguments.retry_delays.is_some() && arguments.queue_type != QueueType::Classic {
            return Err(invalid(
                "x-retry-delays",
                what,
                "{not_supported,classic_queues_only}".into(),
            ));
        }
        arguments.declared = declared;
        Ok(arguments)
    }

    /// One argument into its field; the error is RabbitMQ's reason (`{value_negative,-1}`).
    fn read(
        &mut self,
        key: &str,
        v: &AMQPValue,
        dead_letter: &mut DeadLetterKeys,
    ) -> Result<(), String> {
        match key {
            "x-expires" => self.expires_ms = Some(positive_int(v)?),
            "x-message-ttl" => self.message_ttl_ms = Some(non_negative_int(v, MAX_EXPIRY)?),
            "x-max-length" => self.max_length = Some(non_negative_int(v, i64::MAX)?),
            "x-max-length-bytes" => self.max_length_bytes = Some(non_negative_int(v, i64::MAX)?),
            "x-delivery-limit" => self.delivery_limit = Some(non_negative_int(v, i64::MAX)?),
            "x-consumer-timeout" => {
                self.consumer_timeout_ms = Some(non_negative_int(v, i64::MAX)?);
            }
            "x-max-priority" => self.max_priority = max_priority(v)?,
            "x-dead-letter-exchange" => dead_letter.exchange = Some(string(v)?),
            "x-dead-letter-routing-key" => dead_letter.routing_key = Some(string(v)?),
            "x-dead-letter-strategy" => {
                self.dead_letter_strategy = Some(match v {
                    AMQPValue::LongString(_) | AMQPValue::ShortString(_) => {
                        DeadLetterStrategy::parse(&string(v)?)
                            .ok_or_else(|| "invalid_dlx_strategy".to_string())?
                    }
                    other => return Err(format!("{{unacceptable_type,{}}}", type_name(other))),
                });
            }
            "x-overflow" => {
                self.overflow = match string(v)?.as_str() {
                    "drop-head" => Overflow::DropHead,
                    "reject-publish" => Overflow::RejectPublish,
                    "reject-publish-dlx" => Overflow::RejectPublishDlx,
                    _ => return Err("invalid_overflow".into()),
                }
            }
            "x-queue-mode" => {
                self.mode = match string(v)?.as_str() {
                    "default" => QueueMode::Default,
                    "lazy" => QueueMode::Lazy,
                    _ => return Err("invalid_queue_mode".into()),
                }
            }
            "x-queue-type" => self.queue_type = super::queue_type::parse(v)?,
            "x-retry-delays" => self.retry_delays = Some(super::retry::parse_delays(v)?),
            // Stream arguments: a stream checked their values already (stream/arguments.rs);
            // other types refuse or ignore them.
            "x-max-age" => self.max_age_ms = super::stream::arguments::max_age(v).ok(),
            "x-stream-max-segment-size-bytes" => {
                self.stream_segment_bytes = as_i64(v).and_then(|n| u64::try_from(n).ok());
            }
            "x-single-active-consumer" => {
                self.single_active_consumer = match v {
                    AMQPValue::Boolean(b) => *b,
                    other => return Err(format!("{{unacceptable_type,{}}}", type_name(other))),
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The arguments as the client declared them: what a redeclare is compared with and what
    /// the store keeps.
    pub fn declared(&self) -> &FieldTable {
        &self.declared
    }

    /// Compares a redeclaration's arguments with these, on the keys RabbitMQ compares
    /// (integers of any width are equal when their values are). The received table is not
    /// checked otherwise, as in RabbitMQ.
    pub fn check_equivalent(&self, received: &FieldTable, what: &str) -> Result<(), AmqpError> {
        let keys: &[&str] = match self.queue_type {
            QueueType::Stream => &STREAM_EQUIVALENCE_CHECKED,
            _ => &EQUIVALENCE_CHECKED,
        };
        let by_type = self.queue_type.also_compared();
        for key in keys.iter().chain(by_type) {
            let key = *key;
            let (cur, new) = (self.declared.inner().get(key), received.inner().get(key));
            let same = match (cur, new) {
                // No x-queue-type is a classic queue, as `classic` is.
                _ if key == "x-queue-type" => super::queue_type::same_type(self.queue_type, new),
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
}

fn invalid(key: &str, what: &str, reason: String) -> AmqpError {
    AmqpError::precondition(format_args!("invalid arg '{key}' for {what}: {reason}"))
}

/// An integer of any width; a timestamp is not one for RabbitMQ.
pub(super) fn int(v: &AMQPValue) -> Result<i64, String> {
    as_i64(v)
        .filter(|_| !matches!(v, AMQPValue::Timestamp(_)))
        .ok_or_else(|| format!("{{unacceptable_type,{}}}", type_name(v)))
}

/// `x-expires`: 1 up to RabbitMQ's largest expiry.
fn positive_int(v: &AMQPValue) -> Result<u64, String> {
    match int(v)? {
        0 => Err("{value_zero,0}".into()),
        n if n < 0 => Err(format!("{{value_negative,{n}}}")),
        n if n > MAX_EXPIRY => Err(format!("{{value_too_large,{n},{MAX_EXPIRY}}}")),
        n => Ok(n.unsigned_abs()),
    }
}

fn non_negative_int(v: &AMQPValue, max: i64) -> Result<u64, String> {
    match int(v)? {
        n if n < 0 => Err(format!("{{value_negative,{n}}}")),
        n if n > max => Err(format!("{{value_too_large,{n},{max}}}")),
        n => Ok(n.unsigned_abs()),
    }
}

pub(super) fn string(v: &AMQPValue) -> Result<String, String> {
    match v {
        AMQPValue::LongString(s) => Ok(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Ok(s.as_str().to_string()),
        other => Err(format!("{{unacceptable_type,{}}}", type_name(other))),
    }
}

/// `x-max-priority`: an integer up to 255 (0 is accepted: an ordinary queue). RabbitMQ words
/// its type error differently from the other integers'.
fn max_priority(v: &AMQPValue) -> Result<u8, String> {
    let Some(n) = as_i64(v).filter(|_| !matches!(v, AMQPValue::Timestamp(_))) else {
        return Err(format!("\"expected integer, got {}\"", type_name(v)));
    };
    match n {
        n if n < 0 => Err(format!("{{value_negative,{n}}}")),
        n => u8::try_from(n).map_err(|_| format!("{{max_value_exceeded,{n}}}")),
    }
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
#[path = "args_tests.rs"]
mod tests;
