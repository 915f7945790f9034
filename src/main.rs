//! The `warren` binary: flags → config → a running broker until SIGINT/SIGTERM; or, as
//! `warren ctl …`, rabbitmqctl's verbs against a running one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use warren::Config;

#[derive(Parser, Debug)]
#[command(
    name = "warren",
    version,
    about = "A fast, light AMQP 0-9-1 broker that behaves like RabbitMQ"
)]
struct Args {
    /// AMQP listener address (repeatable). Default 127.0.0.1:5672.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// TLS (amqps) listener address (repeatable). Needs [ssl_options] certfile and keyfile in
    /// the config file; without this flag or listen_tls, a certfile alone listens for TLS on
    /// port 5671 of the first --listen IP (default 127.0.0.1:5671).
    #[arg(long, value_name = "ADDR:PORT")]
    listen_tls: Vec<SocketAddr>,
    /// Where durable state lives. Default ./warren-data.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Management HTTP API address (default 127.0.0.1:15672; port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT")]
    management_listen: Option<SocketAddr>,
    /// Start without the management HTTP API.
    #[arg(long)]
    no_management: bool,
    /// Prometheus metrics address (default 127.0.0.1:15692; port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT")]
    prometheus_listen: Option<SocketAddr>,
    /// Start without the Prometheus metrics listener.
    #[arg(long)]
    no_prometheus: bool,
    /// TOML configuration file; flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// This node's id in a cluster (a key of --cluster-peers); see CLUSTER.md.
    #[arg(long, value_name = "ID")]
    cluster_node: Option<u64>,
    /// Every cluster member's peer address, this node included: ID=HOST:PORT,…
    #[arg(long, value_name = "ID=HOST:PORT,...")]
    cluster_peers: Option<String>,
    /// Log filter, e.g. info, debug, warren=trace.
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// rabbitmqctl's everyday verbs against a running broker (through its management API),
    /// e.g. `warren ctl list_queues name messages`.
    Ctl(warren::ctl::CtlArgs),
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if let Some(Command::Ctl(ctl)) = args.command.take() {
        return warren::ctl::run(ctl);
    }
    let mut config = match &args.config {
        Some(path) => match Config::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("warren: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if !args.listen.is_empty() {
        config.listen = args.listen;
    }
    if !args.listen_tls.is_empty() {
        config.listen_tls = args.listen_tls;
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(addr) = args.management_listen {
        config.management.listen = addr;
        config.management.enabled = true;
    }
    if args.no_management {
        config.management.enabled = false;
    }
    if let Some(addr) = args.prometheus_listen {
        config.prometheus.listen = addr;
        config.prometheus.enabled = true;
    }
    if args.no_prometheus {
        config.prometheus.enabled = false;
    }
    if let Some(node) = args.cluster_node {
        config.cluster.node = node;
    }
    if let Some(peers) = &args.cluster_peers {
        match warren::cluster::config::parse_peers(peers) {
            Ok(peers) => config.cluster.peers = peers,
            Err(e) => {
                eprintln!("warren: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if let Err(e) = config.cluster.validate() {
        eprintln!("warren: {e}");
        return ExitCode::from(2);
    }
    if let Some(level) = args.log_level {
        config.log_level = level;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(log_filter(&config.log_level))
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("warren: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        // Handlers first: a SIGTERM that arrives right after the "listening" line (a test
        // harness restarting the broker) must stop the broker cleanly, not kill it.
        let signals = ShutdownSignals::install();
        let broker = match warren::start(config).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("warren: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Before the AMQP line, which test harnesses wait for: they have both once it is out.
        if let Some(addr) = broker.management_addr() {
            println!("warren: management listening on http://{addr}");
        }
        if let Some(addr) = broker.prometheus_addr() {
            println!("warren: prometheus listening on http://{addr}");
        }
        // Other tools read this line to learn the port when started with :0.
        for addr in broker.local_addrs() {
            println!("warren: listening on {addr}");
        }
        for addr in broker.tls_addrs() {
            println!("warren: listening for TLS on {addr}");
        }
        signals.wait().await;
        tracing::info!("shutting down");
        broker.shutdown().await;
        ExitCode::SUCCESS
    })
}

/// The log filter: openraft's own info lines (every vote and election step) are debug detail
/// for a broker's log, so it logs warnings only unless the filter names it.
fn log_filter(level: &str) -> String {
    if level.contains("openraft") {
        level.to_string()
    } else {
        format!("{level},openraft=warn")
    }
}

/// SIGTERM and SIGINT, installed before the broker starts listening.
struct ShutdownSignals {
    term_and_int: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl ShutdownSignals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let term_and_int = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(term), Ok(int)) => Some((term, int)),
            // Without handlers, Ctrl-C still works through the default disposition.
            _ => None,
        };
        ShutdownSignals { term_and_int }
    }

    async fn wait(mut self) {
        let Some((term, int)) = self.term_and_int.as_mut() else {
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
