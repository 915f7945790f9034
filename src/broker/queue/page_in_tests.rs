//! Page-ins interleaved with what may run while the store is read: publishes, requeues, purge,
//! delete, x-max-length drops, basic.get, consumers. Each test runs a queue over a real store
//! in a temporary directory; the queue keeps 2 messages in memory and pages the rest.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Weak, mpsc};
use std::time::Duration;

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable};
use bytes::Bytes;
use parking_lot::Mutex;
use warren_protocol::{Properties, ShortStr};

use super::{PageIn, PageRead};
use crate::broker::consumer::{Consumer, DeliveryTarget};
use crate::broker::message::{Message, QueuedMessage};
use crate::broker::queue::{Paging, Persistence, Queue, QueueDeclaration};
use crate::store::{CommitListener, IndexSegment, MessageRecord, Store};

struct Fixture {
    dir: PathBuf,
    store: Arc<Store>,
    queue: Arc<Queue>,
    published: u64,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `true` once everything sent to the store before it is durable.
struct Committed(Mutex<mpsc::Sender<bool>>);

impl CommitListener for Committed {
    fn committed(&self, _token: u64, ok: bool) {
        let _ = self.0.lock().send(ok);
    }
}

/// A consumer's channel that takes everything and records the sequence numbers.
#[derive(Default)]
struct Recorder(Mutex<Vec<u64>>);

impl DeliveryTarget for Recorder {
    fn try_deliver(
        &self,
        _consumer: &Arc<Consumer>,
        _queue: &Arc<Queue>,
        message: QueuedMessage,
    ) -> Result<(), QueuedMessage> {
        self.0.lock().push(message.seq);
        Ok(())
    }

    fn cancelled_by_broker(&self, _consumer_tag: &str) {}
}

impl Fixture {
    fn new() -> Fixture {
        Self::with_arguments(FieldTable::default())
    }

    fn with_arguments(arguments: FieldTable) -> Fixture {
        Self::build(arguments, true)
    }

    /// A queue paging beyond 2 ready messages; durable or not.
    fn build(arguments: FieldTable, durable: bool) -> Fixture {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "warren-page-in-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let (store, _) = Store::open(&dir, crate::store::DEFAULT_MAP_SIZE).expect("open store");
        let options = QueueDeclaration {
            durable,
            exclusive_owner: None,
            auto_delete: false,
            arguments,
        }
        .parse("queue 'q' in vhost '/'")
        .expect("valid arguments");
        let persistence = Persistence {
            store: store.clone(),
            queue_id: 1,
        };
        let queue = Arc::new(
            Queue::new(
                Arc::from("q"),
                Arc::from("/"),
                options,
                durable.then_some(persistence),
                Weak::new(),
            )
            .with_paging(Paging::new(store.clone(), 2)),
        );
        Fixture {
            dir,
            store,
            queue,
            published: 0,
        }
    }

    /// Message number n (body "m<n>"; n is also its sequence number), stored if persistent.
    fn message(&mut self, persistent: bool) -> Arc<Message> {
        self.message_with(persistent, BasicProperties::default())
    }

    /// [`Fixture::message`] with these properties (stored if persistent and the queue is
    /// durable, as publishing does).
    fn message_with(&mut self, persistent: bool, properties: BasicProperties) -> Arc<Message> {
        let body = Bytes::from(format!("m{}", self.published));
        self.published += 1;
        let routing_key = ShortStr::from_static("q").expect("short string");
        let properties = if persistent {
            Properties::from_basic(&properties.with_delivery_mode(2))
        } else {
            Properties::from_basic(&properties)
        };
        let stored = persistent && self.queue.persistence.is_some();
        let store_id = stored.then(|| {
            let id = self.store.next_message_id();
            let record = MessageRecord {
                exchange: Arc::from(""),
                routing_key: routing_key.clone(),
                properties: properties.raw().clone(),
                body: body.clone(),
            };
            self.store.put_message(id, record);
            id
        });
        Arc::new(Message {
            exchange: Arc::from(""),
            routing_key,
            properties,
            body,
            store_id,
        })
    }

    fn publish(&mut self, persistent: bool) {
        let message = self.message(persistent);
        self.queue.publish(message);
    }

    fn publish_persistent(&mut self, n: usize) {
        for _ in 0..n {
            self.publish(true);
        }
    }

    /// Waits until everything sent so far is durable and applied to LMDB: the backlog can be
    /// paged (read back).
    fn commit(&self) {
        let (tx, rx) = mpsc::channel();
        self.store
            .notify_when_committed(Arc::new(Committed(Mutex::new(tx))), 0);
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(true));
        // Durable now; readable in LMDB once the next checkpoint has run.
        let sent = self.store.sent_ops();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while self.store.applied_ops() < sent {
            assert!(std::time::Instant::now() < deadline, "no checkpoint");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Ten persistent messages, committed; 0 and 1 taken by basic.get (they were in memory),
    /// so the ready list is empty and 2..=9 are paged.
    fn paged_backlog() -> Fixture {
        let mut f = Fixture::new();
        f.publish_persistent(10);
        f.commit();
        assert_eq!(f.get(), Some(0));
        assert_eq!(f.get(), Some(1));
        f
    }

    /// basic.get with no-ack: the sequence number (checked against the body).
    fn get(&self) -> Option<u64> {
        let (m, _) = self.queue.get(true)?;
        assert_eq!(m.message.body, Bytes::from(format!("m{}", m.seq)));
        Some(m.seq)
    }

    fn drain(&self) -> Vec<u64> {
        std::iter::from_fn(|| self.get()).collect()
    }

    /// Starts a page-in that must read the store; the lock is free again on return.
    fn begin(&self) -> PageRead {
        match self.queue.begin_page_in(&mut self.queue.state.lock()) {
            PageIn::Read(read) => read,
            _ => panic!("expected a page-in that reads the store"),
        }
    }

    /// Reads what `begin` chose, then completes the page-in.
    fn end(&self, read: PageRead) {
        let loaded = self.queue.read_page(&read);
        self.queue
            .end_page_in(&mut self.queue.state.lock(), read, loaded);
    }

    fn consumer(&self) -> Arc<Recorder> {
        let recorder = Arc::new(Recorder::default());
        let consumer = Consumer::new("c".into(), true, false, 0, 0, 1, recorder.clone());
        self.queue.add_consumer(Arc::new(consumer)).unwrap();
        recorder
    }
}

#[test]
fn paged_and_spilled_messages_come_back_in_order_with_their_bodies() {
    let mut f = Fixture::new();
    for n in 0..12 {
        f.publish(n % 3 != 0); // every third is transient: spilled to the store, in order
    }
    f.commit();
    assert_eq!(f.queue.message_count(), 12);
    assert_eq!(f.drain(), (0..12).collect::<Vec<_>>());
}

#[test]
fn a_consumer_gets_the_whole_backlog_in_order() {
    let mut f = Fixture::new();
    f.publish_persistent(2500); // more than one page-in batch
    f.commit();
    let recorder = f.consumer();
    f.queue.dispatch();
    assert_eq!(*recorder.0.lock(), (0..2500).collect::<Vec<_>>());
    assert_eq!(f.queue.message_count(), 0);
}

#[test]
fn one_page_in_at_a_time_and_its_messages_still_count() {
    let f = Fixture::paged_backlog();
    let read = f.begin();
    assert!(matches!(
        f.queue.begin_page_in(&mut f.queue.state.lock()),
        PageIn::Nothing
    ));
    assert_eq!(
        f.queue.message_count(),
        8,
        "messages being read still count"
    );
    f.end(read);
    assert_eq!(f.drain(), (2..10).collect::<Vec<_>>());
}

#[test]
fn messages_published_during_the_read_stay_behind_the_paged_ones() {
    let mut f = Fixture::paged_backlog();
    let read = f.begin();
    f.publish(true);
    f.publish(false);
    f.publish(true);
    f.end(read);
    assert_eq!(f.drain(), (2..13).collect::<Vec<_>>());
}

#[test]
fn messages_requeued_during_the_read_keep_their_place_ahead() {
    let mut f = Fixture::new();
    f.publish_persistent(10);
    f.commit();
    let unacked: Vec<QueuedMessage> = (0..2).map(|_| f.queue.get(false).unwrap().0).collect();
    let read = f.begin();
    f.queue.requeue(None, unacked);
    f.end(read);
    let (first, _) = f.queue.get(true).unwrap();
    assert!(first.seq == 0 && first.redelivered);
    assert_eq!(f.drain(), (1..10).collect::<Vec<_>>());
}

#[test]
fn messages_published_during_the_read_of_a_recovered_priority_backlog_stay_behind_it() {
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-priority".into(), AMQPValue::LongLongInt(5));
    let mut f = Fixture::with_arguments(arguments);
    let ids = (0..3).map(|_| f.message(true).store_id.unwrap()).collect();
    f.commit();
    f.queue.restore(vec![IndexSegment {
        first_seq: 0,
        ids,
        ..Default::default()
    }]);
    let read = f.begin();
    f.publish(false); // behind the backlog (spilled: it is transient)
    f.end(read);
    assert_eq!(f.drain(), vec![0, 1, 2, 3]);
}

#[test]
fn a_purge_during_the_read_does_not_bring_the_messages_back() {
    let mut f = Fixture::paged_backlog();
    let read = f.begin();
    assert_eq!(f.queue.purge(), 8, "the messages being read are purged too");
    // New messages fill the ready list and page again behind it (settled by the last publish).
    f.publish_persistent(6);
    f.commit();
    f.publish(true);
    f.end(read);
    assert_eq!(f.queue.message_count(), 7);
    assert_eq!(f.drain(), (10..17).collect::<Vec<_>>());
}

#[test]
fn a_delete_during_the_read_drops_what_was_read() {
    let f = Fixture::paged_backlog();
    let read = f.begin();
    assert_eq!(f.queue.mark_deleted().1, 8);
    f.end(read);
    assert_eq!(f.queue.message_count(), 0);
    assert_eq!(f.get(), None);
}

#[test]
fn a_max_length_drop_during_the_read_is_not_undone() {
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongLongInt(10));
    let mut f = Fixture::with_arguments(arguments);
    f.publish_persistent(10);
    f.commit();
    assert_eq!((f.get(), f.get()), (Some(0), Some(1)));
    let read = f.begin();
    f.publish_persistent(3); // the third goes over the limit: the head (2) is dropped
    assert_eq!(f.queue.message_count(), 10);
    f.end(read);
    assert_eq!(f.drain(), (3..13).collect::<Vec<_>>());
}

#[test]
fn basic_get_during_the_read_waits_for_it_and_takes_the_head() {
    let f = Fixture::paged_backlog();
    let read = f.begin();
    let getter = std::thread::spawn({
        let queue = f.queue.clone();
        move || queue.get(true).map(|(m, remaining)| (m.seq, remaining))
    });
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !getter.is_finished(),
        "no get-empty while messages are being read"
    );
    f.end(read);
    assert_eq!(getter.join().unwrap(), Some((2, 7)));
}

#[test]
fn consumers_get_the_rest_of_what_basic_get_paged_in() {
    let f = Fixture::paged_backlog();
    let recorder = f.consumer(); // attached without a dispatch: it has seen nothing yet
    assert_eq!(f.get(), Some(2));
    assert_eq!(*recorder.0.lock(), (3..10).collect::<Vec<_>>());
}

#[path = "paging_tests.rs"]
mod paging;
