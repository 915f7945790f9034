//! The metadata group: definitions declared on any node are on every node before the -ok;
//! the leader's loss elects another within 5 s; a node that was down catches up (from the log,
//! or from a snapshot once the log was purged); a minority commits nothing.

use std::time::{Duration, Instant};

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::json;

use crate::harness::Cluster;

/// Short elections and commits for tests on a busy machine.
const FAST: &str = "heartbeat_ms = 100\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\ncommit_timeout_ms = 3000";

async fn channel(cluster: &Cluster, id: u64) -> (Connection, Channel) {
    let connection = Connection::connect(&cluster.node(id).uri(), ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("connect to node {id}: {e}"));
    let channel = connection.create_channel().await.expect("channel");
    (connection, channel)
}

async fn passive_exchange(cluster: &Cluster, id: u64, name: &str) -> bool {
    let (_c, ch) = channel(cluster, id).await;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.exchange_declare(
        name.into(),
        ExchangeKind::Topic,
        passive,
        FieldTable::default(),
    )
    .await
    .is_ok()
}

async fn passive_queue(cluster: &Cluster, id: u64, name: &str) -> bool {
    let (_c, ch) = channel(cluster, id).await;
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.queue_declare(name.into(), passive, FieldTable::default())
        .await
        .is_ok()
}

fn durable() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declare_on_any_node_is_on_every_node_before_its_ok() {
    let cluster = Cluster::start(3, FAST);
    let leader = cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10));
    // Declare on a follower: its change goes through the leader.
    let follower = if leader == 2 { 3 } else { 2 };
    let (_c, ch) = channel(&cluster, follower).await;
    ch.exchange_declare(
        "orders".into(),
        ExchangeKind::Topic,
        durable(),
        FieldTable::default(),
    )
    .await
    .expect("exchange.declare on a follower");
    let queue = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare("orders.eu".into(), queue, FieldTable::default())
        .await
        .expect("queue.declare on a follower");
    ch.queue_bind(
        "orders.eu".into(),
        "orders".into(),
        "eu.#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("queue.bind on a follower");
    // No waiting: the -ok meant every node in contact had it.
    for id in 1..=3 {
        assert!(
            passive_exchange(&cluster, id, "orders").await,
            "exchange missing on node {id}"
        );
        assert!(
            passive_queue(&cluster, id, "orders.eu").await,
            "queue missing on node {id}"
        );
        let bindings = cluster
            .api(id, "/api/queues/%2F/orders.eu/bindings")
            .expect("bindings");
        let keys: Vec<_> = bindings
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["routing_key"].clone())
            .collect();
        assert!(
            keys.contains(&json!("eu.#")),
            "binding missing on node {id}: {keys:?}"
        );
    }
    // A redeclare that differs is refused the same way on every node (406).
    let (_c3, ch3) = channel(&cluster, 3).await;
    let refused = ch3
        .exchange_declare(
            "orders".into(),
            ExchangeKind::Fanout,
            durable(),
            FieldTable::default(),
        )
        .await
        .expect_err("a fanout redeclare of a topic exchange");
    assert!(
        refused.to_string().contains("406") || refused.to_string().contains("PRECONDITION"),
        "{refused}"
    );
    // Tenancy through the management API of the third node: on every node at once.
    assert_eq!(cluster.api_put(3, "/api/vhosts/staging", &json!({})), 201);
    let user = json!({"password": "s3cret", "tags": "monitoring"});
    assert_eq!(cluster.api_put(1, "/api/users/ops", &user), 201);
    for id in 1..=3 {
        assert!(
            cluster.api(id, "/api/vhosts/staging").is_some(),
            "vhost missing on node {id}"
        );
        assert!(
            cluster.api(id, "/api/users/ops").is_some(),
            "user missing on node {id}"
        );
    }
    // Deleting on one node deletes everywhere (a new channel: the 406 closed that one).
    let ch3 = _c3.create_channel().await.expect("channel");
    ch3.queue_delete("orders.eu".into(), Default::default())
        .await
        .expect("queue.delete");
    for id in 1..=3 {
        assert!(
            !passive_queue(&cluster, id, "orders.eu").await,
            "queue still on node {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_names_every_member_and_one_leader() {
    let cluster = Cluster::start(3, FAST);
    let leader = cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10));
    let status = cluster.status(leader).expect("status");
    let members = status["members"].as_array().expect("members");
    assert_eq!(members.len(), 3, "{status}");
    let group = &status["groups"][0];
    assert_eq!(group["group"], "metadata");
    assert_eq!(group["role"], "Leader", "{status}");
    let lag = group["lag"].as_object().expect("the leader reports lag");
    assert_eq!(lag.len(), 3, "{status}");
    // warren ctl prints the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .args([
            "ctl",
            "--url",
            &cluster.node(1).management,
            "cluster_status",
        ])
        .output()
        .expect("run warren ctl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Cluster status of node 1"), "{text}");
    assert!(text.contains(&format!("metadata\t{leader}\t")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_another_is_elected_within_5s_and_the_killed_node_catches_up() {
    let mut cluster = Cluster::start(3, FAST);
    let leader = cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10));
    let survivors: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    cluster.kill9(leader);
    let killed_at = Instant::now();
    let new_leader = cluster.wait_for_leader(&survivors, Duration::from_secs(5));
    let took = killed_at.elapsed();
    assert!(took < Duration::from_secs(5), "new leader after {took:?}");
    eprintln!("new leader {new_leader} {took:?} after the kill of {leader}");
    // The survivors go on declaring.
    let (_c, ch) = channel(&cluster, survivors[0]).await;
    for i in 0..20 {
        ch.exchange_declare(
            format!("after-{i}").as_str().into(),
            ExchangeKind::Direct,
            durable(),
            FieldTable::default(),
        )
        .await
        .expect("declare with one node down");
    }
    // The killed node comes back, catches up, and serves what was declared without it.
    cluster.restart(leader);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !passive_exchange(&cluster, leader, "after-19").await {
        assert!(Instant::now() < deadline, "node {leader} did not catch up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..20 {
        assert!(passive_exchange(&cluster, leader, &format!("after-{i}")).await);
    }
    // The leader (whichever it is by now) sees it caught up.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let current = cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(5));
        let status = cluster.status(current).expect("status");
        let lag = status["groups"][0]["lag"][leader.to_string()].as_u64();
        if lag.is_some_and(|l| l <= 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {leader} still behind: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_alone_commits_nothing() {
    // The node left alone is the leader: the harder case (a follower finds no leader at all;
    // a leader goes on appending and must still refuse in time).
    let mut cluster = Cluster::start(3, FAST);
    let alone = cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10));
    let others: Vec<u64> = (1..=3).filter(|id| *id != alone).collect();
    cluster.kill9(others[0]);
    cluster.kill9(others[1]);
    let (_c, ch) = channel(&cluster, alone).await;
    let started = Instant::now();
    let refused = ch
        .exchange_declare(
            "lonely".into(),
            ExchangeKind::Direct,
            durable(),
            FieldTable::default(),
        )
        .await
        .expect_err("a minority must not commit a declare");
    assert!(
        refused.to_string().contains("541") || refused.to_string().contains("INTERNAL"),
        "{refused}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused after {:?}",
        started.elapsed()
    );
    // Once a majority is back, declares go through again. The refused one may still be
    // committed then (a leader keeps what it appended, as in any Raft: the client's timeout
    // says "unknown", not "never"), but both nodes agree on it.
    let back = others[0];
    cluster.restart(back);
    cluster.wait_for_leader(&[alone, back], Duration::from_secs(10));
    let (_c, ch) = channel(&cluster, alone).await;
    ch.exchange_declare(
        "together".into(),
        ExchangeKind::Direct,
        durable(),
        FieldTable::default(),
    )
    .await
    .expect("declare with a majority");
    assert!(passive_exchange(&cluster, back, "together").await);
    assert_eq!(
        passive_exchange(&cluster, alone, "lonely").await,
        passive_exchange(&cluster, back, "lonely").await,
        "the nodes disagree on the refused declare"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_bound_the_log_and_bring_a_node_back_that_missed_the_purged_part() {
    let settings = format!("{FAST}\nsnapshot_every = 50\nlog_kept_behind_snapshot = 10");
    let mut cluster = Cluster::start(3, &settings);
    let leader = cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10));
    let away = if leader == 3 { 2 } else { 3 };
    let here = (1..=3).find(|id| *id != leader && *id != away).unwrap();
    cluster.kill9(away);
    let (_c, ch) = channel(&cluster, here).await;
    for i in 0..200 {
        ch.exchange_declare(
            format!("x{i}").as_str().into(),
            ExchangeKind::Fanout,
            durable(),
            FieldTable::default(),
        )
        .await
        .expect("declare");
    }
    for i in 0..100 {
        ch.exchange_delete(format!("x{i}").as_str().into(), Default::default())
            .await
            .expect("delete");
    }
    let status = cluster.status(leader).expect("status");
    let entries = status["groups"][0]["log_entries"].as_u64().unwrap();
    assert!(
        entries < 150,
        "the log holds {entries} entries after 300 changes: {status}"
    );
    assert!(
        status["groups"][0]["snapshot"].as_u64().is_some(),
        "{status}"
    );
    let last = status["groups"][0]["last_log_index"].as_u64().unwrap();
    cluster.restart(away);
    let deadline = Instant::now() + Duration::from_secs(15);
    let applied = |cluster: &Cluster| {
        cluster
            .status(away)
            .and_then(|s| s["groups"][0]["last_applied"].as_u64())
    };
    while applied(&cluster).is_none_or(|a| a < last) {
        assert!(
            Instant::now() < deadline,
            "node {away} did not catch up: {}",
            cluster.log(away)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cluster
            .log(away)
            .contains("installed the metadata snapshot"),
        "{}",
        cluster.log(away)
    );
    assert!(passive_exchange(&cluster, away, "x199").await);
    assert!(passive_exchange(&cluster, away, "x150").await);
    assert!(
        !passive_exchange(&cluster, away, "x50").await,
        "a deleted exchange came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_if_unused_sees_the_bindings_to_this_nodes_exclusive_queues() {
    // Found by pika's suite against a cluster: a binding to an exclusive queue lives on its
    // node only, so if-unused must be checked there, not by the leader.
    let cluster = Cluster::start(3, FAST);
    let leader = cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10));
    let here = if leader == 1 { 2 } else { 1 };
    let (_c, ch) = channel(&cluster, here).await;
    ch.exchange_declare(
        "fan".into(),
        ExchangeKind::Fanout,
        durable(),
        FieldTable::default(),
    )
    .await
    .expect("declare");
    let exclusive = QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    let q = ch
        .queue_declare("".into(), exclusive, FieldTable::default())
        .await
        .expect("queue");
    ch.queue_bind(
        q.name().clone(),
        "fan".into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");
    let if_unused = lapin::options::ExchangeDeleteOptions {
        if_unused: true,
        ..Default::default()
    };
    let refused = ch
        .exchange_delete("fan".into(), if_unused)
        .await
        .expect_err("the exchange is in use on this node");
    assert!(refused.to_string().contains("in use"), "{refused}");
    for id in 1..=3 {
        assert!(
            passive_exchange(&cluster, id, "fan").await,
            "exchange gone from node {id}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_just_back_answers_lookups_as_the_cluster_would() {
    // Restarted, it serves clients before the leader has sent it what it missed: a lookup
    // that finds nothing first catches up with the leader's read index, then answers.
    let mut cluster = Cluster::start(3, FAST);
    let leader = cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10));
    let away = if leader == 3 { 2 } else { 3 };
    cluster.kill9(away);
    let (_c, ch) = channel(&cluster, leader).await;
    for i in 0..50 {
        let name = format!("while-away-{i}");
        ch.exchange_declare(
            name.as_str().into(),
            ExchangeKind::Direct,
            durable(),
            FieldTable::default(),
        )
        .await
        .expect("declare");
        let queue = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(name.as_str().into(), queue, FieldTable::default())
            .await
            .expect("declare");
    }
    cluster.restart(away);
    // At once, no waiting for catch-up.
    assert!(
        passive_queue(&cluster, away, "while-away-49").await,
        "queue missing on the node just back"
    );
    assert!(
        passive_exchange(&cluster, away, "while-away-49").await,
        "exchange missing on the node just back"
    );
    // A name nobody declared is still 404 (after the catch-up, not before).
    assert!(!passive_queue(&cluster, away, "never-declared").await);
}
