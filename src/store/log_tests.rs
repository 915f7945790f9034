//! What the write-ahead log leaves out: operations that cancel within one batch (a message
//! published, delivered and acknowledged while the previous record was being written) are not
//! written, and what they leave behind is the same as if they had been.

use std::sync::Arc;

use bytes::Bytes;

use super::Store;
use super::fault_tests::{Recorder, ScratchDir, record, wait_until};

/// Every byte of the log's segment files.
fn log_bytes(dir: &ScratchDir) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir.0.join("wal")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "wal") {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_message_acknowledged_within_its_batch_is_not_written_to_the_log() {
    let dir = ScratchDir::new("log-elides");
    let (store, _) = Store::open(&dir.0, 1 << 20).unwrap();
    let listener = Arc::new(Recorder::default());
    let gone = Bytes::from(b"acknowledged before the log got to it".repeat(100));
    let kept = Bytes::from(b"still in its queue when the log got to it".repeat(100));
    // Nobody waits until the notification: the writer takes all of it as one batch.
    store.put_message(1, record(gone.clone()));
    store.enqueue(7, 0, 1);
    store.put_message(2, record(kept.clone()));
    store.enqueue(7, 1, 2);
    store.remove(7, 0, 1);
    store.notify_when_committed(listener.clone(), 1);
    wait_until("the batch is durable", || !listener.calls().is_empty());
    assert_eq!(listener.calls(), [(1, true)]);
    let log = log_bytes(&dir);
    assert!(holds(&log, &kept), "the message still queued is in the log");
    assert!(!holds(&log, &gone), "the acknowledged one is not");
    wait_until("checkpointed", || store.applied_ops() >= store.sent_ops());
    let counts = store.record_counts().unwrap();
    assert_eq!((counts.messages, counts.queue_index), (1, 1));
}
