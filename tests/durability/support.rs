//! What the durability tests add to the broker harness (`crate::common`): a broker bound to a data
//! directory that outlives it and restarts on it (graceful or crash), whether a queue or exchange
//! came back, publishing batches that wait for the broker's confirms, and reading back what a
//! queue holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use warren::store::Store;
use warren::{Config, RunningBroker};

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

    /// A node whose first broker runs with the configuration `toml`; the brokers that replace it
    /// run without.
    pub fn start_with_config(toml: &str) -> Node {
        let dir = DataDir::new();
        let broker = TestBroker::spawn_in_with_config(dir.path(), toml);
        Node { broker, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the broker as `stop` says and starts a new one on the same data directory.
    pub fn restart(&mut self, stop: Stop) {
        self.stop(stop);
        self.restart_after_stop();
    }

    /// [`Node::restart`], then a connection to the new broker.
    pub async fn restart_and_connect(&mut self, stop: Stop) -> Connection {
        self.restart(stop);
        self.broker.connect().await
    }

    /// [`Node::restart`], then a connection and a channel on the new broker.
    pub async fn restart_and_open_channel(&mut self, stop: Stop) -> (Connection, Channel) {
        self.restart(stop);
        self.channel().await
    }

    /// Stops the broker as `stop` says and starts a new one on the same data directory, with the
    /// configuration `toml`.
    pub fn restart_with_config(&mut self, stop: Stop, toml: &str) {
        self.stop(stop);
        self.restart_after_stop_with_config(toml);
    }

    /// [`Node::restart_after_stop`] with the configuration `toml`.
    pub fn restart_after_stop_with_config(&mut self, toml: &str) {
        self.broker = TestBroker::spawn_in_with_config(self.dir.path(), toml);
    }

    /// Starts a new broker on the data directory after [`Node::stop`].
    pub fn restart_after_stop(&mut self) {
        self.broker = TestBroker::spawn_in(self.dir.path(), &[]);
    }

    /// Stops the broker as `stop` says (the process is gone when this returns).
    pub fn stop(&mut self, stop: Stop) {
        match stop {
            Stop::Graceful => self.broker.terminate(),
            Stop::Kill => self.broker.kill9(),
        }
    }

    pub async fn channel(&self) -> (Connection, Channel) {
        self.broker.channel().await
    }

    /// A channel in confirm mode.
    pub async fn confirm_channel(&self) -> (Connection, Channel) {
        let conn = self.broker.connect().await;
        let ch = confirm_channel_on(&conn).await;
        (conn, ch)
    }
}

/// A new channel on `conn`, in confirm mode.
pub async fn confirm_channel_on(conn: &Connection) -> Channel {
    let ch = conn.create_channel().await.expect("create channel");
    ch.confirm_select(Default::default())
        .await
        .expect("confirm.select");
    ch
}

/// Runs `method` on a channel of its own, so that a refusal closes only that channel (the
/// channel is closed after a success): the result, or the (code, text) the broker refused with.
pub async fn on_own_channel<T>(
    conn: &Connection,
    what: &str,
    method: impl AsyncFnOnce(&Channel) -> lapin::Result<T>,
) -> Result<T, (u16, String)> {
    let ch = conn.create_channel().await.expect("create channel");
    match method(&ch).await {
        Ok(v) => {
            let _ = ch.close(200, "bye".into()).await;
            Ok(v)
        }
        Err(e) => Err(amqp_error(&e).unwrap_or_else(|| panic!("{what}: {e:?}"))),
    }
}

/// Whether a queue exists (passive declare on a channel of its own): true, or false on 404.
pub async fn queue_exists(conn: &Connection, name: &str) -> bool {
    let what = format!("passive declare of queue {name}");
    let res = on_own_channel(conn, &what, async |ch| {
        declare_queue_passive(ch, name).await
    })
    .await;
    exists(res, &what)
}

/// Whether an exchange exists (passive declare on a channel of its own): true, or false on 404.
pub async fn exchange_exists(conn: &Connection, name: &str) -> bool {
    let what = format!("passive declare of exchange {name}");
    let res = on_own_channel(conn, &what, async |ch| {
        declare_exchange_passive(ch, name, ExchangeKind::Direct).await
    })
    .await;
    exists(res, &what)
}

fn exists<T>(passive_declare: Result<T, (u16, String)>, what: &str) -> bool {
    match passive_declare {
        Ok(_) => true,
        Err((404, _)) => false,
        Err(e) => panic!("{what}: {e:?}"),
    }
}

/// Publishes `bodies` persistently to a queue through the default exchange and waits until
/// every one is confirmed (the channel must be in confirm mode).
pub async fn publish_all_confirmed(ch: &Channel, queue: &str, bodies: &[String]) {
    publish_all_confirmed_to(ch, "", queue, bodies).await
}

/// Publishes `bodies` persistently, all in flight at once, and waits until the broker has acked
/// every one (the channel must be in confirm mode).
pub async fn publish_all_confirmed_to(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    bodies: &[String],
) {
    let messages: Vec<(&str, BasicProperties)> =
        bodies.iter().map(|b| (b.as_str(), persistent())).collect();
    let confirmations = publish_batch(ch, exchange, routing_key, &messages).await;
    for (confirmation, body) in confirmations.iter().zip(bodies) {
        assert!(
            confirmation.is_ack(),
            "broker nacked {body}: {confirmation:?}"
        );
    }
}

/// Publishes each (body, properties), all in flight at once (the channel must be in confirm
/// mode), and waits for every confirm: the broker's answers, in publishing order.
pub async fn publish_batch(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    messages: &[(&str, BasicProperties)],
) -> Vec<Confirmation> {
    let mut pending = Vec::with_capacity(messages.len());
    for (body, properties) in messages {
        pending.push(
            ch.basic_publish(
                exchange.into(),
                routing_key.into(),
                Default::default(),
                body.as_bytes(),
                properties.clone(),
            )
            .await
            .expect("basic.publish"),
        );
    }
    let mut confirmations = Vec::with_capacity(pending.len());
    for confirm in pending {
        confirmations.push(
            tokio::time::timeout(WAIT, confirm)
                .await
                .expect("no publisher confirm in time")
                .expect("publisher confirm"),
        );
    }
    confirmations
}

/// The management API's object for queue `name` in vhost `/` (`GET /api/queues/%2F/NAME`).
pub fn queue_object(broker: &TestBroker, name: &str) -> serde_json::Value {
    let http = crate::common::http::Http::new(&broker.management_url());
    let path = format!(
        "/api/queues/%2F/{}",
        crate::common::http::path_segment(name)
    );
    let answer = http.get(&path);
    assert_eq!(answer.status, 200, "GET {path}: {answer:?}");
    answer.body
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

/// Drains a queue with no-ack basic.get: each message with how it was delivered.
pub async fn get_all(ch: &Channel, queue: &str) -> Vec<Got> {
    let mut out = Vec::new();
    while let Some(m) = get_message_no_ack(ch, queue).await {
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

/// `prefix-0 .. prefix-(n-1)`.
pub fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// A broker in this process on `dir` (so a test can reach its store), and a connection to it.
pub async fn start_in_process(dir: &Path) -> (RunningBroker, Arc<Store>, Connection) {
    let config = Config {
        listen: vec!["127.0.0.1:0".parse().expect("address")],
        data_dir: dir.to_path_buf(),
        // Free ports: tests run side by side.
        management: free_http_listener(),
        prometheus: free_http_listener(),
        ..Config::default()
    };
    let running = warren::start(config)
        .await
        .expect("start warren in process");
    let store = running
        .broker
        .store()
        .cloned()
        .expect("the broker has a store");
    let uri = format!("amqp://guest:guest@{}/%2f", running.local_addrs()[0]);
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect("connect");
    (running, store, conn)
}

/// An HTTP listener of the operator surface on a free loopback port.
fn free_http_listener() -> warren::config::ManagementConfig {
    warren::config::ManagementConfig {
        enabled: true,
        listen: "127.0.0.1:0".parse().expect("address"),
    }
}
