//! Reading the write-ahead log back at start-up: the records LMDB had not applied when the
//! process stopped, in order.
//!
//! Segments are read in the order of their names (first sequence). Within a segment records
//! follow each other until the first place that holds no whole record — zeros past the last
//! record, a torn write, damage — and the log goes on in the next segment. Records LMDB already
//! applied (sequence ≤ `applied`) are skipped, and so are the old records a recycled segment
//! still holds past its new ones (spare.rs: they are older than anything written over them);
//! after them the sequence must go up by one each time. A record further ahead means something in between is missing: replay stops there and
//! says so, rather than apply later operations without the ones before them.
//!
//! This file reads files and decodes records (record.rs); applying them is the caller's.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{is_spare_name, parse_segment_name, record};
use crate::store::{Op, StoreError};

/// What the log holds beyond what LMDB applied.
#[derive(Default)]
pub struct Replay {
    /// The operations of the records after `applied`, in order.
    pub ops: Vec<Op>,
    /// How many records that is.
    pub records: u64,
    /// The sequence of the last record found (or `applied` when there is none newer).
    pub last_seq: u64,
    /// Every segment file found; all of them can go once `ops` are applied.
    pub segments: Vec<PathBuf>,
}

pub fn read(dir: &Path, applied: u64) -> Result<Replay, StoreError> {
    let mut replay = Replay {
        last_seq: applied,
        ..Replay::default()
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(replay),
        Err(e) => return Err(StoreError(format!("cannot list {}: {e}", dir.display()))),
    };
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| StoreError(format!("cannot list {}: {e}", dir.display())))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(is_spare_name) {
            continue;
        }
        match name.to_str().and_then(parse_segment_name) {
            Some(first_seq) => segments.push((first_seq, entry.path())),
            None => tracing::warn!("ignoring {} in the write-ahead log", entry.path().display()),
        }
    }
    segments.sort();
    let mut expected = applied + 1;
    'segments: for (_, path) in &segments {
        let bytes = Bytes::from(
            std::fs::read(path)
                .map_err(|e| StoreError(format!("cannot read {}: {e}", path.display())))?,
        );
        let mut at = 0;
        while let Some(decoded) = record::decode(&bytes.slice(at..)) {
            at += decoded.len;
            if decoded.seq < expected {
                continue;
            }
            if decoded.seq > expected {
                tracing::error!(
                    "write-ahead log: record {} found where {expected} was due ({}); replaying \
                     nothing after {}",
                    decoded.seq,
                    path.display(),
                    expected - 1
                );
                break 'segments;
            }
            replay.ops.extend(decoded.ops);
            replay.records += 1;
            replay.last_seq = decoded.seq;
            expected += 1;
        }
    }
    replay.segments = segments.into_iter().map(|(_, path)| path).collect();
    Ok(replay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::wal::segment_name;

    fn enqueue(seq: u64) -> Op {
        Op::Enqueue {
            queue_id: 1,
            seq,
            id: seq,
            meta: Default::default(),
        }
    }

    /// A segment file holding records `seqs` (one enqueue each), then `tail`.
    fn segment(dir: &Path, seqs: std::ops::RangeInclusive<u64>, tail: &[u8]) {
        let mut out = Vec::new();
        let first = *seqs.start();
        for seq in seqs {
            record::encode(seq, &[enqueue(seq)], &mut out);
        }
        out.extend_from_slice(tail);
        std::fs::write(dir.join(segment_name(first)), out).unwrap();
    }

    fn seqs(replay: &Replay) -> Vec<u64> {
        replay
            .ops
            .iter()
            .map(|op| match op {
                Op::Enqueue { seq, .. } => *seq,
                _ => 0,
            })
            .collect()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("warren-replay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn replays_after_applied_across_segments_up_to_a_torn_tail() {
        let dir = scratch("torn");
        segment(&dir, 1..=3, &[0; 100]);
        let mut torn = Vec::new();
        record::encode(7, &[enqueue(7)], &mut torn);
        torn.truncate(torn.len() - 3);
        segment(&dir, 4..=6, &torn);
        let replay = read(&dir, 2).unwrap();
        assert_eq!(seqs(&replay), vec![3, 4, 5, 6]);
        assert_eq!((replay.records, replay.last_seq), (4, 6));
        assert_eq!(replay.segments.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stops_at_a_gap_and_reads_nothing_when_all_is_applied() {
        let dir = scratch("gap");
        segment(&dir, 1..=3, &[]);
        segment(&dir, 5..=6, &[]);
        assert_eq!(seqs(&read(&dir, 0).unwrap()), vec![1, 2, 3]);
        let replay = read(&dir, 6).unwrap();
        assert!(replay.ops.is_empty());
        assert_eq!(replay.last_seq, 6);
        assert!(read(&dir.join("missing"), 4).unwrap().ops.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
