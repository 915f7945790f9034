//! Streams in LMDB: each stream's append-only log and the table of its closed segments.
//!
//! - `stream_log`: stream id (u64) ‖ offset (u64) → enveloped: append time (ms, u64), then the
//!   message as the `messages` database holds one (exchange, routing key, properties, body).
//!   One record per message, no reference counts: a stream owns its copy, so consuming never
//!   touches the store and retention deletes a key range.
//! - `stream_segments`: stream id ‖ first offset → enveloped: last offset, bytes, first and
//!   last append time, for every *closed* segment. The open segment (after the last closed
//!   one) is measured by reading it at start-up; it is at most one segment long.
//!
//! Written by the store's writer and checkpoints (operations `StreamAppend`, `StreamSegment`,
//! `StreamTrim`, and `DropQueue`, which drops a stream too), read by stream consumers outside
//! any broker lock. Which offsets a segment holds and when to trim is the broker's
//! (`broker/queue/stream/`); this file only keeps what it is told.

use std::ops::Bound;

use heed::{RoTxn, RwTxn};

use super::schema::{Reader, RecordError, Writer, index_key, open, seal};
use super::{Dbs, MessageRecord, Store, StoreError, StoredMessage};

/// A closed segment of a stream: offsets `first..=last`, `bytes` of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSegment {
    pub first: u64,
    pub last: u64,
    pub bytes: u64,
    pub first_ts: u64,
    pub last_ts: u64,
}

/// One entry of a stream read back.
pub struct StreamEntry {
    pub offset: u64,
    /// When it was appended (ms since the Unix epoch).
    pub timestamp: u64,
    pub message: StoredMessage,
}

/// What a stream holds after a restart: its closed segments, then the open one (if any
/// message lies after the last closed segment), and the offset the next append gets.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StreamRecovered {
    pub segments: Vec<StreamSegment>,
    pub next_offset: u64,
}

pub fn put_entry(
    dbs: &Dbs,
    wtxn: &mut RwTxn,
    stream_id: u64,
    offset: u64,
    timestamp: u64,
    r: &MessageRecord,
) -> heed::Result<()> {
    let key = index_key(stream_id, offset);
    super::apply::put_record(dbs.stream_log, wtxn, &key, &timestamp.to_be_bytes(), r)
}

pub fn put_segment(
    dbs: &Dbs,
    wtxn: &mut RwTxn,
    stream_id: u64,
    s: &StreamSegment,
) -> heed::Result<()> {
    let mut w = Writer::default();
    w.u64(s.last).u64(s.bytes).u64(s.first_ts).u64(s.last_ts);
    dbs.stream_segments
        .put(wtxn, &index_key(stream_id, s.first), &seal(&w.0))
}

/// Deletes the stream's entries and closed segments before offset `before`.
pub fn trim(dbs: &Dbs, wtxn: &mut RwTxn, stream_id: u64, before: u64) -> heed::Result<()> {
    let (start, end) = (index_key(stream_id, 0), index_key(stream_id, before));
    let range = (Bound::Included(&start[..]), Bound::Excluded(&end[..]));
    dbs.stream_log.delete_range(wtxn, &range)?;
    dbs.stream_segments.delete_range(wtxn, &range)?;
    Ok(())
}

/// Deletes the whole stream (its queue was deleted).
pub fn drop_stream(dbs: &Dbs, wtxn: &mut RwTxn, stream_id: u64) -> heed::Result<()> {
    let (start, end) = whole(stream_id);
    let range = (Bound::Included(&start[..]), Bound::Included(&end[..]));
    dbs.stream_log.delete_range(wtxn, &range)?;
    dbs.stream_segments.delete_range(wtxn, &range)?;
    Ok(())
}

/// The first and last key a stream can have.
fn whole(stream_id: u64) -> ([u8; 16], [u8; 16]) {
    (index_key(stream_id, 0), index_key(stream_id, u64::MAX))
}

fn decode_entry(value: &[u8]) -> Result<(u64, StoredMessage), RecordError> {
    let payload = open(value)?;
    let mut r = Reader(payload);
    let timestamp = r.u64()?;
    Ok((timestamp, StoredMessage::from_payload(r.rest())?))
}

fn decode_segment(first: u64, value: &[u8]) -> Result<StreamSegment, RecordError> {
    let mut r = Reader(open(value)?);
    Ok(StreamSegment {
        first,
        last: r.u64()?,
        bytes: r.u64()?,
        first_ts: r.u64()?,
        last_ts: r.u64()?,
    })
}

fn offset_of(key: &[u8]) -> Option<u64> {
    super::schema::parse_index_key(key).map(|(_, offset)| offset)
}

impl Store {
    /// Appends a message to a stream; returns the operation's number (durable once
    /// [`Store::committed_ops`] reaches it, readable once [`Store::applied_ops`] does).
    pub fn stream_append(
        &self,
        stream_id: u64,
        offset: u64,
        timestamp: u64,
        record: MessageRecord,
    ) -> u64 {
        self.send(super::Op::StreamAppend {
            stream_id,
            offset,
            timestamp,
            record,
        })
    }

    /// Records a segment the broker closed (so a restart need not read it to know its size).
    pub fn stream_segment_closed(&self, stream_id: u64, segment: StreamSegment) {
        self.send(super::Op::StreamSegment { stream_id, segment });
    }

    /// Deletes the stream's entries before `before` (retention), in the background.
    pub fn stream_trim(&self, stream_id: u64, before: u64) {
        self.send(super::Op::StreamTrim { stream_id, before });
    }

    /// Reads entries from `from` on, in offset order, until `max_count` entries or `max_bytes`
    /// of bodies were read (at least one entry if there is one). An entry that cannot be
    /// decoded is passed on as its error: the caller skips it.
    pub fn read_stream(
        &self,
        stream_id: u64,
        from: u64,
        max_count: usize,
        max_bytes: usize,
        mut found: impl FnMut(u64, Result<(u64, StoredMessage), RecordError>),
    ) -> Result<(), StoreError> {
        let shared = self.lmdb.shared()?;
        let rtxn = shared.read_txn()?;
        let (start, end) = (index_key(stream_id, from), index_key(stream_id, u64::MAX));
        let range = (Bound::Included(&start[..]), Bound::Included(&end[..]));
        let (mut count, mut bytes) = (0usize, 0usize);
        for entry in self.dbs.stream_log.range(&rtxn, &range)? {
            let (key, value) = entry?;
            let Some(offset) = offset_of(key) else {
                continue;
            };
            bytes += value.len();
            count += 1;
            found(offset, decode_entry(value));
            if count >= max_count || bytes >= max_bytes {
                break;
            }
        }
        drop(rtxn);
        shared.map_pages().touched(bytes as u64);
        Ok(())
    }

    /// What a stream holds, for its queue at start-up: closed segments from their table, the
    /// open one measured by reading it.
    pub fn recover_stream(&self, stream_id: u64) -> Result<StreamRecovered, StoreError> {
        let shared = self.lmdb.shared()?;
        let rtxn = shared.read_txn()?;
        let recovered = recover(&self.dbs, &rtxn, stream_id)?;
        drop(rtxn);
        shared.map_pages().release();
        Ok(recovered)
    }
}

fn recover(dbs: &Dbs, rtxn: &RoTxn, stream_id: u64) -> Result<StreamRecovered, StoreError> {
    let (start, end) = whole(stream_id);
    let all = (Bound::Included(&start[..]), Bound::Included(&end[..]));
    let mut segments = Vec::new();
    for entry in dbs.stream_segments.range(rtxn, &all)? {
        let (key, value) = entry?;
        let Some(first) = offset_of(key) else {
            continue;
        };
        match decode_segment(first, value) {
            Ok(segment) => segments.push(segment),
            Err(e) => tracing::warn!("stream {stream_id}: segment at {first} unreadable: {e}"),
        }
    }
    // The log's first entry: segments before it were trimmed (a trim deletes both in one
    // transaction, but be safe).
    let first_in_log = match dbs.stream_log.range(rtxn, &all)?.next() {
        Some(entry) => offset_of(entry?.0),
        None => None,
    };
    if let Some(first) = first_in_log {
        segments.retain(|s| s.last >= first);
    }
    let mut open = None::<StreamSegment>;
    let open_from = segments.last().map_or(0, |s| s.last + 1);
    let open_start = index_key(stream_id, open_from);
    let rest = (Bound::Included(&open_start[..]), Bound::Included(&end[..]));
    for entry in dbs.stream_log.range(rtxn, &rest)? {
        let (key, value) = entry?;
        let Some(offset) = offset_of(key) else {
            continue;
        };
        let (timestamp, bytes) = match decode_entry(value) {
            Ok((ts, m)) => (ts, (m.properties.len() + m.body.len()) as u64),
            Err(e) => {
                tracing::warn!("stream {stream_id}: entry {offset} unreadable: {e}");
                (0, 0)
            }
        };
        let s = open.get_or_insert(StreamSegment {
            first: offset,
            last: offset,
            bytes: 0,
            first_ts: timestamp,
            last_ts: timestamp,
        });
        s.last = offset;
        s.bytes += bytes;
        s.last_ts = s.last_ts.max(timestamp);
    }
    segments.extend(open);
    let next_offset = segments.last().map_or(0, |s| s.last + 1);
    Ok(StreamRecovered {
        segments,
        next_offset,
    })
}

#[cfg(test)]
#[path = "stream_log_tests.rs"]
mod tests;
