//! The stream log through a real store: append, read from an offset, trim, drop, and what
//! recovery finds (closed segments from their table, the open one measured). The write-ahead
//! log's part (records that bring stream operations back after a crash) is wal/record.rs's test
//! and the broker's crash test.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::store::{MessageRecord, Store, StreamSegment};

struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("warren-stream-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn record(body: &str) -> MessageRecord {
    MessageRecord {
        exchange: Arc::from(""),
        routing_key: warren_protocol::ShortStr::from_slice(b"s").unwrap(),
        properties: Bytes::from_static(b"\x00\x00"),
        body: Bytes::copy_from_slice(body.as_bytes()),
    }
}

fn open(dir: &ScratchDir) -> Arc<Store> {
    Store::open(&dir.0, 1 << 24).unwrap().0
}

struct Nobody;

impl crate::store::CommitListener for Nobody {
    fn committed(&self, _: u64, _: bool) {}
}

/// Waits until everything sent so far is in LMDB (a waiter makes the writer take it now).
fn wait_applied(store: &Store) {
    store.notify_when_committed(Arc::new(Nobody), 0);
    let target = store.sent_ops();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.applied_ops() < target {
        assert!(Instant::now() < deadline, "checkpoint did not come");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read_all(store: &Store, stream: u64, from: u64) -> Vec<(u64, u64, String)> {
    let mut out = Vec::new();
    store
        .read_stream(stream, from, usize::MAX, usize::MAX, |offset, entry| {
            let (ts, m) = entry.unwrap();
            out.push((offset, ts, String::from_utf8(m.body.to_vec()).unwrap()));
        })
        .unwrap();
    out
}

#[test]
fn entries_read_back_from_any_offset_and_streams_stay_apart() {
    let dir = ScratchDir::new("read");
    let store = open(&dir);
    for i in 0..5 {
        store.stream_append(1, i, 100 + i, record(&format!("a{i}")));
        store.stream_append(2, i, 200 + i, record(&format!("b{i}")));
    }
    wait_applied(&store);
    let from_two = read_all(&store, 1, 2);
    assert_eq!(
        from_two,
        vec![
            (2, 102, "a2".to_string()),
            (3, 103, "a3".into()),
            (4, 104, "a4".into())
        ]
    );
    let mut limited = Vec::new();
    store
        .read_stream(2, 0, 2, usize::MAX, |offset, _| limited.push(offset))
        .unwrap();
    assert_eq!(limited, vec![0, 1]);
    assert!(read_all(&store, 2, 5).is_empty());
    store.shutdown();
}

#[test]
fn trim_and_drop_delete_whole_ranges() {
    let dir = ScratchDir::new("trim");
    let store = open(&dir);
    for i in 0..6 {
        store.stream_append(1, i, i, record("x"));
        store.stream_append(2, i, i, record("y"));
    }
    store.stream_trim(1, 4);
    store.drop_queue(2);
    wait_applied(&store);
    let left: Vec<u64> = read_all(&store, 1, 0).iter().map(|e| e.0).collect();
    assert_eq!(left, vec![4, 5]);
    assert!(read_all(&store, 2, 0).is_empty());
    store.shutdown();
}

#[test]
fn recovery_finds_closed_segments_and_measures_the_open_one() {
    let dir = ScratchDir::new("recover");
    let store = open(&dir);
    {
        for i in 0..10 {
            store.stream_append(7, i, 1000 + i, record("12345"));
        }
        let closed = |first, last| StreamSegment {
            first,
            last,
            bytes: (last - first + 1) * 7,
            first_ts: 1000 + first,
            last_ts: 1000 + last,
        };
        store.stream_segment_closed(7, closed(0, 3));
        store.stream_segment_closed(7, closed(4, 6));
        store.stream_trim(7, 4);
        wait_applied(&store);
    }
    let recovered = store.recover_stream(7).unwrap();
    assert_eq!(recovered.next_offset, 10);
    assert_eq!(
        recovered.segments,
        vec![
            StreamSegment {
                first: 4,
                last: 6,
                bytes: 21,
                first_ts: 1004,
                last_ts: 1006
            },
            StreamSegment {
                first: 7,
                last: 9,
                bytes: 21,
                first_ts: 1007,
                last_ts: 1009
            },
        ]
    );
    assert_eq!(store.recover_stream(8).unwrap(), Default::default());
    store.shutdown();
}
