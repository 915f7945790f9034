//! The network side: listeners, one task per connection (handshake, frames, heartbeats), a
//! writer task per connection, and the per-channel state machines. Calls into `broker` with
//! typed operations; never holds broker locks across an `.await`.

mod channel;
mod closing;
mod connection;
mod connection_shared;
mod flow;
mod frame_reader;
mod handshake;
mod listener;
mod outbox;
mod tls;

pub(crate) use connection::{ConnectionEnv, Stream, serve};

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::Config;
use crate::broker::Broker;

/// How long shutdown waits for connections to send their 320 and finish.
const CONNECTIONS_GRACE: Duration = Duration::from_secs(5);

/// A started broker: its bound addresses and a way to stop it.
pub struct RunningBroker {
    addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
    management_addr: Option<SocketAddr>,
    prometheus_addr: Option<SocketAddr>,
    /// The one shutdown signal: listeners, connections and background tasks all watch it.
    shutdown: watch::Sender<bool>,
    /// Listeners, housekeeping and the alarm monitor.
    background: TaskTracker,
    /// One task per client connection.
    connections: TaskTracker,
    pub broker: Arc<Broker>,
    /// This node's part of a cluster, when it is one.
    pub cluster: Option<Arc<crate::cluster::ClusterNode>>,
}

impl RunningBroker {
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The bound TLS (amqps) listeners.
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls_addrs
    }

    /// The management HTTP API's address, unless it is turned off.
    pub fn management_addr(&self) -> Option<SocketAddr> {
        self.management_addr
    }

    /// The Prometheus listener's address, unless it is turned off.
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        self.prometheus_addr
    }

    /// Stops accepting, closes every connection with 320 CONNECTION_FORCED, waits for the
    /// connections (up to a grace period) and the background tasks to end, then commits what
    /// is pending and closes the store.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.background.close();
        self.background.wait().await;
        // Listeners are gone: no connection starts from here on.
        self.connections.close();
        if tokio::time::timeout(CONNECTIONS_GRACE, self.connections.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "{} connections still open after {CONNECTIONS_GRACE:?}; closing the store anyway",
                self.connections.len()
            );
        }
        if let Some(cluster) = &self.cluster {
            cluster.shutdown().await;
        }
        // The store's writer thread blocks, so not on a worker.
        let broker = self.broker.clone();
        let _ = tokio::task::spawn_blocking(move || broker.close_store()).await;
    }
}

/// Binds every listener and starts accepting connections.
pub async fn start(mut config: Config) -> io::Result<RunningBroker> {
    if let Some(addr) = default_tls_listener(&config) {
        tracing::info!(
            "ssl_options.certfile is set and listen_tls is empty: listening for TLS on the default amqps port, {addr}"
        );
        config.listen_tls = vec![addr];
    }
    // Before anything else: a TLS setup that cannot work stops the start with its reason.
    let tls = tls_listener(&config)?;
    crate::broker::consumer::set_default_timeout(config.consumer_timeout_ms);
    crate::broker::queue::dead_letter::set_retry_interval(config.dead_letter_retry_ms);
    let broker = Arc::new(Broker::open(&config).map_err(io::Error::other)?);
    // Before any listener: from here on, changes to definitions go through the cluster.
    let cluster = match config.cluster.enabled() {
        true => Some(
            crate::cluster::ClusterNode::start(&config.cluster, &config.data_dir, broker.clone())
                .await
                .map_err(io::Error::other)?,
        ),
        false => None,
    };
    let config = Arc::new(config);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let background = TaskTracker::new();
    let connections = TaskTracker::new();
    let alarm = crate::alarms::spawn_monitor(
        crate::alarms::AlarmLimits {
            memory_bytes: config.memory_limit(),
            disk_free_bytes: config.disk_free_limit_bytes,
            data_dir: config.data_dir.clone(),
            interval: Duration::from_millis(250),
            store_failing: broker.store_failing(),
        },
        shutdown_rx.clone(),
        &background,
    );
    background.spawn(crate::broker::housekeeping::run(
        broker.clone(),
        shutdown_rx.clone(),
    ));
    background.spawn(crate::broker::delayed::run(
        broker.clone(),
        shutdown_rx.clone(),
    ));
    let env = connection::ConnectionEnv {
        broker: broker.clone(),
        config: config.clone(),
        shutdown: shutdown_rx.clone(),
        alarm,
    };
    let slots = listener::connection_slots(config.max_connections);
    let mut addrs = Vec::new();
    let mut tls_addrs = Vec::new();
    let plain = config.listen.iter().map(|addr| (addr, None));
    let secure = config.listen_tls.iter().map(|addr| (addr, tls.clone()));
    for (addr, tls) in plain.chain(secure) {
        let socket = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        let local = socket.local_addr()?;
        if tls.is_some() {
            tracing::info!("listening for TLS on {local}");
            tls_addrs.push(local);
        } else {
            tracing::info!("listening on {local}");
            addrs.push(local);
        }
        background.spawn(listener::accept_loop(
            socket,
            slots.clone(),
            env.clone(),
            connections.clone(),
            tls,
        ));
    }
    // The HTTP listeners: bound first (their addresses go into what the API shows), then
    // served with one view of the node.
    let management = match config.management.enabled {
        true => {
            Some(crate::management::bind(config.management.listen, "the management API").await?)
        }
        false => None,
    };
    let prometheus = match config.prometheus.enabled {
        true => Some(crate::management::bind(config.prometheus.listen, "Prometheus").await?),
        false => None,
    };
    let management_addr = management.as_ref().map(|s| s.local_addr()).transpose()?;
    let prometheus_addr = prometheus.as_ref().map(|s| s.local_addr()).transpose()?;
    let api = Arc::new(crate::management::Api {
        broker: broker.clone(),
        config: config.clone(),
        alarm: env.alarm.clone(),
        amqp: addrs.clone(),
        amqps: tls_addrs.clone(),
        http: management_addr.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
        started: std::time::Instant::now(),
        rates: Default::default(),
        cluster: cluster.clone(),
    });
    if let Some(socket) = management {
        tracing::info!("management API listening on http://{}", api.http);
        background.spawn(crate::management::rates::run(
            api.clone(),
            shutdown_rx.clone(),
        ));
        let app = crate::management::app(api.clone());
        crate::management::serve(socket, app, shutdown_rx.clone(), &background);
    }
    if let Some(socket) = prometheus {
        tracing::info!(
            "Prometheus metrics on http://{}/metrics",
            socket.local_addr()?
        );
        let app = crate::management::prometheus::app(api);
        crate::management::serve(socket, app, shutdown_rx.clone(), &background);
    }
    Ok(RunningBroker {
        addrs,
        tls_addrs,
        management_addr,
        prometheus_addr,
        shutdown,
        background,
        connections,
        broker,
        cluster,
    })
}

/// RabbitMQ's conventional amqps port (`listeners.ssl.default = 5671`).
pub const DEFAULT_TLS_PORT: u16 = 5671;

/// The TLS listener to add when TLS is configured (`ssl_options.certfile` is set) but
/// `listen_tls` is empty: port 5671 on the first plain listener's IP (127.0.0.1 without one).
fn default_tls_listener(config: &Config) -> Option<SocketAddr> {
    if !config.listen_tls.is_empty() || config.ssl_options.certfile.is_none() {
        return None;
    }
    let ip = config
        .listen
        .first()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    Some(SocketAddr::new(ip, DEFAULT_TLS_PORT))
}

/// The TLS configuration the TLS listeners share (`None` without `listen_tls`).
fn tls_listener(config: &Config) -> io::Result<Option<Arc<tls::TlsListener>>> {
    if config.listen_tls.is_empty() {
        let o = &config.ssl_options;
        if o.keyfile.is_some() || o.cacertfile.is_some() {
            tracing::warn!(
                "ssl_options are set without certfile and listen_tls is empty: no TLS listener"
            );
        }
        return Ok(None);
    }
    tls::TlsListener::from_config(config)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("TLS: {e}")))
}
