//! Brokers started in this process, for tests that change users, vhosts and permissions
//! while clients are connected (there is no management API yet): `warren::start` on a data
//! directory of the test's own, the broker's tenancy operations, and a watch for the
//! connection.close a lapin connection receives.

use std::path::{Path, PathBuf};
use std::pin::Pin;

use futures_lite::{Stream, StreamExt};
use warren::auth::{HashingAlgorithm, PasswordHash, User};
use warren::broker::Broker;
use warren::broker::vhost::VhostSettings;
use warren::{Config, RunningBroker};

use crate::common::*;

/// A data directory of the test's own (the store may be opened once per process per path),
/// removed at the end.
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn new() -> DataDir {
        let dir = std::env::temp_dir().join(unique("warren-in-process"));
        std::fs::create_dir_all(&dir).expect("create data dir");
        DataDir(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A broker in this process on `dir`, default configuration (guest on `/`).
pub async fn start_in_process(dir: &Path) -> RunningBroker {
    let config = Config {
        listen: vec!["127.0.0.1:0".parse().expect("address")],
        data_dir: dir.to_path_buf(),
        // Free ports: tests run side by side.
        management: free_http_listener(),
        prometheus: free_http_listener(),
        ..Config::default()
    };
    warren::start(config)
        .await
        .expect("start warren in process")
}

pub fn addr(running: &RunningBroker) -> std::net::SocketAddr {
    running.local_addrs()[0]
}

pub fn add_user(broker: &Broker, name: &str, password: &str) {
    let hash = PasswordHash::new(HashingAlgorithm::Sha256, password);
    broker
        .put_user(User::new(name, Some(hash), &[]))
        .expect("put_user");
}

pub fn add_vhost(broker: &Broker, name: &str, users: &[&str]) {
    broker
        .put_vhost(name, VhostSettings::default())
        .expect("put_vhost");
    for user in users {
        broker
            .set_permissions(user, name, ".*", ".*", ".*")
            .expect("set_permissions");
    }
}

/// Watches a lapin connection for the connection.close the broker sends (lapin reports it as
/// an error event; the listener must exist before the close arrives).
pub struct CloseWatch(Pin<Box<dyn Stream<Item = lapin::Event> + Send>>);

impl CloseWatch {
    pub fn new(conn: &lapin::Connection) -> CloseWatch {
        CloseWatch(Box::pin(conn.events_listener()))
    }

    /// The (code, text) of the broker's connection.close.
    pub async fn reason(mut self) -> (u16, String) {
        loop {
            match tokio::time::timeout(WAIT, self.0.next()).await {
                Err(_) => panic!("no connection.close within {WAIT:?}"),
                Ok(None) => panic!("the connection's events ended without an error"),
                Ok(Some(lapin::Event::Error(e))) => {
                    return amqp_error(&e).unwrap_or_else(|| panic!("not an AMQP error: {e:?}"));
                }
                Ok(Some(_)) => continue,
            }
        }
    }
}

/// A connection that must still work: a channel, a queue, a message through it.
pub async fn assert_works(conn: &lapin::Connection) {
    let ch = conn.create_channel().await.expect("channel");
    let q = declare_tmp_queue(&ch).await;
    publish(&ch, "", &q, b"still here").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, ["still here"]);
}

/// An HTTP listener of the operator surface on a free loopback port.
fn free_http_listener() -> warren::config::ManagementConfig {
    warren::config::ManagementConfig {
        enabled: true,
        listen: "127.0.0.1:0".parse().expect("address"),
    }
}
