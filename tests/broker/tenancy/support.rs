//! What the tenancy tests share: a RabbitMQ definitions file built in code ([`Definitions`]), a
//! warren node that boots with it (and restarts on its data directory: [`Node`]), connections
//! as a given user to a given vhost (lapin, or the raw client where the exact close matters),
//! and RabbitMQ's refusal texts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use amq_protocol::protocol::{AMQPClass, connection};
use lapin::{Channel, Connection, ConnectionProperties};
use serde_json::{Value, json};

use crate::common::*;

/// A RabbitMQ definitions file (the JSON `rabbitmqctl export_definitions` writes), built up
/// one entry at a time.
#[derive(Default)]
pub struct Definitions {
    users: Vec<Value>,
    vhosts: Vec<Value>,
    permissions: Vec<Value>,
    topic_permissions: Vec<Value>,
    parameters: Vec<Value>,
    queues: Vec<Value>,
}

impl Definitions {
    pub fn new() -> Definitions {
        Definitions::default()
    }

    /// A user with a plaintext `password` (hashed by the broker at import) and `tags`.
    pub fn user(self, name: &str, password: &str, tags: &[&str]) -> Definitions {
        self.user_json(json!({"name": name, "password": password, "tags": tags}))
    }

    /// A user entry as written (e.g. with `password_hash`, `hashing_algorithm` or `limits`).
    pub fn user_json(mut self, user: Value) -> Definitions {
        self.users.push(user);
        self
    }

    pub fn vhost(mut self, name: &str) -> Definitions {
        self.vhosts.push(json!({"name": name}));
        self
    }

    /// The vhost-limits parameter of `vhost`, e.g. `{"max-connections": 1}`.
    pub fn vhost_limits(mut self, vhost: &str, limits: Value) -> Definitions {
        self.parameters.push(json!({
            "vhost": vhost, "component": "vhost-limits", "name": "limits", "value": limits
        }));
        self
    }

    /// `user`'s configure, write and read expressions on `vhost`.
    pub fn permit(
        mut self,
        user: &str,
        vhost: &str,
        configure: &str,
        write: &str,
        read: &str,
    ) -> Definitions {
        self.permissions.push(json!({
            "user": user, "vhost": vhost, "configure": configure, "write": write, "read": read
        }));
        self
    }

    /// `user` may do anything on `vhost`.
    pub fn permit_all(self, user: &str, vhost: &str) -> Definitions {
        self.permit(user, vhost, ".*", ".*", ".*")
    }

    /// `user`'s write and read routing-key expressions on topic exchange `exchange` of `vhost`.
    pub fn topic_permit(
        mut self,
        user: &str,
        vhost: &str,
        exchange: &str,
        write: &str,
        read: &str,
    ) -> Definitions {
        self.topic_permissions.push(json!({
            "user": user, "vhost": vhost, "exchange": exchange, "write": write, "read": read
        }));
        self
    }

    /// A durable classic queue without arguments.
    pub fn durable_queue(mut self, vhost: &str, name: &str) -> Definitions {
        self.queues.push(json!({
            "name": name, "vhost": vhost, "durable": true, "auto_delete": false, "arguments": {}
        }));
        self
    }

    pub fn to_json(&self) -> String {
        json!({
            "rabbit_version": "3.10.8",
            "users": self.users,
            "vhosts": self.vhosts,
            "permissions": self.permissions,
            "topic_permissions": self.topic_permissions,
            "parameters": self.parameters,
            "policies": [],
            "queues": self.queues,
            "exchanges": [],
            "bindings": [],
        })
        .to_string()
    }
}

/// One vhost `v` and one user `alice` (password `pw`) with `configure`, `write`, `read` on it:
/// what most permission tests start from.
pub fn alice_on_v(configure: &str, write: &str, read: &str) -> Definitions {
    Definitions::new()
        .vhost("v")
        .user("alice", "pw", &[])
        .permit("alice", "v", configure, write, read)
}

/// A warren process on a data directory of its own, which outlives restarts: boot it with a
/// configuration (and a definitions file), stop it gracefully or with kill -9, boot it again.
/// The directory is removed when the node is dropped.
pub struct Node {
    root: PathBuf,
    boots: usize,
    broker: Option<TestBroker>,
}

impl Node {
    pub fn new() -> Node {
        let root = std::env::temp_dir().join(unique("warren-tenancy"));
        std::fs::create_dir_all(root.join("data")).expect("create the node's directory");
        Node {
            root,
            boots: 0,
            broker: None,
        }
    }

    /// A node booted with `definitions` (`load_definitions`) and nothing else configured.
    pub fn with(definitions: &Definitions) -> Node {
        let mut node = Node::new();
        node.boot_with(definitions, "");
        node
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Boots warren on the node's data directory with a configuration file holding `toml`.
    pub fn boot(&mut self, toml: &str) {
        assert!(self.broker.is_none(), "the node is already running");
        self.boots += 1;
        let config = self.root.join(format!("warren-{}.toml", self.boots));
        std::fs::write(&config, toml).expect("write the configuration file");
        let config = config.to_str().expect("utf-8 temp path").to_string();
        self.broker = Some(TestBroker::spawn_in(
            &self.data_dir(),
            &["--config", &config],
        ));
    }

    /// Boots with `definitions` written to a file that `load_definitions` names, plus `toml`.
    pub fn boot_with(&mut self, definitions: &Definitions, toml: &str) {
        let file = self
            .root
            .join(format!("definitions-{}.json", self.boots + 1));
        std::fs::write(&file, definitions.to_json()).expect("write the definitions file");
        self.boot(&format!("load_definitions = {}\n{toml}", toml_path(&file)));
    }

    pub fn broker(&mut self) -> &mut TestBroker {
        self.broker.as_mut().expect("the node is not running")
    }

    pub fn addr(&self) -> SocketAddr {
        self.broker
            .as_ref()
            .expect("the node is not running")
            .addr()
    }

    /// SIGTERM; the broker must exit cleanly.
    pub fn terminate(&mut self) {
        self.broker().terminate();
        self.broker = None;
    }

    /// SIGKILL: nothing is flushed or closed.
    pub fn kill9(&mut self) {
        self.broker().kill9();
        self.broker = None;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        drop(self.broker.take());
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A path as a TOML string.
pub fn toml_path(path: &Path) -> String {
    let text = path.to_str().expect("utf-8 temp path");
    assert!(!text.contains(['"', '\\']), "unusual temp path {text}");
    format!("\"{text}\"")
}

/// The AMQP URI of `user` on `vhost` (`/` written `%2f`).
pub fn uri(addr: SocketAddr, user: &str, password: &str, vhost: &str) -> String {
    format!(
        "amqp://{user}:{password}@{addr}/{}",
        vhost.replace('%', "%25").replace('/', "%2f")
    )
}

/// A lapin connection as `user` to `vhost`, or the reason it was refused.
pub async fn try_connect_as(
    addr: SocketAddr,
    user: &str,
    password: &str,
    vhost: &str,
) -> lapin::Result<Connection> {
    tokio::time::timeout(
        WAIT,
        Connection::connect(
            &uri(addr, user, password, vhost),
            ConnectionProperties::default(),
        ),
    )
    .await
    .expect("lapin connect timed out")
}

/// A lapin connection as `user` to `vhost`; fails the test if refused.
pub async fn connect_as(addr: SocketAddr, user: &str, password: &str, vhost: &str) -> Connection {
    try_connect_as(addr, user, password, vhost)
        .await
        .unwrap_or_else(|e| panic!("connect as {user} to vhost {vhost}: {e:?}"))
}

/// [`connect_as`] plus one open channel. Keep the connection bound for the whole test.
pub async fn channel_as(
    addr: SocketAddr,
    user: &str,
    password: &str,
    vhost: &str,
) -> (Connection, Channel) {
    let conn = connect_as(addr, user, password, vhost).await;
    let ch = conn.create_channel().await.expect("create channel");
    (conn, ch)
}

/// A raw client logged in (PLAIN) as `user` and tuned, before connection.open.
pub async fn raw_logged_in(addr: SocketAddr, user: &str, password: &str) -> RawClient {
    let mut raw = RawClient::connect(addr).await;
    raw.start().await;
    raw.send_method(0, start_ok("PLAIN", plain_response(user, password)))
        .await;
    let tune = raw.recv_tune().await;
    raw.frame_max = tune.frame_max;
    raw.send_method(0, tune_ok(tune.channel_max, tune.frame_max, 0))
        .await;
    raw
}

/// A raw client with a connection as `user` open on `vhost`, and channel 1 open.
pub async fn raw_channel_as(
    addr: SocketAddr,
    user: &str,
    password: &str,
    vhost: &str,
) -> RawClient {
    let mut raw = raw_logged_in(addr, user, password).await;
    raw.send_method(0, connection_open(vhost)).await;
    raw.expect_open_ok().await;
    raw.open_channel(1).await;
    raw
}

/// connection.open of `vhost` as `user` must be refused: the connection.close the broker
/// sends (code, text, class, method); the socket must then close.
pub async fn open_refusal(
    addr: SocketAddr,
    user: &str,
    password: &str,
    vhost: &str,
) -> (u16, String, u16, u16) {
    let mut raw = raw_logged_in(addr, user, password).await;
    raw.send_method(0, connection_open(vhost)).await;
    let close = raw.expect_connection_close().await;
    raw.expect_eof(WAIT).await;
    close
}

/// A connection.close at connection.open (class 10, method 40) with `reply`.
pub fn refused_at_open(reply: (u16, String)) -> (u16, String, u16, u16) {
    expected_close(reply, 10, 40)
}

/// start-ok as `user` with `password` must be refused: the (code, text) of the close.
pub async fn login_refusal(addr: SocketAddr, user: &str, password: &str) -> (u16, String) {
    let mut raw = RawClient::connect(addr).await;
    raw.start().await;
    raw.send_method(0, start_ok("PLAIN", plain_response(user, password)))
        .await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    (code, text)
}

/// RabbitMQ's refusal of a login to a client that asked for `authentication_failure_close`.
pub fn login_refused() -> (u16, String) {
    access_refused(
        "Login was refused using authentication mechanism PLAIN. For details see the broker logfile.",
    )
}

/// RabbitMQ's 403 for `user` lacking a permission on the queue or exchange (`kind`) `name`.
pub fn refused(kind: &str, name: &str, vhost: &str, user: &str) -> (u16, String) {
    access_refused(format!(
        "access to {kind} '{name}' in vhost '{vhost}' refused for user '{user}'"
    ))
}

/// RabbitMQ's 403 for a routing key a topic permission does not allow.
pub fn topic_refused(routing_key: &str, exchange: &str, vhost: &str, user: &str) -> (u16, String) {
    access_refused(format!(
        "access to topic '{routing_key}' in exchange '{exchange}' in vhost '{vhost}' refused for user '{user}'"
    ))
}

/// RabbitMQ's 530 at connection.open for a user without permissions on `vhost`.
pub fn vhost_refused(vhost: &str, user: &str) -> (u16, String) {
    not_allowed(format!(
        "access to vhost '{vhost}' refused for user '{user}'"
    ))
}

/// basic.publish (class 60, method 40) on the raw client's channel 1 must close the channel:
/// (code, text, class, method).
pub async fn raw_publish_refusal(
    raw: &mut RawClient,
    exchange: &str,
    routing_key: &str,
) -> (u16, String, u16, u16) {
    raw.publish(1, exchange, routing_key, false, false, b"refused")
        .await;
    raw.expect_channel_close(1).await
}

/// A channel.close for basic.publish with `reply`.
pub fn refused_publish(reply: (u16, String)) -> (u16, String, u16, u16) {
    expected_close(reply, 60, 40)
}

/// connection.update-secret with `secret`.
pub fn update_secret(secret: &str, reason: &str) -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::UpdateSecret(
        connection::UpdateSecret {
            new_secret: secret.as_bytes().to_vec().into(),
            reason: reason.into(),
        },
    ))
}
