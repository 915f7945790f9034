//! The store under storage faults, without a broker around it: a commit that fails (injected
//! with [`Store::fail_next_commits`]) and a memory map that fills up; and a data directory
//! opened twice in one process.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;

use super::{CommitListener, MessageRecord, Store};

/// Remembers every `committed` call, in order.
#[derive(Default)]
pub(super) struct Recorder(Mutex<Vec<(u64, bool)>>);

impl CommitListener for Recorder {
    fn committed(&self, token: u64, ok: bool) {
        self.0.lock().push((token, ok));
    }
}

impl Recorder {
    pub(super) fn calls(&self) -> Vec<(u64, bool)> {
        self.0.lock().clone()
    }
}

pub(super) struct ScratchDir(pub(super) PathBuf);

impl ScratchDir {
    pub(super) fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("warren-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn record(body: Bytes) -> MessageRecord {
    MessageRecord {
        exchange: Arc::from(""),
        routing_key: warren_protocol::ShortStr::from_slice(b"q").unwrap(),
        properties: Bytes::new(),
        body,
    }
}

pub(super) fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_failed_commit_nacks_its_waiters_counts_nothing_and_is_retried_until_durable() {
    let dir = ScratchDir::new("failed-commit");
    let (store, _) = Store::open(&dir.0, 1 << 20).unwrap();
    let failing = store.watch_failing();
    let listener = Arc::new(Recorder::default());

    // Every commit fails until the test says otherwise.
    store.fail_next_commits(u64::MAX);
    store.put_message(1, record(Bytes::from_static(b"one")));
    let enqueued = store.enqueue(7, 0, 1);
    store.notify_when_committed(listener.clone(), 10);
    wait_until("the failed batch's waiter is told", || {
        !listener.calls().is_empty()
    });
    assert_eq!(listener.calls(), vec![(10, false)]);
    assert!(*failing.borrow(), "a failing store reports itself failing");

    // Retries keep failing for a while: nothing counts as committed, nothing reaches the disk.
    store.notify_when_committed(listener.clone(), 11);
    wait_until("a waiter of a retried batch is told", || {
        listener.calls().len() == 2
    });
    assert_eq!(listener.calls()[1], (11, false));
    assert!(
        store.committed_ops() < enqueued,
        "committed_ops moved past a failed operation: {} >= {enqueued}",
        store.committed_ops()
    );
    assert_eq!(store.record_counts().unwrap().messages, 0);

    // The disk works again: the kept operations commit, in order, with what came since.
    store.put_message(2, record(Bytes::from_static(b"two")));
    let second = store.enqueue(7, 1, 2);
    store.notify_when_committed(listener.clone(), 12);
    store.fail_next_commits(0);
    wait_until("the retry commits", || store.committed_ops() >= second);
    wait_until("the last waiter is told", || listener.calls().len() == 3);
    assert_eq!(listener.calls()[2], (12, true));
    assert!(!*failing.borrow(), "the failing flag clears after a commit");
    // A checkpoint puts them in LMDB soon after.
    wait_until("the checkpoint", || store.applied_ops() >= second);
    let counts = store.record_counts().unwrap();
    assert_eq!(
        (counts.messages, counts.queue_index, counts.refcounts),
        (2, 2, 2)
    );
    let mut bodies = Vec::new();
    store
        .read_messages([1, 2], |_, m| bodies.push(m.unwrap().body))
        .unwrap();
    assert_eq!(
        bodies,
        vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")]
    );

    // No waiter hears twice, and none of a failed attempt ever hears `ok`.
    store.shutdown();
    assert_eq!(listener.calls(), vec![(10, false), (11, false), (12, true)]);
}

#[test]
fn a_full_map_grows_and_every_commit_succeeds() {
    let dir = ScratchDir::new("map-full");
    let (store, _) = Store::open(&dir.0, 1 << 20).unwrap();
    let initial = store.map_size();
    let listener = Arc::new(Recorder::default());
    let body = Bytes::from(vec![7u8; 64 * 1024]);
    let messages = 160u64; // 10 MiB into a 1 MiB map
    let mut last = 0;
    for id in 1..=messages {
        store.put_message(id, record(body.clone()));
        last = store.enqueue(1, id, id);
        if id % 16 == 0 {
            store.notify_when_committed(listener.clone(), id);
        }
    }
    wait_until("every batch is told", || listener.calls().len() == 10);
    wait_until("the checkpoints", || store.applied_ops() >= last);
    assert!(
        listener.calls().iter().all(|(_, ok)| *ok),
        "{:?}",
        listener.calls()
    );
    assert!(
        store.map_size() >= 8 * initial,
        "map {} from {initial}",
        store.map_size()
    );
    assert_eq!(store.record_counts().unwrap().messages, messages);
    // Reading after the map moved still works.
    let mut read = 0;
    store
        .read_messages(1..=messages, |_, m| {
            assert_eq!(m.unwrap().body, body);
            read += 1;
        })
        .unwrap();
    assert_eq!(read, messages);
    store.shutdown();
}

#[test]
fn a_data_directory_is_opened_once_per_process() {
    let dir = ScratchDir::new("open-twice");
    let (first, _) = Store::open(&dir.0, 1 << 20).unwrap();
    let refused = Store::open(&dir.0, 1 << 20)
        .err()
        .expect("a second open is refused");
    assert!(refused.0.contains("warren.lock"), "{}", refused.0);
    first.shutdown();
    drop(first);
    // The directory is free for another process now, but this one's environment stays open
    // until it exits.
    let refused = Store::open(&dir.0, 1 << 20)
        .err()
        .expect("refused for good");
    assert!(
        refused.0.contains("already opened by this process"),
        "{}",
        refused.0
    );
}

/// A message stored for two queues whose first copy is acknowledged before the second is
/// enqueued (the publisher's thread was slower than the first queue's consumer), with a
/// checkpoint in between: the pin its publisher holds keeps it stored for the second queue.
#[test]
fn a_pinned_message_outlives_its_first_queue_until_the_second_has_it() {
    let dir = ScratchDir::new("fan-out-pin");
    let (store, _) = Store::open(&dir.0, 1 << 20).unwrap();
    store.put_message(1, record(Bytes::from_static(b"for two queues")));
    store.pin(1);
    store.enqueue(7, 0, 1);
    store.remove(7, 0, 1);
    wait_until("the first queue's part is checkpointed", || {
        store.applied_ops() >= store.sent_ops()
    });
    store.enqueue(8, 0, 1);
    store.unpin(1);
    wait_until("the second queue's part is checkpointed", || {
        store.applied_ops() >= store.sent_ops()
    });
    let counts = store.record_counts().unwrap();
    // The record, and one index entry: the second queue's (the pin went).
    assert_eq!((counts.messages, counts.queue_index), (1, 1));
}
