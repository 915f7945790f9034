//! Half messages (two-phase publish, as RocketMQ's transactional messages): a message
//! published with header `x-half: true` is stored and confirmed but not routed; a later publish
//! with header `x-half-commit: true` (or `x-half-rollback: true`) and the same `message_id`,
//! from any connection, routes it (or drops it). If neither comes within `x-half-check-after`
//! ms (default 60 s), warren publishes a *check* to the half message's `reply_to` queue (through
//! the default exchange): the message itself, with header `x-half-check` = the attempt; it asks
//! again with back-off (the wait doubles, at most an hour) up to `x-half-check-limit` times
//! (default 15), then rolls the message back: dropped, or published to the exchange named by
//! `x-half-dead-letter-exchange` with its routing key.
//!
//! Pending half messages of a vhost live in one schedule (delayed/schedule.rs) due at their
//! next check, in the store like delayed messages (persistent ones through the log: they
//! survive `kill -9`) and all in memory, found by `message_id`. That schedule's store id is
//! derived from the vhost's name, so a restart finds it without a stored definition.
//!
//! This file owns the headers' meaning, the vhost's half-message schedule and what happens at a
//! check; publish/half.rs turns publishes into holds, commits and rollbacks.

use std::sync::Arc;

use bytes::Bytes;
use warren_protocol::field_table;
use warren_protocol::{Properties, ShortStr};

use super::delayed::{
    Schedule, ScheduleSpec, Target, header_value, with_int_header, without_headers,
};
use super::message::Message;
use super::publish::Publisher;
use super::vhost::VHost;

/// Default wait before the first check-back, and default number of checks.
const CHECK_AFTER_MS: u64 = 60_000;
const CHECK_LIMIT: u64 = 15;
/// Longest wait between two checks.
const MAX_CHECK_WAIT_MS: u64 = 3_600_000;

/// What a publish asks of the half-message machinery.
#[derive(Debug, PartialEq, Eq)]
pub enum HalfRequest {
    /// Hold this message until it is committed or rolled back.
    Hold,
    /// Route the held message with this `message_id`.
    Commit(String),
    /// Drop the held message with this `message_id`.
    Rollback(String),
}

/// Whether a header value says yes: `true`, a non-zero integer, or the string "true".
fn truthy(value: &[u8]) -> bool {
    match value.first() {
        Some(b't') => value.get(1).is_some_and(|b| *b != 0),
        Some(b'S') => field_table::long_str(value) == Some(b"true"),
        _ => field_table::integer(value).is_some_and(|n| n != 0),
    }
}

/// A non-negative integer header, if there is one.
fn int_header(properties: &Properties, key: &str) -> Option<u64> {
    header_value(properties, key)
        .and_then(field_table::integer)
        .and_then(|n| u64::try_from(n).ok())
}

/// What `properties` ask for, if anything (a cheap scan of the header keys first).
pub fn half_request(properties: &Properties) -> Option<HalfRequest> {
    if !properties.has_header_key(&["x-half", "x-half-commit", "x-half-rollback"]) {
        return None;
    }
    let id = || {
        properties
            .short_str(warren_protocol::properties::Property::MessageId)
            .unwrap_or_default()
            .to_string()
    };
    let says = |key| header_value(properties, key).is_some_and(truthy);
    if says("x-half-commit") {
        Some(HalfRequest::Commit(id()))
    } else if says("x-half-rollback") {
        Some(HalfRequest::Rollback(id()))
    } else if says("x-half") {
        Some(HalfRequest::Hold)
    } else {
        None
    }
}

/// The message as routed at its commit (or sent as a check): without the half headers.
pub fn plain(properties: &Properties) -> Properties {
    without_headers(properties, |k| k.starts_with(b"x-half")).unwrap_or_else(|| properties.clone())
}

/// The store id of a vhost's half-message schedule: above every counter-made id (those stay
/// far below 2^63), derived from the name (FNV-1a).
fn schedule_id(vhost: &str) -> u64 {
    let hash = vhost.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (1 << 63) | (hash >> 1)
}

impl VHost {
    /// The vhost's half-message schedule, made on first use.
    pub(crate) fn half_schedule(&self) -> Arc<Schedule> {
        self.halves
            .get_or_init(|| self.new_half_schedule(0))
            .clone()
    }

    fn new_half_schedule(&self, restored: u64) -> Arc<Schedule> {
        let spec = ScheduleSpec {
            store: self.store().map(|s| (s.clone(), schedule_id(&self.name))),
            durable: true,
            restored,
        };
        self.schedule_for(Target::Half(self.weak()), spec)
    }

    /// At start-up: the store holds this vhost's pending half messages, if any (claimed from
    /// `schedules`, which the broker drops what nobody claims from).
    pub(crate) fn restore_halves(&self, schedules: &mut std::collections::HashMap<u64, u64>) {
        if let Some(count) = schedules.remove(&schedule_id(&self.name)) {
            tracing::info!(
                "vhost '{}': {count} pending half messages recovered",
                self.name
            );
            let _ = self.halves.set(self.new_half_schedule(count));
        }
    }

    /// A `message_id` already held as a half message.
    pub(crate) fn half_pending(&self, id: &str) -> bool {
        self.halves.get().is_some_and(|s| s.holds_message_id(id))
    }

    /// Holds `message` until its commit or rollback; true when it went through the log.
    pub(crate) fn hold_half(&self, message: Arc<Message>) -> bool {
        let wait = int_header(&message.properties, "x-half-check-after").unwrap_or(CHECK_AFTER_MS);
        self.half_schedule().add(message, wait).logged
    }

    /// A check-back is due for `message` (the schedule removes its entry after this).
    pub(crate) fn half_check_due(&self, message: &Message) {
        let checks = int_header(&message.properties, "x-half-checks").unwrap_or(0) + 1;
        let limit = int_header(&message.properties, "x-half-check-limit").unwrap_or(CHECK_LIMIT);
        let mut publisher = Publisher::default();
        if checks > limit {
            tracing::info!(
                vhost = %self.name,
                "half message not settled after {limit} checks: rolled back"
            );
            let target = header_value(&message.properties, "x-half-dead-letter-exchange")
                .and_then(field_table::long_str)
                .and_then(|name| std::str::from_utf8(name).ok().map(str::to_string));
            if let Some(target) = target
                && let Some(checked) =
                    self.checked_again(message, plain(&message.properties), &target)
            {
                let _ = self.route_publish(checked, &mut publisher);
            }
            return;
        }
        if let Some(reply_to) = message.properties.reply_to() {
            let check =
                with_int_header(&plain(&message.properties), b"x-half-check", checks as i64);
            if let (Some(check), Some(key)) = (
                check,
                ShortStr::from_bytes(Bytes::copy_from_slice(reply_to.as_bytes())),
            ) {
                let ask = Message {
                    exchange: Arc::from(""),
                    routing_key: key,
                    properties: check,
                    body: message.body.clone(),
                    store_id: None,
                };
                if let Some(checked) = self.checked_again(&ask, ask.properties.clone(), "") {
                    let _ = self.route_publish(checked, &mut publisher);
                }
            }
        }
        let Some(again) = with_int_header(&message.properties, b"x-half-checks", checks as i64)
        else {
            return;
        };
        let first = int_header(&message.properties, "x-half-check-after").unwrap_or(CHECK_AFTER_MS);
        let wait = first
            .saturating_mul(1u64.checked_shl(checks.min(32) as u32).unwrap_or(u64::MAX))
            .min(MAX_CHECK_WAIT_MS.max(first));
        let next = Arc::new(Message {
            exchange: message.exchange.clone(),
            routing_key: message.routing_key.clone(),
            properties: again,
            body: message.body.clone(),
            store_id: None,
        });
        self.half_schedule().add(next, wait);
    }
}

#[cfg(test)]
mod tests {
    use amq_protocol::protocol::BasicProperties;
    use amq_protocol::types::{AMQPValue, FieldTable};

    use super::*;

    fn with(headers: Vec<(&str, AMQPValue)>, id: Option<&str>) -> Properties {
        let mut t = FieldTable::default();
        for (k, v) in headers {
            t.insert(k.into(), v);
        }
        let mut basic = BasicProperties::default().with_headers(t);
        if let Some(id) = id {
            basic = basic.with_message_id(id.into());
        }
        Properties::from_basic(&basic)
    }

    #[test]
    fn requests_are_read_from_the_headers() {
        let yes = AMQPValue::Boolean(true);
        assert_eq!(
            half_request(&with(vec![("x-half", yes.clone())], Some("m1"))),
            Some(HalfRequest::Hold)
        );
        assert_eq!(
            half_request(&with(vec![("x-half-commit", yes.clone())], Some("m1"))),
            Some(HalfRequest::Commit("m1".into()))
        );
        assert_eq!(
            half_request(&with(
                vec![("x-half-rollback", AMQPValue::LongString("true".into()))],
                Some("m2")
            )),
            Some(HalfRequest::Rollback("m2".into()))
        );
        assert_eq!(
            half_request(&with(vec![("x-half", AMQPValue::Boolean(false))], None)),
            None
        );
        assert_eq!(half_request(&with(vec![("other", yes)], None)), None);
    }

    #[test]
    fn a_committed_message_loses_its_half_headers_only() {
        let p = with(
            vec![
                ("x-half", AMQPValue::Boolean(true)),
                ("x-half-check-after", AMQPValue::LongInt(5)),
                ("kept", AMQPValue::LongInt(1)),
            ],
            Some("m"),
        );
        let headers = plain(&p).headers().unwrap();
        assert_eq!(headers.inner().len(), 1);
        assert!(headers.inner().contains_key("kept"));
    }

    #[test]
    fn schedule_ids_are_above_counter_ids_and_differ_by_vhost() {
        assert!(schedule_id("/") >= 1 << 63);
        assert_ne!(schedule_id("/"), schedule_id("staging"));
    }
}
