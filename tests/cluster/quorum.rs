//! Quorum queues on three nodes: a publish confirmed on one node is consumed on another; the
//! queue's leader killed under load (publishers and consumers on the other nodes) loses
//! nothing confirmed, delivers again only what it marks redelivered, and has a new leader
//! within 5 s; the killed node catches up when it comes back.

use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};

use crate::checker::{self, Checker, Load};
use crate::harness::Cluster;

/// Short elections and commits for tests on a busy machine.
pub(crate) const FAST: &str = "heartbeat_ms = 100\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\ncommit_timeout_ms = 3000";

pub(crate) fn quorum() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    arguments
}

/// The leader of `queue`'s group as node `id` sees it.
pub(crate) fn queue_leader(cluster: &Cluster, id: u64, queue: &str) -> Option<u64> {
    let status = cluster.status(id)?;
    let label = format!("queue '{queue}' in vhost '/'");
    status["groups"]
        .as_array()?
        .iter()
        .find(|g| g["group"].as_str() == Some(label.as_str()))?["leader"]
        .as_u64()
}

/// Waits until every node in `among` names the same leader for `queue`, one of `among`.
pub(crate) fn wait_for_queue_leader(
    cluster: &Cluster,
    among: &[u64],
    queue: &str,
    within: Duration,
) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let seen: Vec<Option<u64>> = among
            .iter()
            .map(|id| queue_leader(cluster, *id, queue))
            .collect();
        if let Some(Some(leader)) = seen.first()
            && among.contains(leader)
            && seen.iter().all(|s| s == &Some(*leader))
        {
            return *leader;
        }
        assert!(
            Instant::now() < deadline,
            "no agreed leader for {queue} among {among:?} within {within:?}: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_confirmed_on_one_node_is_consumed_on_another() {
    let cluster = Cluster::start(3, FAST);
    cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10));
    let uri = |id: u64| cluster.node(id).uri();
    let publisher = Connection::connect(&uri(1), ConnectionProperties::default())
        .await
        .expect("connect to node 1");
    let ch = publisher.create_channel().await.expect("channel");
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare("replicated".into(), durable, quorum())
        .await
        .expect("declare a quorum queue");
    tokio::task::block_in_place(|| {
        wait_for_queue_leader(&cluster, &[1, 2, 3], "replicated", Duration::from_secs(10))
    });
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let mut confirms = Vec::new();
    for i in 0..1000u32 {
        let confirm = ch
            .basic_publish(
                "".into(),
                "replicated".into(),
                BasicPublishOptions::default(),
                &i.to_be_bytes(),
                BasicProperties::default(),
            )
            .await
            .expect("publish");
        confirms.push(confirm);
    }
    for confirm in confirms {
        assert!(confirm.await.expect("confirm").is_ack(), "nacked");
    }
    // Every node counts them (each applies the queue's log).
    let deadline = Instant::now() + Duration::from_secs(5);
    for id in [1, 2, 3] {
        loop {
            let queue = cluster.api(id, "/api/queues/%2f/replicated");
            if queue.as_ref().and_then(|q| q["messages"].as_u64()) == Some(1000) {
                break;
            }
            assert!(Instant::now() < deadline, "node {id} shows {queue:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let consumer = Connection::connect(&uri(3), ConnectionProperties::default())
        .await
        .expect("connect to node 3");
    let ch = consumer.create_channel().await.expect("channel");
    ch.basic_qos(100, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut deliveries = ch
        .basic_consume(
            "replicated".into(),
            "c".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume on node 3");
    let mut got = Vec::new();
    while got.len() < 1000 {
        let delivery = tokio::time::timeout(Duration::from_secs(10), deliveries.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of 1000 delivered", got.len()))
            .expect("stream open")
            .expect("delivery");
        assert!(!delivery.redelivered, "a first delivery marked redelivered");
        got.push(u32::from_be_bytes(
            delivery.data[..4].try_into().expect("4 bytes"),
        ));
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
    assert_eq!(got, (0..1000).collect::<Vec<_>>(), "in publish order");
    let deadline = Instant::now() + Duration::from_secs(5);
    for id in [1, 2, 3] {
        loop {
            let queue = cluster.api(id, "/api/queues/%2f/replicated");
            let settled = queue.as_ref().is_some_and(|q| {
                q["messages"].as_u64() == Some(0)
                    && q["messages_unacknowledged"].as_u64() == Some(0)
            });
            if settled {
                break;
            }
            assert!(Instant::now() < deadline, "node {id} still shows {queue:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_quorum_queues_leader_under_load_loses_nothing_confirmed() {
    let queue = "checked.replicated";
    let mut cluster = Cluster::start(3, FAST);
    cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10));
    let all = checker::uris((1..=3).map(|id| cluster.node(id).uri()).collect());
    checker::declare_queue(&all, queue, quorum(), Duration::from_secs(10))
        .await
        .expect("declare");
    let leader = tokio::task::block_in_place(|| {
        wait_for_queue_leader(&cluster, &[1, 2, 3], queue, Duration::from_secs(10))
    });
    let survivors: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    // Clients on the other two nodes only: they keep their connections through the kill.
    let uris = checker::uris(survivors.iter().map(|id| cluster.node(*id).uri()).collect());
    let load = Load {
        rate: 1000,
        ..Load::new(queue)
    };
    let mut checker = Checker::start(load, uris);
    assert!(
        checker
            .wait_for_confirmed(3000, Duration::from_secs(15))
            .await,
        "only {} confirms before the kill",
        checker.confirmed()
    );
    tokio::task::block_in_place(|| cluster.kill9(leader));
    let killed = Instant::now();
    let at_kill = checker.confirmed();
    let new_leader = tokio::task::block_in_place(|| {
        wait_for_queue_leader(&cluster, &survivors, queue, Duration::from_secs(5))
    });
    let failover = killed.elapsed();
    assert!(
        checker
            .wait_for_confirmed(at_kill + 2000, Duration::from_secs(15))
            .await,
        "the load did not go on after the kill: {} confirms at the kill, {} now",
        at_kill,
        checker.confirmed()
    );
    tokio::task::block_in_place(|| cluster.restart(leader));
    // The killed node catches up: it applies the queue's log up to the others.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let back = queue_leader(&cluster, leader, queue);
        if back == Some(new_leader) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {leader} did not rejoin {queue}: it sees {back:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    checker.stop_publishers().await;
    let report = checker.finish(Duration::from_millis(1500)).await;
    eprintln!(
        "checker, {queue}: leader {leader} killed after {at_kill} confirms, new leader {new_leader} after {failover:?}\n{report}"
    );
    report.assert_clean();
    assert_eq!(report.left_in_queue, Some(0), "{report}");
}
