//! Three (or more) warren nodes of one cluster on loopback: node N listens on 127.0.0.N for
//! AMQP, management and its peers, each in its own data directory. Nodes can be killed with
//! SIGKILL and started again on their directory; everything stops when the cluster is dropped.
//!
//! Started with proxies ([`Cluster::start_with_proxies`]), node i reaches node j through a
//! proxy of its own at 127.0.i.j (proxy.rs) instead of j's real address, so a test can cut
//! links and isolate nodes ([`Cluster::isolate`], [`Cluster::heal`]).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::proxy::{Fault, Proxies};

pub struct Node {
    child: Option<Child>,
    pub amqp: SocketAddr,
    pub management: String,
}

impl Node {
    pub fn uri(&self) -> String {
        format!("amqp://guest:guest@{}/%2f", self.amqp)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    root: PathBuf,
    peers: String,
    config: PathBuf,
    /// Node id → the `--cluster-peers` it is given instead of `peers` (with proxies).
    peers_of: BTreeMap<u64, String>,
    /// The links' proxies, when started with them (dropped after the nodes are killed).
    proxies: Option<Proxies>,
}

/// A free port on 127.0.0.1 (also free on 127.0.0.2 and .3 in practice: nothing else here
/// binds those).
fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    socket.local_addr().expect("local addr").port()
}

impl Cluster {
    /// `size` nodes sharing the `[cluster]` settings in `cluster_toml` (timings, snapshots).
    pub fn start(size: u64, cluster_toml: &str) -> Cluster {
        Cluster::start_inner(size, cluster_toml, false)
    }

    /// As [`Cluster::start`], every link between two nodes through a proxy the test can cut:
    /// node i's peers map names its own real address and, for each other node j, the proxy of
    /// the link i → j (127.0.i.j, any port), which forwards to j's real address.
    pub fn start_with_proxies(size: u64, cluster_toml: &str) -> Cluster {
        Cluster::start_inner(size, cluster_toml, true)
    }

    fn start_inner(size: u64, cluster_toml: &str, proxied: bool) -> Cluster {
        let root = std::env::temp_dir().join(format!(
            "warren-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&root).expect("create the cluster's directory");
        let port = free_port();
        let peers = (1..=size)
            .map(|id| format!("{id}=127.0.0.{id}:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let config = root.join("warren.toml");
        std::fs::write(&config, format!("[cluster]\n{cluster_toml}\n")).expect("write config");
        let (peers_of, proxies) = if proxied {
            let (peers_of, proxies) = proxied_peers(size, port);
            (peers_of, Some(proxies))
        } else {
            (BTreeMap::new(), None)
        };
        let mut cluster = Cluster {
            nodes: Vec::new(),
            root,
            peers,
            config,
            peers_of,
            proxies,
        };
        let children: Vec<_> = (1..=size).map(|id| cluster.spawn(id)).collect();
        for (id, child) in (1..=size).zip(children) {
            let node = cluster.wait_listening(id, child);
            cluster.nodes.push(node);
        }
        cluster
    }

    fn spawn(&self, id: u64) -> Child {
        let ip = format!("127.0.0.{id}");
        let log = std::fs::File::create(self.root.join(format!("node{id}.log"))).expect("log file");
        Command::new(env!("CARGO_BIN_EXE_warren"))
            .args([
                "--listen",
                &format!("{ip}:0"),
                "--management-listen",
                &format!("{ip}:0"),
            ])
            .arg("--no-prometheus")
            .arg("--data-dir")
            .arg(self.root.join(format!("node{id}")))
            .arg("--config")
            .arg(&self.config)
            .args([
                "--cluster-node",
                &id.to_string(),
                "--cluster-peers",
                self.peers_of.get(&id).unwrap_or(&self.peers),
            ])
            .args(["--log-level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn warren")
    }

    fn wait_listening(&self, id: u64, mut child: Child) -> Node {
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut management = String::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("node {id} did not start: {}", self.log(id)));
            if let Some(url) = line.strip_prefix("warren: management listening on ") {
                management = url.trim().to_string();
            }
            if let Some(addr) = line.strip_prefix("warren: listening on ") {
                return Node {
                    child: Some(child),
                    amqp: addr.trim().parse().expect("listen address"),
                    management,
                };
            }
        }
    }

    /// What node `id` has logged.
    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.root.join(format!("node{id}.log"))).unwrap_or_default()
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    pub fn kill9(&mut self, id: u64) {
        if let Some(mut child) = self.nodes[(id - 1) as usize].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `id` again on its data directory.
    pub fn restart(&mut self, id: u64) {
        assert!(!self.node(id).is_running(), "node {id} is running");
        let child = self.spawn(id);
        let node = self.wait_listening(id, child);
        self.nodes[(id - 1) as usize] = node;
    }

    /// `GET /api/cluster-status` of node `id`.
    pub fn status(&self, id: u64) -> Option<Value> {
        let url = format!("{}/api/cluster-status", self.node(id).management);
        http_get(&url)
    }

    /// The metadata group's leader as node `id` sees it.
    pub fn leader_seen_by(&self, id: u64) -> Option<u64> {
        self.status(id)?["groups"][0]["leader"].as_u64()
    }

    /// Waits until every node in `among` names the same leader, itself one of `among`.
    pub fn wait_for_leader(&self, among: &[u64], within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let seen: Vec<Option<u64>> = among.iter().map(|id| self.leader_seen_by(*id)).collect();
            if let Some(Some(leader)) = seen.first()
                && seen.iter().all(|s| *s == Some(*leader))
                && among.contains(leader)
            {
                return *leader;
            }
            assert!(
                Instant::now() < deadline,
                "no common leader among {among:?} within {within:?}: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A management API GET on node `id` (None: 404 or unreachable).
    pub fn api(&self, id: u64, path: &str) -> Option<Value> {
        http_get(&format!("{}{path}", self.node(id).management))
    }

    pub fn api_put(&self, id: u64, path: &str, body: &Value) -> u16 {
        let url = format!("{}{path}", self.node(id).management);
        let agent = agent();
        match agent
            .put(&url)
            .header("Authorization", basic_auth())
            .content_type("application/json")
            .send(body.to_string())
        {
            Ok(r) => r.status().as_u16(),
            Err(ureq::Error::StatusCode(code)) => code,
            Err(e) => panic!("PUT {url}: {e}"),
        }
    }
}

/// Partitions, for a cluster started with proxies.
impl Cluster {
    fn proxies(&self) -> &Proxies {
        self.proxies
            .as_ref()
            .expect("the cluster was not started with proxies (Cluster::start_with_proxies)")
    }

    fn ids(&self) -> std::ops::RangeInclusive<u64> {
        1..=self.nodes.len() as u64
    }

    /// Cuts the link `from` → `to` in one direction (the connections `from` opens to `to`;
    /// `to` still reaches `from` unless that link is cut too).
    pub fn cut(&self, from: u64, to: u64, fault: Fault) {
        self.proxies().cut(from, to, fault);
    }

    /// Cuts every link to and from node `id`, silently (packets dropped, as a firewall does):
    /// its peers' requests time out, and its own.
    pub fn isolate(&self, id: u64) {
        self.isolate_with(id, Fault::Drop);
    }

    /// Cuts every link to and from node `id` with `fault`.
    pub fn isolate_with(&self, id: u64, fault: Fault) {
        for other in self.ids().filter(|other| *other != id) {
            self.cut(id, other, fault);
            self.cut(other, id, fault);
        }
    }

    /// Heals every link (connections a cut held are closed; the nodes reconnect).
    pub fn heal(&self) {
        self.proxies().heal_all();
    }

    /// The links cut now, `(from, to)`.
    pub fn cut_links(&self) -> Vec<(u64, u64)> {
        let cut = self.proxies().cut_links();
        cut.into_iter().map(|(link, _)| link).collect()
    }
}

/// Every node's peers map and the proxies they name: node i's own entry is its real address,
/// 127.0.0.i:`port`; node j's is the proxy of the link i → j.
fn proxied_peers(size: u64, port: u16) -> (BTreeMap<u64, String>, Proxies) {
    let proxies = Proxies::start();
    let real = |id: u64| -> SocketAddr { format!("127.0.0.{id}:{port}").parse().unwrap() };
    let mut peers_of = BTreeMap::new();
    for from in 1..=size {
        let map = (1..=size)
            .map(|to| {
                let address = if to == from {
                    real(to)
                } else {
                    let listen = format!("127.0.{from}.{to}:0").parse().unwrap();
                    proxies.add(from, to, listen, real(to))
                };
                format!("{to}={address}")
            })
            .collect::<Vec<_>>()
            .join(",");
        peers_of.insert(from, map);
    }
    (peers_of, proxies)
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if !std::thread::panicking() && std::env::var_os("WARREN_KEEP_CLUSTER").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        } else {
            eprintln!("cluster directory kept: {}", self.root.display());
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(15)))
        .http_status_as_error(true)
        .build()
        .into()
}

fn basic_auth() -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("guest:guest")
    )
}

fn http_get(url: &str) -> Option<Value> {
    let mut response = agent()
        .get(url)
        .header("Authorization", basic_auth())
        .call()
        .ok()?;
    let text = response.body_mut().read_to_string().ok()?;
    serde_json::from_str(&text).ok()
}
