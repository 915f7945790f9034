//! Delivery from a stream over a real store: a consumer gets an entry only once it is durable.
//! Before that a crash could take back an entry a consumer was given, and the next append
//! would reuse its offset for another message (the crash test saw it: offsets read in one
//! broker life held other messages in the next).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amq_protocol::types::{AMQPValue, FieldTable};
use bytes::Bytes;
use parking_lot::Mutex;
use warren_protocol::{Properties, ShortStr};

use super::StreamStart;
use crate::broker::consumer::{Consumer, DeliveryTarget};
use crate::broker::message::{Message, QueuedMessage};
use crate::broker::queue::{Persistence, Queue, QueueDeclaration};
use crate::store::Store;

/// A stream queue over a store in a directory of its own, removed on drop.
struct Fixture {
    dir: PathBuf,
    store: Arc<Store>,
    queue: Arc<Queue>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.store.fail_next_commits(0);
        self.store.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Fixture {
    fn new() -> Fixture {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "warren-stream-delivery-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let (store, _) = Store::open(&dir, 1 << 24).expect("open store");
        let mut arguments = FieldTable::default();
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("stream".into()),
        );
        let options = QueueDeclaration {
            durable: true,
            exclusive_owner: None,
            auto_delete: false,
            arguments,
        }
        .parse("queue 's' in vhost '/'")
        .expect("valid arguments");
        let persistence = Persistence {
            store: store.clone(),
            queue_id: 1,
        };
        let queue = Arc::new(Queue::new(
            Arc::from("s"),
            Arc::from("/"),
            options,
            Some(persistence),
            Weak::new(),
        ));
        Fixture { dir, store, queue }
    }

    fn publish(&self, body: &str) {
        self.queue.publish(Arc::new(Message {
            exchange: Arc::from(""),
            routing_key: ShortStr::from_static("s").expect("short string"),
            properties: Properties::default(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            store_id: None,
        }));
    }

    /// A consumer reading from the first offset, with room for everything.
    fn consumer(&self) -> Arc<Recorder> {
        let recorder = Arc::new(Recorder::default());
        let consumer = Consumer::new("c".into(), false, false, 1000, 0, 1, recorder.clone());
        self.queue
            .add_consumer_from(Arc::new(consumer), Some(StreamStart::First))
            .expect("add consumer");
        recorder
    }
}

/// A consumer's channel that takes everything: offset and body of each delivery.
#[derive(Default)]
struct Recorder(Mutex<Vec<(u64, String)>>);

impl Recorder {
    fn got(&self) -> Vec<(u64, String)> {
        self.0.lock().clone()
    }

    /// Waits (at most 10 s) until `n` deliveries came.
    fn wait_for(&self, n: usize) -> Vec<(u64, String)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.0.lock().len() < n {
            assert!(
                Instant::now() < deadline,
                "{n} deliveries expected, got {:?}",
                self.got()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        self.got()
    }
}

impl DeliveryTarget for Recorder {
    fn try_deliver(
        &self,
        _consumer: &Arc<Consumer>,
        _queue: &Arc<Queue>,
        message: QueuedMessage,
    ) -> Result<(), QueuedMessage> {
        let body = String::from_utf8_lossy(&message.message.body).into_owned();
        self.0.lock().push((message.seq, body));
        Ok(())
    }

    fn cancelled_by_broker(&self, _consumer_tag: &str) {}
}

fn entries(pairs: &[(u64, &str)]) -> Vec<(u64, String)> {
    pairs.iter().map(|(o, b)| (*o, b.to_string())).collect()
}

#[test]
fn an_entry_reaches_consumers_only_once_the_store_committed_it() {
    let f = Fixture::new();
    let recorder = f.consumer();
    f.store.fail_next_commits(u64::MAX);
    f.publish("a");
    f.publish("b");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        recorder.got(),
        vec![],
        "delivered while no commit could reach the disk"
    );
    assert_eq!(f.queue.message_count(), 2);
    // The writer's retry commits them: the consumer gets them without anything else happening.
    f.store.fail_next_commits(0);
    assert_eq!(recorder.wait_for(2), entries(&[(0, "a"), (1, "b")]));
    // And what comes after, as it commits.
    f.publish("c");
    assert_eq!(
        recorder.wait_for(3),
        entries(&[(0, "a"), (1, "b"), (2, "c")])
    );
}

#[test]
fn a_consumer_keeping_up_gets_every_entry_once_in_order() {
    let f = Fixture::new();
    let recorder = f.consumer();
    for i in 0..500 {
        f.publish(&format!("m{i}"));
    }
    let got = recorder.wait_for(500);
    let want: Vec<(u64, String)> = (0..500).map(|i| (i, format!("m{i}"))).collect();
    assert_eq!(got, want);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(recorder.got().len(), 500, "nothing delivered twice");
}
