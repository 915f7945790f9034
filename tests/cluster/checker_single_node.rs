//! The checker (checker.rs) on a one-node cluster (its own majority) whose node is killed with
//! SIGKILL under load and started again: persistent messages published with confirms to a
//! durable queue, consumed with manual acks; clients reconnect to the restarted node (on its
//! new port) and go on; at the end everything is drained and every confirmed message must have
//! been delivered, again only marked redelivered.

use std::time::Duration;

use lapin::options::QueuePurgeOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};

use crate::checker::{self, Checker, Load, Report};
use crate::harness::Cluster;

/// Short elections and commits for tests on a busy machine.
const FAST: &str = "heartbeat_ms = 100\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\ncommit_timeout_ms = 3000";

/// Confirms before the kill.
const BEFORE_KILL: usize = 3000;
/// Confirms after the restart before the publishers stop...
const AFTER_RESTART: usize = 2000;
/// ...and at least this long.
const LOAD_AFTER_RESTART: Duration = Duration::from_secs(3);

async fn kill_and_restart_under_load(queue: &str, arguments: FieldTable) -> Report {
    let mut cluster = Cluster::start(1, FAST);
    cluster.wait_for_leader(&[1], Duration::from_secs(10));
    let uris = checker::uris(vec![cluster.node(1).uri()]);
    checker::declare_queue(&uris, queue, arguments, Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("declare {queue}: {e}"));
    let load = Load {
        rate: 1500,
        ..Load::new(queue)
    };
    let mut checker = Checker::start(load, uris.clone());
    assert!(
        checker
            .wait_for_confirmed(BEFORE_KILL, Duration::from_secs(10))
            .await,
        "only {} confirms before the kill: {}",
        checker.confirmed(),
        cluster.log(1)
    );
    tokio::task::block_in_place(|| cluster.kill9(1));
    let at_kill = checker.confirmed();
    // Let the clients notice and fail to reconnect for a while.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| cluster.restart(1));
    uris.lock()[0] = cluster.node(1).uri();
    let at_restart = checker.confirmed();
    let restarted = tokio::time::Instant::now();
    assert!(
        checker
            .wait_for_confirmed(at_restart + AFTER_RESTART, Duration::from_secs(10))
            .await,
        "the load did not go on after the restart: {} confirms at the restart, {} now: {}",
        at_restart,
        checker.confirmed(),
        cluster.log(1)
    );
    tokio::time::sleep_until(restarted + LOAD_AFTER_RESTART).await;
    checker.stop_publishers().await;
    let report = checker.finish(Duration::from_millis(1500)).await;
    eprintln!(
        "checker, {queue}: killed after {at_kill} confirms, restarted at {at_restart}\n{report}"
    );
    if !report.is_clean() {
        eprintln!("node 1 log:\n{}", cluster.log(1));
    }
    report
}

/// The clients did reconnect (more sessions than clients), and the drain left nothing behind.
fn assert_drained_after_reconnects(report: &Report) {
    assert!(
        report.publisher_sessions > 3 && report.consumer_sessions > 2,
        "no reconnect: {report}"
    );
    assert_eq!(report.left_in_queue, Some(0), "{report}");
}

fn queue_type(kind: &str) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), AMQPValue::LongString(kind.into()));
    arguments
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_queue_survives_kill9_of_its_single_node() {
    let report = kill_and_restart_under_load("checked.quorum", queue_type("quorum")).await;
    report.assert_clean();
    assert_drained_after_reconnects(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_durable_queue_survives_kill9_of_its_single_node() {
    let report = kill_and_restart_under_load("checked.classic", queue_type("classic")).await;
    report.assert_clean();
    assert_drained_after_reconnects(&report);
}

/// The checker run end to end does see a loss: messages confirmed into a queue nobody consumes
/// are purged under it, and every one confirmed before the purge is reported lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_reports_messages_purged_under_it_as_lost() {
    let cluster = Cluster::start(1, FAST);
    cluster.wait_for_leader(&[1], Duration::from_secs(10));
    let queue = "checked.purged";
    let uris = checker::uris(vec![cluster.node(1).uri()]);
    checker::declare_queue(&uris, queue, queue_type("classic"), Duration::from_secs(10))
        .await
        .expect("declare");
    let load = Load {
        consumers: 0,
        rate: 500,
        ..Load::new(queue)
    };
    let mut checker = Checker::start(load, uris);
    assert!(
        checker
            .wait_for_confirmed(500, Duration::from_secs(10))
            .await
    );
    let before_purge = checker.confirmed();
    let conn = Connection::connect(&cluster.node(1).uri(), ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    let purged = ch
        .queue_purge(queue.into(), QueuePurgeOptions::default())
        .await
        .expect("queue.purge") as usize;
    checker.stop_publishers().await;
    let report = checker.finish(Duration::from_millis(300)).await;
    eprintln!("checker, purged {purged} of {before_purge} confirmed:\n{report}");
    assert!(!report.is_clean(), "{report}");
    assert!(
        report.lost.len() >= before_purge && report.lost.len() <= purged,
        "{} lost, {before_purge} confirmed before the purge of {purged}: {report}",
        report.lost.len()
    );
    assert!(std::panic::catch_unwind(|| report.assert_clean()).is_err());
}
