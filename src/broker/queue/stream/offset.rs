//! Where a stream consumer starts: the `x-stream-offset` consumer argument, in RabbitMQ's
//! forms — `first`, `last`, `next` (the default), a numeric offset, an AMQP timestamp, or an
//! interval (`"1h"`, `"30m"`, `"7D"` …: that long ago).

use amq_protocol::types::{AMQPValue, FieldTable};

use super::StreamLog;
use super::retention::parse_max_age;
use crate::broker::field_display::as_i64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamStart {
    First,
    /// The newest entry (RabbitMQ: the last chunk).
    Last,
    /// Only what is appended from now on.
    Next,
    Offset(u64),
    /// The first entry appended at or after this time (ms since the epoch).
    Timestamp(u64),
}

impl StreamStart {
    /// Reads `x-stream-offset` from basic.consume's arguments; `now` is the time in ms since
    /// the epoch (intervals count back from it). The error is the reason RabbitMQ gives.
    pub fn parse(arguments: &FieldTable, now: u64) -> Result<StreamStart, String> {
        let Some(v) = arguments.inner().get("x-stream-offset") else {
            return Ok(StreamStart::Next);
        };
        match v {
            AMQPValue::Timestamp(seconds) => Ok(StreamStart::Timestamp(seconds.saturating_mul(1000))),
            AMQPValue::LongString(_) | AMQPValue::ShortString(_) => {
                let text = match v {
                    AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
                    AMQPValue::ShortString(s) => s.as_str().to_string(),
                    _ => String::new(),
                };
                match text.as_str() {
                    "first" => Ok(StreamStart::First),
                    "last" => Ok(StreamStart::Last),
                    "next" => Ok(StreamStart::Next),
                    interval => match parse_max_age(interval) {
                        Some(ago) => Ok(StreamStart::Timestamp(now.saturating_sub(ago))),
                        None => Err(format!("Invalid value for  x-stream-offset: {interval}")),
                    },
                }
            }
            other => match as_i64(other) {
                Some(n) => Ok(StreamStart::Offset(n.max(0) as u64)),
                None => Err("Invalid value for  x-stream-offset".into()),
            },
        }
    }

    /// The offset to deliver first and the earliest append time to deliver (0: any).
    pub(crate) fn resolve(self, log: &StreamLog) -> (u64, u64) {
        match self {
            StreamStart::First => (log.first, 0),
            StreamStart::Last => (log.next.saturating_sub(1).max(log.first), 0),
            StreamStart::Next => (log.next, 0),
            StreamStart::Offset(n) => (n.clamp(log.first, log.next), 0),
            StreamStart::Timestamp(at) => {
                let start = log
                    .segments
                    .iter()
                    .find(|s| s.last_ts >= at)
                    .map_or(log.next, |s| s.first.max(log.first));
                (start, at)
            }
        }
    }
}
