//! Where a stream consumer starts: the `x-stream-offset` consumer argument, in RabbitMQ's
//! forms — `first`, `last`, `next` (the default), a numeric offset, an AMQP timestamp, or an
//! interval (`"1h"`, `"30m"`, `"7D"` …: that long ago).

use amq_protocol::types::AMQPValue;

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
    /// Reads basic.consume's `x-stream-offset` (`None`: not given, which means `next`); `now`
    /// is the time in ms since the epoch (intervals count back from it). The error hands the
    /// value back, for RabbitMQ's refusal.
    pub fn parse(v: Option<&AMQPValue>, now: u64) -> Result<StreamStart, &AMQPValue> {
        let Some(v) = v else {
            return Ok(StreamStart::Next);
        };
        let text = match v {
            AMQPValue::Timestamp(seconds) => {
                return Ok(StreamStart::Timestamp(seconds.saturating_mul(1000)));
            }
            AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
            AMQPValue::ShortString(s) => s.as_str().to_string(),
            AMQPValue::ByteArray(b) => String::from_utf8_lossy(b.as_slice()).into_owned(),
            other => {
                // Any integer type; below the first offset means the first (negative too).
                return as_i64(other)
                    .map(|n| StreamStart::Offset(n.max(0) as u64))
                    .ok_or(v);
            }
        };
        match text.as_str() {
            "first" => Ok(StreamStart::First),
            "last" => Ok(StreamStart::Last),
            "next" => Ok(StreamStart::Next),
            interval => parse_max_age(interval)
                .filter(|ago| *ago > 0)
                .map(|ago| StreamStart::Timestamp(now.saturating_sub(ago)))
                .ok_or(v),
        }
    }

    /// The offset to deliver first and the earliest append time to deliver (0: any).
    pub(crate) fn resolve(self, log: &StreamLog) -> (u64, u64) {
        match self {
            StreamStart::First => (log.first, 0),
            StreamStart::Last => (log.next.saturating_sub(1).max(log.first), 0),
            StreamStart::Next => (log.next, 0),
            // At or past the end it waits for exactly that offset, as RabbitMQ does.
            StreamStart::Offset(n) => (n.max(log.first), 0),
            // Nothing that late yet: like `next`, whatever the times of what comes.
            StreamStart::Timestamp(at) => match log.segments.iter().find(|s| s.last_ts >= at) {
                Some(s) => (s.first.max(log.first), at),
                None => (log.next, 0),
            },
        }
    }
}
