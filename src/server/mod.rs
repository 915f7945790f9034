//! The network side: listeners, one task per connection (handshake, frames, heartbeats), a
//! writer task per connection, and the per-channel state machines. Calls into `broker` with
//! typed operations; never holds broker locks across an `.await`.

mod channel;
mod closing;
mod connection;
mod flow;
mod frame_reader;
mod handshake;
mod listener;
mod outbox;

pub(crate) use connection::{ConnectionEnv, Stream, serve};

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Config;
use crate::auth::Users;
use crate::broker::Broker;
use crate::store::Store;

/// A started broker: its bound addresses and a way to stop it.
pub struct RunningBroker {
    addrs: Vec<SocketAddr>,
    shutdown: watch::Sender<bool>,
    listeners: Vec<JoinHandle<()>>,
    pub broker: Arc<Broker>,
}

impl RunningBroker {
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops accepting, closes every connection with 320 CONNECTION_FORCED, and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for l in self.listeners {
            let _ = l.await;
        }
        // Give connection tasks a moment to send their close frames.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if let Some(store) = &self.broker.store {
            // Commits whatever is still pending; the writer thread blocks, so not on a worker.
            let store = store.clone();
            let _ = tokio::task::spawn_blocking(move || store.shutdown()).await;
        }
    }
}

/// Binds every listener and starts accepting connections.
pub async fn start(config: Config) -> io::Result<RunningBroker> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create data dir {}: {e}", config.data_dir.display()),
        )
    })?;
    let users = Users::with_default_user(&config.default_user, &config.default_pass);
    crate::broker::consumer::set_default_timeout(config.consumer_timeout_ms);
    let map_size = usize::try_from(config.store_map_size_bytes).unwrap_or(usize::MAX);
    let (store, recovered) = Store::open(&config.data_dir, map_size).map_err(|e| {
        io::Error::other(format!(
            "cannot open the store in {}: {e}",
            config.data_dir.display()
        ))
    })?;
    let store_failing = store.watch_failing();
    let broker = Arc::new(Broker::new(
        users,
        config.max_message_size,
        Some(store),
        config.queue_page_threshold,
    ));
    broker.restore(recovered);
    let config = Arc::new(config);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let alarm = crate::alarms::spawn_monitor(crate::alarms::AlarmLimits {
        memory_bytes: config.memory_limit(),
        disk_free_bytes: config.disk_free_limit_bytes,
        data_dir: config.data_dir.clone(),
        interval: std::time::Duration::from_millis(250),
        store_failing: Some(store_failing),
    });
    {
        // Message TTL at rest and x-expires.
        let broker = broker.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(std::time::Duration::from_millis(100));
            loop {
                ticker.tick().await;
                crate::broker::housekeeping::sweep(&broker);
            }
        });
    }
    let env = connection::ConnectionEnv {
        broker: broker.clone(),
        config: config.clone(),
        shutdown: shutdown_rx.clone(),
        alarm,
    };
    let slots = listener::connection_slots(config.max_connections);
    let mut addrs = Vec::new();
    let mut listeners = Vec::new();
    for addr in &config.listen {
        let socket = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let local = socket.local_addr()?;
        tracing::info!("listening on {local}");
        addrs.push(local);
        listeners.push(tokio::spawn(listener::accept_loop(
            socket,
            slots.clone(),
            env.clone(),
        )));
    }
    Ok(RunningBroker {
        addrs,
        shutdown,
        listeners,
        broker,
    })
}
