//! What a Raft group costs on warren's cluster machinery, to decide between one openraft group
//! per quorum queue and a multi-Raft design (CLUSTER.md, "Measured before choosing"). Three
//! nodes in this one process, on 127.0.0.1, .2 and .3, each with its own log database (group
//! commit across its groups) and peer listener, run N groups of a counter (every node a voter).
//!
//!   cargo run --release --example raft_groups -- 1 100 1000
//!
//! For each N it prints: the time to form N groups, the process's CPU while the groups sit
//! idle for 10 s (all three nodes: heartbeats), the RSS they added, then the committed write
//! rate and p99 commit latency with 1 and with 10 groups written at once (64 writes in flight
//! per group, for 5 s). `RAFT_GROUPS_HEARTBEAT_MS` sets the groups' heartbeat (default 250).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openraft::{BasicNode, Raft};
use warren::cluster::batcher::Batcher;
use warren::cluster::counter::{Counter, Sum};
use warren::cluster::group_network::GroupNetwork;
use warren::cluster::groups::Groups;
use warren::cluster::log_db::LogDb;
use warren::cluster::log_store::LogStore;
use warren::cluster::peer_link::{self, Peers};

struct Node {
    id: u64,
    db: Arc<LogDb>,
    peers: Arc<Peers>,
    groups: Arc<Groups>,
    rafts: Vec<Raft<Counter>>,
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn start_nodes(root: &std::path::Path, port: u16) -> Vec<Node> {
    let addresses: BTreeMap<u64, String> = (1..=3)
        .map(|id| (id, format!("127.0.0.{id}:{port}")))
        .collect();
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let db = LogDb::open(&root.join(format!("node{id}"))).expect("log db");
        let peers = Arc::new(Peers::new(id, "bench".into(), addresses.clone()));
        let groups = Arc::new(Groups::default());
        let listener = tokio::net::TcpListener::bind(&addresses[&id])
            .await
            .expect("bind");
        let serving = groups.clone();
        tokio::spawn(peer_link::serve(listener, "bench".into(), move |request| {
            let groups = serving.clone();
            async move { groups.serve(request).await }
        }));
        nodes.push(Node {
            id,
            db,
            peers,
            groups,
            rafts: Vec::new(),
        });
    }
    nodes
}

/// Adds groups `from..to` on every node and waits until each has a leader.
async fn add_groups(nodes: &mut [Node], from: u64, to: u64) {
    // RAFT_GROUPS_HEARTBEAT_MS: the heartbeat (default 250 ms, the metadata group's); the
    // election timeout follows at 4-8 heartbeats.
    let heartbeat: u64 = std::env::var("RAFT_GROUPS_HEARTBEAT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);
    let config = Arc::new(
        openraft::Config {
            heartbeat_interval: heartbeat,
            election_timeout_min: heartbeat * 4,
            election_timeout_max: heartbeat * 8,
            ..Default::default()
        }
        .validate()
        .expect("config"),
    );
    let members: BTreeMap<u64, BasicNode> = (1..=3)
        .map(|id| (id, BasicNode::new(format!("node{id}"))))
        .collect();
    for group in from..to {
        for node in nodes.iter_mut() {
            let raft = Raft::new(
                node.id,
                config.clone(),
                GroupNetwork::new(node.peers.clone(), group),
                LogStore::<Counter>::new(node.db.clone(), group),
                Sum::default(),
            )
            .await
            .expect("raft");
            node.groups.insert(group, Arc::new(raft.clone()));
            node.rafts.push(raft);
        }
        let _ = nodes[0]
            .rafts
            .last()
            .expect("raft")
            .initialize(members.clone())
            .await;
    }
    for node in nodes.iter().filter(|n| members.contains_key(&n.id)) {
        for raft in &node.rafts[from as usize - 1..] {
            raft.wait(Some(Duration::from_secs(60)))
                .metrics(|m| m.current_leader.is_some(), "leader")
                .await
                .expect("a leader");
        }
    }
}

/// Writes to the first `groups` groups at once for `seconds`; (writes/s, p99 ms). Each write
/// is one entry (`RAFT_GROUPS_BATCH` unset), or writes go through a batcher per group that
/// keeps one proposal in flight and puts every write that waited meanwhile into the next
/// entry (`RAFT_GROUPS_BATCH=1`): openraft 0.9 waits for each append's flush before the next,
/// so entries per second, not writes, are what a group's log can take.
async fn write_load(nodes: &[Node], groups: usize, seconds: u64) -> (f64, f64) {
    let batched = std::env::var_os("RAFT_GROUPS_BATCH").is_some();
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for g in 0..groups {
        // The group's leader, on whichever node it is.
        let leader_raft = nodes
            .iter()
            .map(|n| n.rafts[g].clone())
            .find(|r| r.metrics().borrow().current_leader == Some(r.metrics().borrow().id))
            .expect("a leader");
        let batcher = batched.then(|| {
            Batcher::<(), u64>::start(
                leader_raft.clone(),
                |items: Vec<()>| items.len() as u64,
                |sum, n| vec![sum; n],
            )
        });
        for _ in 0..64 {
            let raft = leader_raft.clone();
            let batcher = batcher.clone();
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    let committed = match &batcher {
                        None => raft.client_write(1).await.is_ok(),
                        Some(batcher) => batcher.propose(()).await.is_ok(),
                    };
                    if committed {
                        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
                latencies
            }));
        }
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap_or_default());
    }
    all.sort_by(|a, b| a.total_cmp(b));
    let p99 = all.get(all.len() * 99 / 100).copied().unwrap_or(f64::NAN);
    (done.load(Ordering::Relaxed) as f64 / seconds as f64, p99)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let counts: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![1, 100, 1000]
    } else {
        counts
    };
    let root = std::env::temp_dir().join(format!("warren-raft-groups-{}", std::process::id()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut nodes = start_nodes(&root, port).await;
    let base_rss = rss_kb();
    let mut have = 0;
    println!(
        "groups\tform_s\tidle_cpu_pct\trss_mb\trss_kb_per_group\twrites_1g\tp99_1g_ms\twrites_10g\tp99_10g_ms"
    );
    for n in counts {
        let started = Instant::now();
        add_groups(&mut nodes, have + 1, n + 1).await;
        have = n;
        let form = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        tokio::time::sleep(Duration::from_secs(10)).await;
        let idle = (cpu_seconds() - cpu0) / t0.elapsed().as_secs_f64() * 100.0;
        let rss = rss_kb();
        let (w1, p1) = write_load(&nodes, 1, 5).await;
        let (w10, p10) = if n >= 10 {
            write_load(&nodes, 10, 5).await
        } else {
            (f64::NAN, f64::NAN)
        };
        println!(
            "{n}\t{form:.1}\t{idle:.1}\t{:.0}\t{:.0}\t{w1:.0}\t{p1:.2}\t{w10:.0}\t{p10:.2}",
            rss as f64 / 1024.0,
            (rss.saturating_sub(base_rss)) as f64 / n as f64
        );
    }
    let _ = std::fs::remove_dir_all(&root);
    std::process::exit(0);
}
