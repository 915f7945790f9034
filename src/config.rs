//! Broker configuration: embedded defaults, overridden by a TOML file, overridden by flags.
//!
//! The defaults start a usable broker with nothing else: 127.0.0.1:5672, user guest/guest
//! (loopback only), vhost `/`, data in `./warren-data`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// AMQP listeners.
    pub listen: Vec<SocketAddr>,
    pub data_dir: PathBuf,
    /// A tracing filter such as `info` or `warren=debug`.
    pub log_level: String,
    /// The user, password, tags, vhost and permissions created on the first boot of an empty
    /// data directory (not when `load_definitions` is set), as RabbitMQ names them.
    pub default_user: String,
    pub default_pass: String,
    pub default_user_tags: Vec<String>,
    pub default_vhost: String,
    /// configure, write, read.
    pub default_permissions: Vec<String>,
    /// Users that may only connect from loopback addresses (RabbitMQ's `loopback_users`).
    pub loopback_users: Vec<String>,
    /// A RabbitMQ definitions file (JSON) imported at every boot: users, vhosts, permissions,
    /// topic permissions, limits, exchanges, queues, bindings.
    pub load_definitions: Option<PathBuf>,
    /// Proposed in connection.tune; a client's smaller non-zero value wins.
    pub channel_max: u16,
    pub frame_max: u32,
    /// Heartbeat interval proposed in connection.tune, in seconds.
    pub heartbeat: u16,
    /// Largest message body accepted (RabbitMQ's max_message_size).
    pub max_message_size: u64,
    /// Seconds a client has to complete the handshake.
    pub handshake_timeout: u64,
    /// Seconds a write to a client may make no progress (the client reads nothing) before the
    /// connection is closed.
    pub write_timeout: u64,
    /// Open connections allowed at once; 0 = no limit (RabbitMQ's `connection_max`). At the
    /// limit, new connections wait in the listen backlog until one closes, as on RabbitMQ.
    pub max_connections: usize,
    /// Memory alarm threshold as a fraction of total RAM (RabbitMQ's vm_memory_high_watermark).
    pub memory_high_watermark: f64,
    /// An absolute memory alarm threshold in bytes; overrides the fraction when non-zero.
    pub memory_limit_bytes: u64,
    /// Disk alarm threshold: free bytes under the data directory (RabbitMQ's disk_free_limit).
    pub disk_free_limit_bytes: u64,
    /// The LMDB memory map's size to start with, in bytes (rounded up to whole pages, at least
    /// 1 MiB). Only address space: the data file grows as it is used. When it is full the
    /// store doubles it and goes on.
    pub store_map_size_bytes: u64,
    /// Ready messages a durable queue keeps in memory; beyond that, persistent messages wait in
    /// LMDB only (a backlog larger than RAM) and are read back as they are delivered.
    pub queue_page_threshold: usize,
    /// How long a consumer may hold a delivery unacknowledged before its channel is closed
    /// (406), in ms; 0 = off. RabbitMQ's default: 30 minutes. `x-consumer-timeout` overrides.
    pub consumer_timeout_ms: u64,
    /// How long a quorum queue's at-least-once dead letter waits before it is offered again to
    /// targets that did not take it (or when it routed nowhere), in ms. RabbitMQ's
    /// `dead_letter_worker_publisher_confirm_timeout`: 180 s.
    pub dead_letter_retry_ms: u64,
    /// `product` and `version` in connection.start. Clients and their test suites switch
    /// RabbitMQ-specific behaviour on `product == "RabbitMQ"` (amqp091-go does), and warren
    /// behaves as RabbitMQ 3.10 does, so it says so by default; `platform` and `information`
    /// name warren.
    pub product: String,
    pub product_version: String,
    // TLS (amqps), in RabbitMQ's names (`listeners.ssl`, `ssl_options`, `ssl_cert_login_from`).
    /// TLS listeners (RabbitMQ's `listeners.ssl`). Empty by default; when empty and
    /// `ssl_options.certfile` is set, one listener on the conventional amqps port 5671 (RabbitMQ's
    /// `listeners.ssl.default = 5671`), on the first plain listener's IP (127.0.0.1 without one).
    pub listen_tls: Vec<SocketAddr>,
    /// Certificates and client verification for the TLS listeners.
    pub ssl_options: SslOptions,
    /// Where SASL EXTERNAL takes the user name from in the client certificate.
    pub ssl_cert_login_from: CertLoginFrom,
    /// The SASL mechanisms offered, in this order (RabbitMQ's `auth_mechanisms`; RabbitMQ itself
    /// offers them in an order of its own, not the same on every node). EXTERNAL is opt-in, as on
    /// RabbitMQ, and offered on TLS connections only: clients such as py-amqp pick it whenever it
    /// is offered.
    pub auth_mechanisms: Vec<AuthMechanism>,
    /// The management HTTP API (RabbitMQ's `management.tcp.*`).
    pub management: ManagementConfig,
    /// Prometheus metrics (RabbitMQ's `prometheus.tcp.*`): `[prometheus]`, default
    /// 127.0.0.1:15692.
    pub prometheus: ManagementConfig,
    /// `[cluster]`: this node's id and every member's peer address (CLUSTER.md). Off unless
    /// `node` is set.
    pub cluster: crate::cluster::ClusterConfig,
}

/// An HTTP listener of the operator surface: `[management]` or `[prometheus]` in the config
/// file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManagementConfig {
    pub enabled: bool,
    /// Address and port (RabbitMQ's `management.tcp.ip` and `management.tcp.port`); port 0
    /// picks a free one (the broker prints it).
    pub listen: SocketAddr,
}

impl Default for ManagementConfig {
    fn default() -> Self {
        ManagementConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 15672)),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 5672))],
            data_dir: PathBuf::from("warren-data"),
            log_level: "info".into(),
            default_user: "guest".into(),
            default_pass: "guest".into(),
            default_user_tags: vec!["administrator".into()],
            default_vhost: "/".into(),
            default_permissions: vec![".*".into(), ".*".into(), ".*".into()],
            loopback_users: vec!["guest".into()],
            load_definitions: None,
            channel_max: 2047,
            frame_max: 131072,
            heartbeat: 60,
            max_message_size: 128 * 1024 * 1024,
            handshake_timeout: 10,
            write_timeout: 30,
            max_connections: 0,
            memory_high_watermark: 0.4,
            memory_limit_bytes: 0,
            disk_free_limit_bytes: 50_000_000,
            store_map_size_bytes: crate::store::DEFAULT_MAP_SIZE as u64,
            queue_page_threshold: 20_000,
            consumer_timeout_ms: 30 * 60 * 1000,
            dead_letter_retry_ms: 180_000,
            product: "RabbitMQ".into(),
            product_version: "3.10.0".into(),
            listen_tls: Vec::new(),
            ssl_options: SslOptions::default(),
            ssl_cert_login_from: CertLoginFrom::DistinguishedName,
            auth_mechanisms: vec![AuthMechanism::Plain, AuthMechanism::Amqplain],
            management: ManagementConfig::default(),
            prometheus: ManagementConfig {
                enabled: true,
                listen: SocketAddr::from(([127, 0, 0, 1], 15692)),
            },
            cluster: crate::cluster::ClusterConfig::default(),
        }
    }
}

impl Config {
    /// The memory alarm threshold in bytes.
    pub fn memory_limit(&self) -> u64 {
        if self.memory_limit_bytes > 0 {
            return self.memory_limit_bytes;
        }
        let total = crate::alarms::total_memory().unwrap_or(4 << 30);
        (total as f64 * self.memory_high_watermark) as u64
    }

    /// Reads a TOML file; absent keys keep their defaults.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("invalid config {}: {e}", path.display()))
    }
}

/// RabbitMQ's `ssl_options` for the TLS listeners (PEM files).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SslOptions {
    /// CA certificates that client certificates are verified against.
    pub cacertfile: Option<PathBuf>,
    /// The server's certificate chain, leaf first.
    pub certfile: Option<PathBuf>,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1).
    pub keyfile: Option<PathBuf>,
    pub verify: SslVerify,
    /// With `verify_peer`: refuse clients that present no certificate.
    pub fail_if_no_peer_cert: bool,
}

/// RabbitMQ's `ssl_options.verify`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SslVerify {
    /// No client certificate is asked for (Erlang's and so RabbitMQ's default).
    #[default]
    VerifyNone,
    /// Client certificates are asked for and verified against `cacertfile`.
    VerifyPeer,
}

/// RabbitMQ's `ssl_cert_login_from`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertLoginFrom {
    /// The whole subject, formatted as RabbitMQ does (`CN=name,O=org`).
    #[default]
    DistinguishedName,
    /// The subject's common name(s).
    CommonName,
}

/// A SASL mechanism warren implements, named as in connection.start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum AuthMechanism {
    #[serde(rename = "PLAIN")]
    Plain,
    #[serde(rename = "AMQPLAIN")]
    Amqplain,
    /// The TLS client certificate's name (`ssl_cert_login_from`), no password.
    #[serde(rename = "EXTERNAL")]
    External,
}

impl AuthMechanism {
    pub fn name(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::Amqplain => "AMQPLAIN",
            AuthMechanism::External => "EXTERNAL",
        }
    }
}
