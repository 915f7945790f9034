//! A stream's retention: `x-max-length-bytes` (the log's size), `x-max-age` (`"7D"`, `"1h"` …:
//! how old its newest entry may be) and `x-stream-max-segment-size-bytes` (the unit removed).
//! Old entries go in whole closed segments — never the open one — as in RabbitMQ.
//!
//! The decision is cheap and made under the queue's lock (on a segment close, and when the
//! queue's age deadline comes: ttl.rs); the deletion itself is one store operation carried out
//! by the store's writer, in the background.

use std::collections::VecDeque;

use crate::broker::policy::QueuePolicyValues;
use crate::broker::queue::QueueArguments;
use crate::store::StreamSegment;

/// RabbitMQ's default segment size (`x-stream-max-segment-size-bytes`).
pub const DEFAULT_SEGMENT_BYTES: u64 = 500_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub segment_bytes: u64,
    pub max_bytes: Option<u64>,
    pub max_age_ms: Option<u64>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_bytes: None,
            max_age_ms: None,
        }
    }
}

impl Retention {
    /// A stream's retention from its arguments and the policies that apply: for each key the
    /// lower of the two wins, as in RabbitMQ.
    pub fn of(args: &QueueArguments, policy: &QueuePolicyValues) -> Self {
        let lower = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Retention {
            segment_bytes: lower(args.stream_segment_bytes, policy.stream_segment_bytes)
                .unwrap_or(DEFAULT_SEGMENT_BYTES)
                .max(1),
            max_bytes: lower(args.max_length_bytes, policy.max_length_bytes),
            max_age_ms: lower(args.max_age_ms, policy.max_age_ms),
        }
    }

    /// The offset before which everything may go (the first offset of the oldest segment to
    /// keep), or `None` if nothing may. `total` is the log's size, `now` the time in ms since
    /// the epoch.
    pub fn trim_point(
        &self,
        segments: &VecDeque<StreamSegment>,
        total: u64,
        now: u64,
    ) -> Option<u64> {
        let closed = segments.len().saturating_sub(1);
        let mut dropped = 0;
        let mut left = total;
        while dropped < closed {
            let s = &segments[dropped];
            let too_big = self.max_bytes.is_some_and(|max| left > max);
            let too_old = self
                .max_age_ms
                .is_some_and(|age| s.last_ts.saturating_add(age) < now);
            if !too_big && !too_old {
                break;
            }
            left -= s.bytes;
            dropped += 1;
        }
        (dropped > 0).then(|| segments[dropped].first)
    }

    /// When (ms since the epoch) the oldest closed segment becomes too old, if ever.
    pub fn next_age_deadline(&self, segments: &VecDeque<StreamSegment>) -> Option<u64> {
        let age = self.max_age_ms?;
        (segments.len() > 1).then(|| segments[0].last_ts.saturating_add(age).saturating_add(1))
    }
}

/// `x-max-age` as RabbitMQ reads it: a positive whole number and one unit of `Y` (365 days),
/// `M` (30 days), `D`, `h`, `m` or `s`. `None` when it is not one.
pub fn parse_max_age(text: &str) -> Option<u64> {
    let unit_at = text.len().checked_sub(1)?;
    let (number, unit) = text.split_at(unit_at);
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = number.parse().ok()?;
    let seconds: u64 = match unit {
        "Y" => 365 * 24 * 3600,
        "M" => 30 * 24 * 3600,
        "D" => 24 * 3600,
        "h" => 3600,
        "m" => 60,
        "s" => 1,
        _ => return None,
    };
    n.checked_mul(seconds)?.checked_mul(1000)
}
