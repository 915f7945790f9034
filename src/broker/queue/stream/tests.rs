//! The stream log's bookkeeping without a broker: segments close at their size, retention
//! drops whole closed segments (never the open one) by size and by age, the tail lets go
//! only of applied entries, cursors jump past dropped segments, and where each
//! `x-stream-offset` form starts.

use std::sync::Arc;

use amq_protocol::types::AMQPValue;
use bytes::Bytes;
use warren_protocol::Properties;

use super::retention::parse_max_age;
use super::{Retention, StreamLog, StreamStart};
use crate::broker::message::Message;

fn message(body_len: usize) -> Arc<Message> {
    Arc::new(Message {
        exchange: Arc::from(""),
        routing_key: warren_protocol::ShortStr::from_static("s").unwrap(),
        properties: Properties::parse(Bytes::from_static(b"\x00\x00")).unwrap(),
        body: Bytes::from(vec![b'x'; body_len]),
        store_id: None,
    })
}

fn log_with(retention: Retention) -> StreamLog {
    StreamLog::new(retention)
}

/// Appends `n` entries of 100 bytes (98 body + 2 properties) at times `t0, t0 + 1, …`.
fn fill(log: &mut StreamLog, n: u64, t0: u64) -> Vec<crate::store::StreamSegment> {
    (0..n)
        .filter_map(|i| log.append(message(98), t0 + i, i + 1).1)
        .collect()
}

#[test]
fn segments_close_when_the_next_entry_would_overflow_them() {
    let mut log = log_with(Retention {
        segment_bytes: 250,
        ..Retention::default()
    });
    let closed = fill(&mut log, 7, 1000);
    // 100-byte entries, 250-byte segments: two entries each.
    let ranges: Vec<(u64, u64)> = closed.iter().map(|s| (s.first, s.last)).collect();
    assert_eq!(ranges, vec![(0, 1), (2, 3), (4, 5)]);
    assert_eq!(log.segments.len(), 4);
    assert_eq!((log.first, log.next, log.len(), log.bytes), (0, 7, 7, 700));
}

#[test]
fn retention_by_size_drops_whole_closed_segments_only() {
    let retention = Retention {
        segment_bytes: 250,
        max_bytes: Some(300),
        max_age_ms: None,
    };
    let mut log = log_with(retention);
    fill(&mut log, 7, 1000);
    let before = retention.trim_point(&log.segments, log.bytes, 0);
    // 700 bytes: dropping (0,1) and (2,3) leaves 300.
    assert_eq!(before, Some(4));
    log.drop_before(4);
    assert_eq!((log.first, log.len(), log.bytes), (4, 3, 300));
    // The open segment alone is never dropped, however large.
    let tiny = Retention {
        max_bytes: Some(1),
        ..retention
    };
    let mut one = log_with(tiny);
    fill(&mut one, 2, 0);
    assert_eq!(tiny.trim_point(&one.segments, one.bytes, 0), None);
}

#[test]
fn retention_by_age_looks_at_each_segments_newest_entry() {
    let retention = Retention {
        segment_bytes: 250,
        max_bytes: None,
        max_age_ms: Some(10),
    };
    let mut log = log_with(retention);
    fill(&mut log, 6, 1000); // segments (0,1) t1000-1001, (2,3) t1002-1003, (4,5) open
    assert_eq!(retention.trim_point(&log.segments, log.bytes, 1011), None);
    assert_eq!(
        retention.trim_point(&log.segments, log.bytes, 1012),
        Some(2)
    );
    assert_eq!(
        retention.trim_point(&log.segments, log.bytes, 5000),
        Some(4)
    );
    assert_eq!(retention.next_age_deadline(&log.segments), Some(1012));
}

#[test]
fn the_tail_lets_go_only_of_applied_entries() {
    let mut log = log_with(Retention::default());
    fill(&mut log, 5000, 0); // ops 1..=5000
    log.shrink_tail(0, true);
    assert_eq!(log.tail_start, 0, "nothing applied: everything stays");
    log.shrink_tail(100, true);
    assert_eq!(log.tail_start, 100);
    log.shrink_tail(5000, true);
    assert_eq!(log.tail.len(), super::TAIL_MAX_ENTRIES);
    assert!(log.in_tail(log.tail_start - 1).is_none());
    assert!(log.in_tail(4999).is_some());
    // Without a store the tail is the log.
    let mut memory = log_with(Retention::default());
    fill(&mut memory, 5000, 0);
    memory.shrink_tail(5000, false);
    assert_eq!(memory.tail_start, 0);
}

fn start(v: Option<AMQPValue>) -> Result<StreamStart, AMQPValue> {
    StreamStart::parse(v.as_ref(), 10_000_000).map_err(Clone::clone)
}

#[test]
fn offset_forms_parse_as_rabbitmq_reads_them() {
    let text = |s: &str| Some(AMQPValue::LongString(s.into()));
    assert_eq!(start(None), Ok(StreamStart::Next));
    assert_eq!(start(text("first")), Ok(StreamStart::First));
    assert_eq!(start(text("last")), Ok(StreamStart::Last));
    assert_eq!(start(text("next")), Ok(StreamStart::Next));
    assert_eq!(
        start(Some(AMQPValue::LongLongInt(42))),
        Ok(StreamStart::Offset(42))
    );
    assert_eq!(
        start(Some(AMQPValue::ShortInt(7))),
        Ok(StreamStart::Offset(7))
    );
    assert_eq!(
        start(Some(AMQPValue::Timestamp(1_700_000_000))),
        Ok(StreamStart::Timestamp(1_700_000_000_000))
    );
    assert_eq!(
        start(text("1h")),
        Ok(StreamStart::Timestamp(10_000_000 - 3_600_000))
    );
    assert_eq!(
        start(Some(AMQPValue::ByteArray(b"first".to_vec().into()))),
        Ok(StreamStart::First)
    );
    assert_eq!(
        start(Some(AMQPValue::LongLongInt(-5))),
        Ok(StreamStart::Offset(0))
    );
    for bad in ["soon", "0s", "10x", "FIRST", ""] {
        assert!(start(text(bad)).is_err(), "{bad}");
    }
    assert!(start(Some(AMQPValue::Boolean(true))).is_err());
    assert!(start(Some(AMQPValue::Double(1.5))).is_err());
}

#[test]
fn offsets_resolve_within_the_log() {
    let mut log = log_with(Retention {
        segment_bytes: 250,
        ..Retention::default()
    });
    fill(&mut log, 6, 1000);
    log.drop_before(2);
    assert_eq!(StreamStart::First.resolve(&log), (2, 0));
    assert_eq!(StreamStart::Last.resolve(&log), (5, 0));
    assert_eq!(StreamStart::Next.resolve(&log), (6, 0));
    assert_eq!(StreamStart::Offset(0).resolve(&log), (2, 0));
    assert_eq!(StreamStart::Offset(99).resolve(&log), (99, 0));
    // The first segment whose newest entry is at or after the time; earlier entries skipped.
    assert_eq!(StreamStart::Timestamp(1003).resolve(&log), (2, 1003));
    assert_eq!(StreamStart::Timestamp(9999).resolve(&log), (6, 0));
}

#[test]
fn max_age_takes_one_unit() {
    assert_eq!(parse_max_age("7D"), Some(7 * 24 * 3600 * 1000));
    assert_eq!(parse_max_age("1Y"), Some(365 * 24 * 3600 * 1000));
    assert_eq!(parse_max_age("2M"), Some(60 * 24 * 3600 * 1000));
    assert_eq!(parse_max_age("30m"), Some(30 * 60 * 1000));
    assert_eq!(parse_max_age("10s"), Some(10_000));
    for bad in ["", "h", "10", "10x", "-1h", "1.5h", "1 h"] {
        assert_eq!(parse_max_age(bad), None, "{bad}");
    }
}
