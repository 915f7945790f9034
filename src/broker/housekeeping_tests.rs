//! Housekeeping with real queues and no sockets: what registers a deadline, and what happens
//! when it fires. The protocol-level behaviour is in tests/broker/ext_message_ttl.rs and
//! ext_queue_expiry.rs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::{AMQPValue, FieldTable};
use bytes::Bytes;
use tokio::sync::watch;
use warren_protocol::{Properties, ShortStr};

use super::*;
use crate::auth::Auth;
use crate::broker::message::Message;
use crate::broker::queue::QueueOptions;
use crate::broker::vhost::VHost;

/// An in-memory broker with housekeeping running until the sender is dropped.
fn running_broker() -> (Arc<Broker>, Arc<VHost>, watch::Sender<bool>) {
    let broker = Arc::new(Broker::new(
        Auth::with_default_user("guest", "guest", "/"),
        1 << 20,
        1000,
    ));
    let (shutdown, shutdown_rx) = watch::channel(false);
    tokio::spawn(run(broker.clone(), shutdown_rx));
    let vhost = broker.vhost("/").expect("the default vhost");
    (broker, vhost, shutdown)
}

fn declare(vhost: &VHost, name: &str, arguments: &[(&str, i64)]) -> Arc<Queue> {
    let mut table = FieldTable::default();
    for (key, value) in arguments {
        table.insert((*key).into(), AMQPValue::LongLongInt(*value));
    }
    let options = QueueOptions {
        durable: false,
        exclusive_owner: None,
        auto_delete: false,
        arguments: table,
    };
    vhost.declare_queue(name, options, false, 1).unwrap().queue
}

fn message(expiration: Option<&str>) -> Arc<Message> {
    let mut properties = BasicProperties::default();
    if let Some(ms) = expiration {
        properties = properties.with_expiration(ms.into());
    }
    Arc::new(Message {
        exchange: Arc::from(""),
        routing_key: ShortStr::from_slice(b"q").unwrap(),
        properties: Properties::from_basic(&properties),
        body: Bytes::from_static(b"body"),
        store_id: None,
    })
}

/// Waits (up to 5 s) until `done` holds; how long that took.
async fn eventually(what: &str, done: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn queues_without_ttl_or_expiry_register_nothing() {
    let (broker, vhost, _shutdown) = running_broker();
    for i in 0..100 {
        let queue = declare(&vhost, &format!("q{i}"), &[]);
        queue.publish(message(None));
    }
    assert_eq!(broker.deadlines.next_due(), None);
}

#[tokio::test]
async fn message_ttl_expires_the_head_at_rest() {
    let (_broker, vhost, _shutdown) = running_broker();
    let queue = declare(&vhost, "q", &[("x-message-ttl", 40)]);
    for _ in 0..3 {
        queue.publish(message(None));
    }
    let took = eventually("the messages expire", || queue.message_count() == 0).await;
    assert!(took >= Duration::from_millis(40), "expired after {took:?}");
}

#[tokio::test]
async fn a_message_reaching_the_head_gets_its_deadline() {
    let (_broker, vhost, _shutdown) = running_broker();
    let queue = declare(&vhost, "q", &[]);
    queue.publish(message(None));
    queue.publish(message(Some("10")));
    // Behind a head that never expires, it waits (as RabbitMQ's).
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(queue.message_count(), 2);
    assert!(queue.get(true).is_some());
    eventually("the new head expires", || queue.message_count() == 0).await;
}

#[tokio::test]
async fn an_unused_queue_is_deleted_after_x_expires() {
    let (_broker, vhost, _shutdown) = running_broker();
    let queue = declare(&vhost, "q", &[("x-expires", 40)]);
    let took = eventually("the queue goes", || vhost.queue("q").is_none()).await;
    assert!(took >= Duration::from_millis(40), "deleted after {took:?}");
    assert!(queue.is_deleted());
}

#[tokio::test]
async fn use_postpones_x_expires_without_registering_again() {
    let (broker, vhost, _shutdown) = running_broker();
    let queue = declare(&vhost, "q", &[("x-expires", 150)]);
    let first_due = broker.deadlines.next_due();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(queue.get(true).is_none());
    // A later deadline is found when the registered one fires, not registered now.
    assert_eq!(broker.deadlines.next_due(), first_due);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        vhost.queue("q").is_some(),
        "used 100 ms ago, expires after 150"
    );
    eventually("the queue goes", || vhost.queue("q").is_none()).await;
}

#[tokio::test]
async fn a_deleted_queue_leaves_no_deadline_behind() {
    let (broker, vhost, _shutdown) = running_broker();
    let queue = declare(&vhost, "q", &[("x-expires", 3_600_000)]);
    queue.publish(message(Some("3600000")));
    assert!(broker.deadlines.next_due().is_some());
    vhost.delete_queue("q", false, false, 1).unwrap();
    assert_eq!(broker.deadlines.next_due(), None);
}
