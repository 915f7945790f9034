//! Helpers shared by the durability tests: a broker bound to a data directory that outlives it,
//! restarts (graceful or crash), and small lapin wrappers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amq_protocol::types::FieldTable;
use futures_lite::StreamExt;
use lapin::{
    BasicProperties, Channel, Connection, ExchangeKind,
    options::{
        BasicConsumeOptions, BasicGetOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
        QueueDeclareOptions,
    },
};

use crate::common::*;

/// A temporary data directory, removed on drop.
pub struct DataDir(PathBuf);

impl DataDir {
    pub fn new() -> DataDir {
        let dir = std::env::temp_dir().join(unique("warren-durability"));
        std::fs::create_dir_all(&dir).expect("create data dir");
        DataDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How the broker goes down before it is started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: a clean shutdown that must exit 0.
    Graceful,
    /// SIGKILL: a crash.
    Kill,
}

/// A warren process and the data directory it, and the processes that replace it, run on.
/// (Field order matters: the broker is killed before the directory is removed.)
pub struct Node {
    pub broker: TestBroker,
    dir: DataDir,
}

impl Node {
    pub fn start() -> Node {
        let dir = DataDir::new();
        let broker = TestBroker::spawn_in(dir.path(), &[]);
        Node { broker, dir }
    }

    /// A node of a broker already started on `dir`.
    pub fn from_parts(broker: TestBroker, dir: DataDir) -> Node {
        Node { broker, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the broker as `stop` says and starts a new one on the same data directory.
    pub fn restart(&mut self, stop: Stop) {
        self.stop(stop);
        self.broker = TestBroker::spawn_in(self.dir.path(), &[]);
    }

    /// Starts a new broker on the data directory after [`Node::stop`].
    pub fn restart_after_stop(&mut self) {
        self.broker = TestBroker::spawn_in(self.dir.path(), &[]);
    }

    /// Stops the broker as `stop` says (the process is gone when this returns).
    pub fn stop(&mut self, stop: Stop) {
        match stop {
            Stop::Graceful => {
                let status = self.broker.signal_and_wait("TERM");
                assert!(status.success(), "exit status after SIGTERM: {status:?}");
            }
            Stop::Kill => self.broker.kill9(),
        }
    }

    pub async fn channel(&self) -> (Connection, Channel) {
        self.broker.channel().await
    }

    /// A channel in confirm mode.
    pub async fn confirm_channel(&self) -> (Connection, Channel) {
        let (conn, ch) = self.broker.channel().await;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm.select");
        (conn, ch)
    }
}

/// delivery_mode 2.
pub fn persistent() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(2)
}

/// delivery_mode 1.
pub fn transient() -> BasicProperties {
    BasicProperties::default().with_delivery_mode(1)
}

pub async fn declare_durable_queue(ch: &Channel, name: &str, args: FieldTable) {
    ch.queue_declare(
        name.into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        args,
    )
    .await
    .unwrap_or_else(|e| panic!("declare durable queue {name}: {e:?}"));
}

pub async fn declare_exchange(ch: &Channel, name: &str, kind: ExchangeKind, durable: bool) {
    ch.exchange_declare(
        name.into(),
        kind,
        ExchangeDeclareOptions {
            durable,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("declare exchange {name}: {e:?}"));
}

pub async fn bind_queue(ch: &Channel, queue: &str, exchange: &str, key: &str, args: FieldTable) {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        Default::default(),
        args,
    )
    .await
    .unwrap_or_else(|e| panic!("bind {queue} to {exchange} ({key}): {e:?}"));
}

/// Whether a queue exists (passive declare on a throw-away channel): true, or false on 404.
pub async fn queue_exists(conn: &Connection, name: &str) -> bool {
    let ch = conn.create_channel().await.expect("create channel");
    let res = ch
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    match res {
        Ok(_) => {
            let _ = ch.close(200, "bye".into()).await;
            true
        }
        Err(e) => match amqp_error(&e) {
            Some((404, _)) => false,
            _ => panic!("passive declare of queue {name}: {e:?}"),
        },
    }
}

/// Whether an exchange exists (passive declare on a throw-away channel): true, or false on 404.
pub async fn exchange_exists(conn: &Connection, name: &str) -> bool {
    let ch = conn.create_channel().await.expect("create channel");
    let res = ch
        .exchange_declare(
            name.into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    match res {
        Ok(()) => {
            let _ = ch.close(200, "bye".into()).await;
            true
        }
        Err(e) => match amqp_error(&e) {
            Some((404, _)) => false,
            _ => panic!("passive declare of exchange {name}: {e:?}"),
        },
    }
}

/// Publishes on a channel in confirm mode and asserts the broker acks it.
pub async fn publish_confirmed(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    let confirm = ch
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            Default::default(),
            body,
            props,
        )
        .await
        .expect("basic.publish");
    let confirmation = tokio::time::timeout(WAIT, confirm)
        .await
        .expect("no publisher confirm in time")
        .expect("publisher confirm");
    assert!(
        confirmation.is_ack(),
        "broker nacked {:?}: {confirmation:?}",
        String::from_utf8_lossy(body)
    );
}

/// Publishes `bodies` persistently to a queue through the default exchange and waits until
/// every one is confirmed (the channel must be in confirm mode).
pub async fn publish_all_confirmed(ch: &Channel, queue: &str, bodies: &[String]) {
    let mut pending = Vec::with_capacity(bodies.len());
    for body in bodies {
        pending.push(
            ch.basic_publish(
                "".into(),
                queue.into(),
                Default::default(),
                body.as_bytes(),
                persistent(),
            )
            .await
            .expect("basic.publish"),
        );
    }
    for (confirm, body) in pending.into_iter().zip(bodies) {
        let confirmation = tokio::time::timeout(WAIT, confirm)
            .await
            .expect("no publisher confirm in time")
            .expect("publisher confirm");
        assert!(
            confirmation.is_ack(),
            "broker nacked {body}: {confirmation:?}"
        );
    }
}

/// One message taken with basic.get.
#[derive(Debug)]
pub struct Got {
    pub body: String,
    pub redelivered: bool,
    pub exchange: String,
    pub routing_key: String,
    pub properties: BasicProperties,
}

/// Drains a queue with no-ack basic.get.
pub async fn get_all(ch: &Channel, queue: &str) -> Vec<Got> {
    let mut out = Vec::new();
    loop {
        let got = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap_or_else(|e| panic!("basic.get from {queue}: {e:?}"));
        let Some(m) = got else { break };
        let d = m.delivery;
        out.push(Got {
            body: String::from_utf8(d.data).expect("utf-8 body"),
            redelivered: d.redelivered,
            exchange: d.exchange.as_str().to_string(),
            routing_key: d.routing_key.as_str().to_string(),
            properties: d.properties,
        });
        assert!(out.len() <= 1_000_000, "queue {queue} never drains");
    }
    out
}

pub fn bodies(got: &[Got]) -> Vec<String> {
    got.iter().map(|g| g.body.clone()).collect()
}

/// Drains a queue with no-ack basic.get and returns its bodies.
pub async fn drain(ch: &Channel, queue: &str) -> Vec<String> {
    bodies(&get_all(ch, queue).await)
}

/// `prefix-0 .. prefix-(n-1)`.
pub fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Starts a manual-ack consumer on `queue` and takes `n` deliveries (without acking them).
pub async fn take_unacked(ch: &Channel, queue: &str, n: usize) -> Vec<lapin::message::Delivery> {
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("basic.consume");
    let mut out = Vec::new();
    while out.len() < n {
        out.push(next_delivery(&mut consumer).await);
    }
    out
}

/// Waits until `f` holds, polling every 20 ms, failing after `WAIT`.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Next delivery of a consumer, or None if nothing comes within `wait`.
pub async fn try_next(
    consumer: &mut lapin::Consumer,
    wait: Duration,
) -> Option<lapin::message::Delivery> {
    match tokio::time::timeout(wait, consumer.next()).await {
        Ok(Some(Ok(d))) => Some(d),
        _ => None,
    }
}
