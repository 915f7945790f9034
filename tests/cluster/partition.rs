//! Network partitions: one node cut off from the other two by the harness's proxies (every link
//! to and from it), once when it leads the metadata group, once when it follows. The node cut
//! off stops confirming (a declare there is refused with 541); the other two elect a leader
//! within 5 s if they need one and go on declaring; once healed, every node has the same
//! definitions and the same Raft position (leader, term, last log index, last applied), and a
//! declare refused on the cut-off side is on all three nodes or on none.
//!
//! The scenario is the metadata group's; [`wait_converged`] and the helpers under it compare
//! nodes in ways a quorum queue variant can reuse.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;

use crate::harness::Cluster;
use crate::proxy::Fault;

/// Short elections and commits for tests on a busy machine (as metadata.rs).
const FAST: &str = "heartbeat_ms = 100\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\ncommit_timeout_ms = 3000";

/// The metadata group's name in `/api/cluster-status`.
const METADATA: &str = "metadata";

/// How long a refused declare may take: the commit timeout (3 s) and room for a busy machine.
const REFUSED_WITHIN: Duration = Duration::from_secs(10);
/// How long the nodes may take to agree again once healed.
const CONVERGED_WITHIN: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Leader,
    Follower,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_cut_off_silently_refuses_the_others_go_on_and_nothing_diverges() {
    // The harder case: a leader alone keeps its role and appends what it is asked to; it must
    // still refuse in time, and what it appended must not survive the others' log.
    partition(Role::Leader, Fault::Drop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_cut_off_refuses_the_others_go_on_and_nothing_diverges() {
    // Its links refused rather than silent: it learns at once that it has no leader.
    partition(Role::Follower, Fault::Refuse).await;
}

async fn partition(role: Role, fault: Fault) {
    let started = Instant::now();
    let cluster = Cluster::start_with_proxies(3, FAST);
    let leader = cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10));
    let cut_off = match role {
        Role::Leader => leader,
        Role::Follower => leader % 3 + 1,
    };
    let majority: Vec<u64> = (1..=3).filter(|id| *id != cut_off).collect();
    // Through the proxies, the cluster works as without them.
    declare_queue(&cluster, cut_off, "before")
        .await
        .expect("a declare before the partition");
    for id in 1..=3 {
        assert!(
            queue_names(&cluster, id).contains("before"),
            "queue missing on node {id}"
        );
    }

    match fault {
        Fault::Drop => cluster.isolate(cut_off),
        fault => cluster.isolate_with(cut_off, fault),
    }
    let cut_at = Instant::now();
    assert_eq!(cluster.cut_links().len(), 4, "{:?}", cluster.cut_links());
    eprintln!("node {cut_off} ({role:?}) cut off ({fault:?}); leader was {leader}");
    // The majority has a leader among itself within 5 s (a new one if the old one is cut off).
    let majority_leader = cluster.wait_for_leader(&majority, Duration::from_secs(5));
    let took = cut_at.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "a majority leader after {took:?}"
    );
    eprintln!("majority leader {majority_leader} after {took:?}");

    // The minority side stops confirming: a declare there is refused, in bounded time.
    let asked = Instant::now();
    let refused = declare_queue(&cluster, cut_off, "refused")
        .await
        .expect_err("a declare on the node cut off must not be confirmed");
    assert_eq!(amqp_code(&refused), Some(541), "{refused}");
    assert!(
        asked.elapsed() < REFUSED_WITHIN,
        "refused after {:?}",
        asked.elapsed()
    );
    eprintln!(
        "refused on node {cut_off} after {:?}: {refused}",
        asked.elapsed()
    );

    // The majority goes on: a declare on each of its nodes, on both before the -ok.
    for id in &majority {
        let asked = Instant::now();
        declare_queue(&cluster, *id, &format!("majority-{id}"))
            .await
            .unwrap_or_else(|e| panic!("a declare on node {id} of the majority: {e}"));
        eprintln!("declared on node {id} in {:?}", asked.elapsed());
    }
    for id in &majority {
        let names = queue_names(&cluster, *id);
        for declared in &majority {
            assert!(
                names.contains(&format!("majority-{declared}")),
                "majority-{declared} missing on node {id}: {names:?}"
            );
        }
    }
    // Nothing reaches the node cut off.
    let names = queue_names(&cluster, cut_off);
    assert!(
        !names.iter().any(|n| n.starts_with("majority-")),
        "the node cut off has the majority's queues: {names:?}"
    );

    // What the node cut off believes meanwhile (a leader alone still calls itself one).
    eprintln!(
        "node {cut_off} before healing: {:?}; the majority: {:?}",
        raft_view(&cluster, cut_off, METADATA),
        raft_view(&cluster, majority_leader, METADATA)
    );
    cluster.heal();
    assert_eq!(cluster.cut_links(), vec![]);
    let healed_at = Instant::now();
    let view = wait_converged(&cluster, &[1, 2, 3], METADATA, CONVERGED_WITHIN);
    eprintln!(
        "converged {:?} after healing: {view:?}",
        healed_at.elapsed()
    );
    // The refused declare may have been committed after all (a leader keeps what it
    // appended when it stays leader); if so, on every node.
    let refused_on: Vec<bool> = (1..=3)
        .map(|id| queue_names(&cluster, id).contains("refused"))
        .collect();
    assert!(
        refused_on.iter().all(|on| *on == refused_on[0]),
        "the nodes disagree on the refused declare: {refused_on:?}"
    );
    eprintln!("the refused declare is on every node: {}", refused_on[0]);

    // Back in the cluster: the node cut off confirms again, and sees everything.
    declare_queue(&cluster, cut_off, "after")
        .await
        .expect("a declare on the healed node");
    for id in 1..=3 {
        let names = queue_names(&cluster, id);
        for name in ["before", "after", "majority-1", "majority-2", "majority-3"] {
            let expected = name != format!("majority-{cut_off}");
            assert_eq!(
                names.contains(name),
                expected,
                "{name} on node {id}: {names:?}"
            );
        }
    }
    eprintln!("{role:?} partition: {:?} in all", started.elapsed());
}

/// Declares a durable queue on node `id` through a connection of its own.
async fn declare_queue(cluster: &Cluster, id: u64, name: &str) -> Result<(), lapin::Error> {
    let connection =
        Connection::connect(&cluster.node(id).uri(), ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .queue_declare(name.into(), durable, FieldTable::default())
        .await
        .map(|_| ())
}

/// The AMQP reply code of a channel or connection error.
fn amqp_code(error: &lapin::Error) -> Option<u16> {
    match error.kind() {
        lapin::ErrorKind::ProtocolError(e) => Some(e.get_id()),
        _ => None,
    }
}

/// The queues node `id` has in vhost `/`, as its management API lists them (its own state, no
/// read barrier).
pub fn queue_names(cluster: &Cluster, id: u64) -> BTreeSet<String> {
    let queues = cluster
        .api(id, "/api/queues/%2F")
        .unwrap_or_else(|| panic!("/api/queues of node {id}"));
    queues
        .as_array()
        .expect("a list of queues")
        .iter()
        .filter_map(|q| q["name"].as_str().map(str::to_string))
        .collect()
}

/// Node `id`'s definitions (`/api/definitions`), every list sorted so that two nodes with the
/// same definitions compare equal whatever order they keep them in. The default user's
/// password hash is left out: each node creates that user at its first start, salted its own
/// way, not through the metadata group (users created through it have the same hash on every
/// node).
pub fn definitions(cluster: &Cluster, id: u64) -> Option<Value> {
    let mut definitions = cluster.api(id, "/api/definitions")?;
    if let Some(Value::Array(users)) = definitions.get_mut("users") {
        for user in users.iter_mut().filter(|u| u["name"] == "guest") {
            if let Value::Object(user) = user {
                user.remove("password_hash");
            }
        }
    }
    if let Value::Object(sections) = &mut definitions {
        for section in sections.values_mut() {
            if let Value::Array(items) = section {
                items.sort_by_key(Value::to_string);
            }
        }
    }
    Some(definitions)
}

/// Where a node's metadata group stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftView {
    pub leader: Option<u64>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<u64>,
}

/// Where node `id` has the Raft group named `group` ("metadata": the metadata group), from
/// `/api/cluster-status`.
pub fn raft_view(cluster: &Cluster, id: u64, group: &str) -> Option<RaftView> {
    let status = cluster.status(id)?;
    let groups = status["groups"].as_array()?;
    let group = groups.iter().find(|g| g["group"] == group)?;
    Some(RaftView {
        leader: group["leader"].as_u64(),
        term: group["term"].as_u64()?,
        last_log_index: group["last_log_index"].as_u64(),
        last_applied: group["last_applied"].as_u64(),
    })
}

/// Waits until every node of `among` reports the same leader (one of them), term, last log
/// index and last applied index of `group`, everything in its log applied, and the same
/// definitions. Returns where they agreed; panics with what each node reported if they do not
/// in time.
pub fn wait_converged(cluster: &Cluster, among: &[u64], group: &str, within: Duration) -> RaftView {
    let deadline = Instant::now() + within;
    loop {
        let views: Vec<Option<RaftView>> = among
            .iter()
            .map(|id| raft_view(cluster, *id, group))
            .collect();
        let agreed = match views.first() {
            Some(Some(first)) => {
                views.iter().all(|v| v.as_ref() == Some(first))
                    && first.leader.is_some_and(|l| among.contains(&l))
                    && first.last_applied == first.last_log_index
            }
            _ => false,
        };
        if agreed {
            let all: Vec<Option<Value>> =
                among.iter().map(|id| definitions(cluster, *id)).collect();
            if all[0].is_some() && all.iter().all(|d| *d == all[0]) {
                return views[0].clone().expect("agreed");
            }
            if Instant::now() >= deadline {
                panic!(
                    "nodes {among:?} agree on Raft ({views:?}) but not on definitions: {}",
                    describe_differences(among, &all)
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "nodes {among:?} did not converge within {within:?}: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Which sections of each node's definitions differ from the first node's.
fn describe_differences(among: &[u64], all: &[Option<Value>]) -> String {
    let mut out = String::new();
    let first = all[0].as_ref();
    for (id, definitions) in among.iter().zip(all).skip(1) {
        let (Some(first), Some(other)) = (first, definitions.as_ref()) else {
            out.push_str(&format!("node {id}: no definitions; "));
            continue;
        };
        for (section, value) in first.as_object().into_iter().flatten() {
            if other.get(section) != Some(value) {
                out.push_str(&format!(
                    "{section}: node {} {value} / node {id} {}; ",
                    among[0],
                    other.get(section).cloned().unwrap_or_default()
                ));
            }
        }
    }
    out
}
