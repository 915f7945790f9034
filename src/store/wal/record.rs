//! One write-ahead-log record: a batch of store operations under a header that makes a torn or
//! stale record detectable. Layout (big-endian):
//!
//! ```text
//! magic "WWAL" (4) | payload length u32 | batch sequence u64 | CRC-32 of sequence ‖ payload u32
//! payload: operations, each a tag byte then its fields
//! ```
//!
//! Decoding never trusts the bytes: every length is checked against what is there, and any
//! inconsistency reads as "no record here" (the end of the log). This file only encodes and
//! decodes; where records live and when they are synced is `mod.rs`'s business.

use std::sync::Arc;

use bytes::Bytes;
use warren_protocol::ShortStr;

use crate::store::recovery::IndexSegment;
use crate::store::{DueKey, EntryMeta, MessageRecord, Op, StreamSegment};

const MAGIC: &[u8; 4] = b"WWAL";
pub const HEADER_LEN: usize = 4 + 4 + 8 + 4;

const PUT_MESSAGE: u8 = 1;
const ENQUEUE: u8 = 2;
const REMOVE: u8 = 3;
const REMOVE_SEGMENT: u8 = 4;
const DROP_QUEUE: u8 = 5;
const STREAM_APPEND: u8 = 6;
const STREAM_SEGMENT: u8 = 7;
const STREAM_TRIM: u8 = 8;
const REMOVE_ENTRIES: u8 = 9;
/// An enqueue with its entry's metadata (`ENQUEUE` is the first format, without).
const ENQUEUE_META: u8 = 10;
const SCHEDULE: u8 = 11;
const UNSCHEDULE: u8 = 12;
const DROP_SCHEDULE: u8 = 13;

/// Appends one record holding the data operations of `ops` (notifications and shutdown are not
/// data and are skipped) to `out`; returns the record's length.
pub fn encode<'a>(seq: u64, ops: impl IntoIterator<Item = &'a Op>, out: &mut Vec<u8>) -> usize {
    let start = begin(seq, out);
    for op in ops {
        encode_op(op, out);
    }
    finish(seq, start, out)
}

/// The length [`encode`] gives the record of `ops` (so that a writer can place it before
/// encoding it).
pub fn encoded_len<'a>(ops: impl IntoIterator<Item = &'a Op>) -> usize {
    HEADER_LEN
        + ops
            .into_iter()
            .map(|op| match op {
                Op::PutMessage { record, .. } => 1 + 8 + record_len(record),
                Op::StreamAppend { record, .. } => 1 + 3 * 8 + record_len(record),
                Op::StreamSegment { .. } => 1 + 6 * 8,
                Op::StreamTrim { .. } => 1 + 2 * 8,
                Op::Enqueue { .. } => 1 + 3 * 8 + 4 + 1 + 8,
                Op::Remove { .. } => 1 + 3 * 8,
                Op::RemoveSegment { segment, .. } => 1 + 2 * 8 + 4 + 8 * segment.ids.len(),
                Op::RemoveEntries { entries, .. } => 1 + 8 + 4 + 16 * entries.len(),
                Op::DropQueue { .. } => 1 + 8,
                Op::Schedule { .. } | Op::Unschedule { .. } => 1 + 3 * 8,
                Op::DropSchedule { .. } => 1 + 8,
                Op::Unlogged(_) | Op::Notify { .. } | Op::Shutdown => 0,
            })
            .sum::<usize>()
}

/// The encoded length of a message record's four parts.
fn record_len(record: &MessageRecord) -> usize {
    4 * 4
        + record.exchange.len()
        + record.routing_key.as_bytes().len()
        + record.properties.len()
        + record.body.len()
}

/// Appends a record whose payload is `payload` as it is, whatever it holds (for fuzzing the
/// operation decoder behind a valid header); returns the record's length.
pub fn seal(seq: u64, payload: &[u8], out: &mut Vec<u8>) -> usize {
    let start = begin(seq, out);
    out.extend_from_slice(payload);
    finish(seq, start, out)
}

fn begin(seq: u64, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[0; 4]); // payload length, filled in by `finish`
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&[0; 4]); // CRC, filled in by `finish`
    start
}

fn finish(seq: u64, start: usize, out: &mut [u8]) -> usize {
    let payload_len = out.len() - start - HEADER_LEN;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_be_bytes());
    crc.update(&out[start + HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&(payload_len as u32).to_be_bytes());
    out[start + 16..start + 20].copy_from_slice(&crc.finalize().to_be_bytes());
    out.len() - start
}

fn encode_op(op: &Op, out: &mut Vec<u8>) {
    let u64s = |out: &mut Vec<u8>, tag: u8, values: &[u64]| {
        out.push(tag);
        for v in values {
            out.extend_from_slice(&v.to_be_bytes());
        }
    };
    match op {
        Op::PutMessage { id, record } => {
            u64s(out, PUT_MESSAGE, &[*id]);
            record_parts(out, record);
        }
        Op::StreamAppend {
            stream_id,
            offset,
            timestamp,
            record,
        } => {
            u64s(out, STREAM_APPEND, &[*stream_id, *offset, *timestamp]);
            record_parts(out, record);
        }
        Op::StreamSegment { stream_id, segment } => {
            let s = segment;
            let fields = [*stream_id, s.first, s.last, s.bytes, s.first_ts, s.last_ts];
            u64s(out, STREAM_SEGMENT, &fields);
        }
        Op::StreamTrim { stream_id, before } => u64s(out, STREAM_TRIM, &[*stream_id, *before]),
        Op::Enqueue {
            queue_id,
            seq,
            id,
            meta,
        } => {
            u64s(out, ENQUEUE_META, &[*queue_id, *seq, *id]);
            out.extend_from_slice(&meta.size.to_be_bytes());
            out.push(meta.priority);
            out.extend_from_slice(&meta.expires_epoch_ms.to_be_bytes());
        }
        Op::Remove {
            queue_id, seq, id, ..
        } => u64s(out, REMOVE, &[*queue_id, *seq, *id]),
        Op::RemoveSegment { queue_id, segment } => {
            u64s(out, REMOVE_SEGMENT, &[*queue_id, segment.first_seq]);
            out.extend_from_slice(&(segment.ids.len() as u32).to_be_bytes());
            for id in &segment.ids {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        Op::RemoveEntries { queue_id, entries } => {
            u64s(out, REMOVE_ENTRIES, &[*queue_id]);
            out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
            for (seq, id) in entries {
                out.extend_from_slice(&seq.to_be_bytes());
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        Op::DropQueue { queue_id } => u64s(out, DROP_QUEUE, &[*queue_id]),
        Op::Schedule { schedule_id, key } => {
            u64s(out, SCHEDULE, &[*schedule_id, key.due_ms, key.id])
        }
        Op::Unschedule { schedule_id, key } => {
            u64s(out, UNSCHEDULE, &[*schedule_id, key.due_ms, key.id])
        }
        Op::DropSchedule { schedule_id } => u64s(out, DROP_SCHEDULE, &[*schedule_id]),
        Op::Unlogged(_) | Op::Notify { .. } | Op::Shutdown => {}
    }
}

fn record_parts(out: &mut Vec<u8>, record: &MessageRecord) {
    let part = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    part(out, record.exchange.as_bytes());
    part(out, record.routing_key.as_bytes());
    part(out, &record.properties);
    part(out, &record.body);
}

/// A record read back: its batch sequence number, its operations, and how many bytes it took.
pub struct Decoded {
    pub seq: u64,
    pub ops: Vec<Op>,
    pub len: usize,
}

/// Reads the record at the start of `bytes`, or `None` when there is none (zeros, a torn write,
/// damage, or anything else that is not a whole record). Bodies are slices of `bytes`.
pub fn decode(bytes: &Bytes) -> Option<Decoded> {
    let header = bytes.get(..HEADER_LEN)?;
    if &header[..4] != MAGIC {
        return None;
    }
    let payload_len = u32::from_be_bytes(header[4..8].try_into().ok()?) as usize;
    let seq = u64::from_be_bytes(header[8..16].try_into().ok()?);
    let crc = u32::from_be_bytes(header[16..20].try_into().ok()?);
    let len = HEADER_LEN.checked_add(payload_len)?;
    let payload = bytes.get(HEADER_LEN..len)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&seq.to_be_bytes());
    hasher.update(payload);
    if hasher.finalize() != crc {
        return None;
    }
    let mut reader = Reader {
        bytes: bytes.slice(HEADER_LEN..len),
        at: 0,
    };
    let mut ops = Vec::new();
    while reader.at < reader.bytes.len() {
        ops.push(reader.op()?);
    }
    Some(Decoded { seq, ops, len })
}

struct Reader {
    bytes: Bytes,
    at: usize,
}

impl Reader {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<usize> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?) as usize)
    }

    fn part(&mut self) -> Option<Bytes> {
        let len = self.u32()?;
        let start = self.at;
        self.take(len)?;
        Some(self.bytes.slice(start..start + len))
    }

    fn due_key(&mut self) -> Option<DueKey> {
        Some(DueKey {
            due_ms: self.u64()?,
            id: self.u64()?,
        })
    }

    fn record(&mut self) -> Option<MessageRecord> {
        let exchange: Arc<str> = std::str::from_utf8(&self.part()?).ok()?.into();
        Some(MessageRecord {
            exchange,
            routing_key: ShortStr::from_bytes(self.part()?)?,
            properties: self.part()?,
            body: self.part()?,
        })
    }

    fn op(&mut self) -> Option<Op> {
        let tag = *self.take(1)?.first()?;
        Some(match tag {
            PUT_MESSAGE => Op::PutMessage {
                id: self.u64()?,
                record: self.record()?,
            },
            STREAM_APPEND => Op::StreamAppend {
                stream_id: self.u64()?,
                offset: self.u64()?,
                timestamp: self.u64()?,
                record: self.record()?,
            },
            STREAM_SEGMENT => Op::StreamSegment {
                stream_id: self.u64()?,
                segment: StreamSegment {
                    first: self.u64()?,
                    last: self.u64()?,
                    bytes: self.u64()?,
                    first_ts: self.u64()?,
                    last_ts: self.u64()?,
                },
            },
            STREAM_TRIM => Op::StreamTrim {
                stream_id: self.u64()?,
                before: self.u64()?,
            },
            ENQUEUE => Op::Enqueue {
                queue_id: self.u64()?,
                seq: self.u64()?,
                id: self.u64()?,
                meta: EntryMeta::default(),
            },
            ENQUEUE_META => Op::Enqueue {
                queue_id: self.u64()?,
                seq: self.u64()?,
                id: self.u64()?,
                meta: EntryMeta {
                    size: self.u32()? as u32,
                    priority: *self.take(1)?.first()?,
                    expires_epoch_ms: self.u64()?,
                },
            },
            REMOVE => Op::Remove {
                queue_id: self.u64()?,
                seq: self.u64()?,
                id: self.u64()?,
                scattered: false,
            },
            REMOVE_SEGMENT => {
                let queue_id = self.u64()?;
                let first_seq = self.u64()?;
                let count = self.u32()?;
                // Bounded by the record: each id takes 8 bytes of it.
                if count > (self.bytes.len() - self.at) / 8 {
                    return None;
                }
                let mut ids = Vec::with_capacity(count);
                for _ in 0..count {
                    ids.push(self.u64()?);
                }
                Op::RemoveSegment {
                    queue_id,
                    segment: IndexSegment {
                        first_seq,
                        ids,
                        ..Default::default()
                    },
                }
            }
            REMOVE_ENTRIES => {
                let queue_id = self.u64()?;
                let count = self.u32()?;
                // Bounded by the record: each entry takes 16 bytes of it.
                if count > (self.bytes.len() - self.at) / 16 {
                    return None;
                }
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    entries.push((self.u64()?, self.u64()?));
                }
                Op::RemoveEntries { queue_id, entries }
            }
            DROP_QUEUE => Op::DropQueue {
                queue_id: self.u64()?,
            },
            SCHEDULE => Op::Schedule {
                schedule_id: self.u64()?,
                key: self.due_key()?,
            },
            UNSCHEDULE => Op::Unschedule {
                schedule_id: self.u64()?,
                key: self.due_key()?,
            },
            DROP_SCHEDULE => Op::DropSchedule {
                schedule_id: self.u64()?,
            },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_ops() -> Vec<Op> {
        vec![
            Op::PutMessage {
                id: 7,
                record: MessageRecord {
                    exchange: "amq.direct".into(),
                    routing_key: ShortStr::from_static("rk").unwrap(),
                    properties: Bytes::from_static(b"\x80\x00\x02"),
                    body: Bytes::from_static(b"hello"),
                },
            },
            Op::Enqueue {
                queue_id: 1,
                seq: 2,
                id: 7,
                meta: EntryMeta {
                    size: 5,
                    priority: 3,
                    expires_epoch_ms: 1_700_000_000_000,
                },
            },
            Op::Remove {
                queue_id: 1,
                seq: 1,
                id: 6,
                scattered: false,
            },
            Op::RemoveSegment {
                queue_id: 3,
                segment: IndexSegment {
                    first_seq: 10,
                    ids: vec![4, 5],
                    ..Default::default()
                },
            },
            Op::DropQueue { queue_id: 9 },
            Op::RemoveEntries {
                queue_id: 5,
                entries: vec![(3, 30), (9, 12)],
            },
            Op::StreamAppend {
                stream_id: 4,
                offset: 11,
                timestamp: 1_700_000_000_000,
                record: MessageRecord {
                    exchange: "".into(),
                    routing_key: ShortStr::from_static("s").unwrap(),
                    properties: Bytes::new(),
                    body: Bytes::from_static(b"logged"),
                },
            },
            Op::StreamSegment {
                stream_id: 4,
                segment: StreamSegment {
                    first: 0,
                    last: 10,
                    bytes: 600,
                    first_ts: 1,
                    last_ts: 2,
                },
            },
            Op::StreamTrim {
                stream_id: 4,
                before: 11,
            },
            Op::Schedule {
                schedule_id: 6,
                key: DueKey {
                    due_ms: 1_700_000_000_500,
                    id: 7,
                },
            },
            Op::Unschedule {
                schedule_id: 6,
                key: DueKey { due_ms: 3, id: 8 },
            },
            Op::DropSchedule { schedule_id: 12 },
        ]
    }

    fn describe(ops: &[Op]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::PutMessage { id, record } => format!(
                    "put {id} {} {} {:?} {:?}",
                    record.exchange, record.routing_key, record.properties, record.body
                ),
                Op::Enqueue {
                    queue_id,
                    seq,
                    id,
                    meta,
                } => format!("enqueue {queue_id} {seq} {id} {meta:?}"),
                Op::Remove {
                    queue_id, seq, id, ..
                } => format!("remove {queue_id} {seq} {id}"),
                Op::RemoveSegment { queue_id, segment } => {
                    format!("segment {queue_id} {segment:?}")
                }
                Op::DropQueue { queue_id } => format!("drop {queue_id}"),
                Op::RemoveEntries { queue_id, entries } => {
                    format!("entries {queue_id} {entries:?}")
                }
                Op::StreamAppend {
                    stream_id,
                    offset,
                    timestamp,
                    record,
                } => format!(
                    "append {stream_id} {offset} {timestamp} {} {:?}",
                    record.routing_key, record.body
                ),
                Op::StreamSegment { stream_id, segment } => {
                    format!("stream segment {stream_id} {segment:?}")
                }
                Op::StreamTrim { stream_id, before } => format!("trim {stream_id} {before}"),
                Op::Schedule { schedule_id, key } => format!("schedule {schedule_id} {key:?}"),
                Op::Unschedule { schedule_id, key } => {
                    format!("unschedule {schedule_id} {key:?}")
                }
                Op::DropSchedule { schedule_id } => format!("drop schedule {schedule_id}"),
                Op::Unlogged(_) | Op::Notify { .. } | Op::Shutdown => "control".into(),
            })
            .collect()
    }

    #[test]
    fn records_round_trip() {
        let ops = sample_ops();
        let mut out = Vec::new();
        let len = encode(42, &ops, &mut out);
        assert_eq!(len, out.len());
        assert_eq!(encoded_len(&ops), len);
        let decoded = decode(&Bytes::from(out)).expect("a whole record");
        assert_eq!(decoded.seq, 42);
        assert_eq!(decoded.len, len);
        assert_eq!(describe(&decoded.ops), describe(&ops));
    }

    #[test]
    fn any_damaged_or_cut_record_reads_as_none() {
        let mut out = Vec::new();
        encode(5, &sample_ops(), &mut out);
        for cut in 0..out.len() {
            assert!(
                decode(&Bytes::copy_from_slice(&out[..cut])).is_none(),
                "cut {cut}"
            );
        }
        for i in 0..out.len() {
            let mut damaged = out.clone();
            damaged[i] ^= 0x40;
            assert!(decode(&Bytes::from(damaged)).is_none(), "flipped byte {i}");
        }
        assert!(decode(&Bytes::from(vec![0u8; 64])).is_none());
    }
}
