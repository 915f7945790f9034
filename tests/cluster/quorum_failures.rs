//! Quorum queues under failures with traffic, judged by the checker (checker.rs): publishers
//! with confirms and consumers with manual acks run throughout; at the end every confirmed
//! message must have been delivered, again only marked redelivered, and nothing left behind.
//!
//! - A network partition (the harness's proxies, silent) cuts one node off for 8 s: the
//!   queue's leader (the harder case: a leader alone keeps its role and appends what it is
//!   given), or a follower. The checker's clients are on the two nodes of the majority: they
//!   have a leader within 5 s and go on confirming. A publisher with confirms on the node cut
//!   off, to a second quorum queue (the checker would report its messages as unexpected), gets
//!   no ack for what it publishes while cut off; every ack it does get, before the cut or after
//!   healing, must be in that queue at the end. Once healed, the node cut off rejoins (the same
//!   leader, caught up) and confirms again, and all three nodes agree on each queue group's
//!   leader, term and log position and on the queue's counts.
//! - A rolling restart: each node in turn SIGKILLed and started again, the next one only once
//!   the last has rejoined the queue's group, the checker's clients following the nodes (they
//!   reconnect round robin to a list the test keeps up to date).
//!
//! Both end alike ([`finish_and_check`]): once the publishers stop, the consumers must take
//! everything ready, and after the checker's drain no node may count a message, ready or
//! unacknowledged. Every delivery was acked, so a message still unacknowledged is one whose
//! ack the broker lost: the checker alone would not see it (it was delivered), but it stays
//! held by its consumer, whose prefetch window it shrinks for good.
//!
//! The tests of this file run one at a time ([`ONE_AT_A_TIME`]); the partition's side publisher
//! is in quorum_failures/side.rs.

mod side;

use std::time::{Duration, Instant};

use tokio::task::block_in_place;

use crate::checker::{self, Checker, Load, Report};
use crate::harness::Cluster;
use crate::partition::{RaftView, raft_view};
use crate::quorum::{FAST, queue_leader, quorum, wait_for_queue_leader};
use side::{SidePublisher, check_side_publisher};

/// The checker's queue.
const CHECKED: &str = "checked.failures";
/// The queue the publisher on the node cut off publishes to.
const MINORITY: &str = "minority.failures";
/// A new leader for the majority, and for the others after a kill, within this.
const FAILOVER_WITHIN: Duration = Duration::from_secs(5);
/// The node cut off stays cut off at least this long: past the commit timeout (3 s) and the
/// 3 s of silence after which a member counts as down, so that both happen on both sides
/// while the partition lasts.
const CUT_AT_LEAST: Duration = Duration::from_secs(8);
/// How long nodes may take to agree again (healed, restarted, or the load stopped).
const CONVERGED_WITHIN: Duration = Duration::from_secs(20);
/// How long the consumers may take to empty the queue once the publishers stop.
const DRAINED_WITHIN: Duration = Duration::from_secs(5);

/// Held by each test of this file while it runs: one loaded cluster at a time (three nodes
/// and a checker already keep two cores busy; two such tests at once starve each other's
/// heartbeats and elections, and the timings measured here mean nothing).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The load: 3 publishers at up to 700 msg/s each, 2 consumers; everything stops by itself
/// within 38 s of its start (the tests stop it earlier).
fn load() -> Load {
    Load {
        rate: 700,
        max_publish: Duration::from_secs(30),
        max_total: Duration::from_secs(38),
        ..Load::new(CHECKED)
    }
}

/// What `/api/cluster-status` calls `queue`'s group.
fn group_of(queue: &str) -> String {
    format!("queue '{queue}' in vhost '/'")
}

/// One node's view of a quorum queue: its group's Raft position and the queue's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QueueView {
    raft: RaftView,
    messages: u64,
    unacked: u64,
}

fn queue_view(cluster: &Cluster, id: u64, queue: &str) -> Option<QueueView> {
    let raft = raft_view(cluster, id, &group_of(queue))?;
    let counts = cluster.api(id, &format!("/api/queues/%2f/{queue}"))?;
    Some(QueueView {
        raft,
        messages: counts["messages"].as_u64()?,
        unacked: counts["messages_unacknowledged"].as_u64()?,
    })
}

/// Waits until every node of `among` has the same view of `queue`: the same leader (one of
/// them), term, last log index and last applied index (everything applied), and the same
/// message counts, which `wanted` accepts; read twice, the same both times. Err: what each
/// node said last.
fn queue_agreed(
    cluster: &Cluster,
    among: &[u64],
    queue: &str,
    within: Duration,
    wanted: impl Fn(&QueueView) -> bool,
) -> Result<QueueView, String> {
    let deadline = Instant::now() + within;
    let read = || -> Vec<Option<QueueView>> {
        among
            .iter()
            .map(|id| queue_view(cluster, *id, queue))
            .collect()
    };
    let agreed = |views: &[Option<QueueView>]| match views.first() {
        Some(Some(first)) => {
            views.iter().all(|v| v.as_ref() == Some(first))
                && first.raft.leader.is_some_and(|l| among.contains(&l))
                && first.raft.last_applied == first.raft.last_log_index
                && wanted(first)
        }
        _ => false,
    };
    loop {
        let views = read();
        if agreed(&views) && read() == views {
            return Ok(views[0].clone().expect("agreed"));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "nodes {among:?} on {queue} after {within:?}: {views:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// [`queue_agreed`] on any counts; panics if the nodes do not agree in time.
fn wait_queue_converged(cluster: &Cluster, among: &[u64], queue: &str) -> QueueView {
    queue_agreed(cluster, among, queue, CONVERGED_WITHIN, |_| true)
        .unwrap_or_else(|e| panic!("no agreement: {e}"))
}

/// The end of a test under load, once the publishers have stopped: the consumers must take
/// everything ready (every node agreeing nothing is ready) before the checker's own drain,
/// which would otherwise read with basic.get what they left; then the checker's verdict; and
/// after its drain nothing may be held either: every delivery was acked, so a message still
/// unacknowledged is one whose ack the broker lost (invisible to basic.get, it stays held by a
/// consumer that is gone).
async fn finish_and_check(cluster: &Cluster, checker: Checker, what: &str) -> Report {
    let drained = block_in_place(|| {
        queue_agreed(cluster, &[1, 2, 3], CHECKED, DRAINED_WITHIN, |v| {
            v.messages == v.unacked
        })
    });
    let report = checker.finish(Duration::from_millis(1500)).await;
    let after = block_in_place(|| {
        queue_agreed(cluster, &[1, 2, 3], CHECKED, Duration::from_secs(5), |v| {
            v.messages == 0 && v.unacked == 0
        })
    });
    eprintln!("checker, {CHECKED}: {what}\n{report}");
    eprintln!("nothing ready: {drained:?}\nafter the checker's drain: {after:?}");
    // The causes first: what the broker still holds, then consumers that stopped; the
    // checker would count messages left behind by either as lost.
    if let Err(e) = after {
        panic!(
            "{CHECKED} still holds messages after the clients acked every delivery (acks lost?): {e}"
        );
    }
    if let Err(e) = drained {
        panic!("the consumers did not take every ready message once the publishers stopped: {e}");
    }
    report.assert_clean();
    assert_eq!(report.left_in_queue, Some(0), "{report}");
    report
}

/// Waits until every node names the same leader for `queue` and keeps naming it, in the same
/// term, for a second (a group's preferred member may take over just after the declare).
fn wait_for_steady_leader(cluster: &Cluster, queue: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    'again: loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let leader = wait_for_queue_leader(cluster, &[1, 2, 3], queue, left);
        let term = raft_view(cluster, leader, &group_of(queue)).map(|v| v.term);
        let steady_until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < steady_until {
            std::thread::sleep(Duration::from_millis(100));
            let views: Vec<_> = (1..=3)
                .map(|id| raft_view(cluster, id, &group_of(queue)))
                .collect();
            let same = views.iter().all(|v| {
                v.as_ref()
                    .is_some_and(|v| v.leader == Some(leader) && Some(v.term) == term)
            });
            if !same {
                assert!(
                    Instant::now() < deadline,
                    "{queue}'s leader is not steady: {views:?}"
                );
                continue 'again;
            }
        }
        return leader;
    }
}

/// Waits until node `id` names the same leader for `queue` as the others of `among` and has
/// applied at least `applied` of its log. Returns how long it took.
fn wait_rejoined(
    cluster: &Cluster,
    id: u64,
    among: &[u64],
    queue: &str,
    applied: u64,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let leader = wait_for_queue_leader(cluster, among, queue, within);
        let view = raft_view(cluster, id, &group_of(queue));
        if view
            .as_ref()
            .is_some_and(|v| v.leader == Some(leader) && v.last_applied >= Some(applied))
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "node {id} did not rejoin {queue} (leader {leader}, applied {applied}) within {within:?}: {view:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Leader,
    Follower,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quorum_queues_leader_cut_off_under_load_stops_confirming_and_loses_nothing() {
    partition_under_load(Role::Leader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_queues_follower_cut_off_under_load_stops_confirming_and_loses_nothing() {
    partition_under_load(Role::Follower).await;
}

async fn partition_under_load(role: Role) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let cluster = Cluster::start_with_proxies(3, FAST);
    cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10));
    let all = checker::uris((1..=3).map(|id| cluster.node(id).uri()).collect());
    for queue in [CHECKED, MINORITY] {
        checker::declare_queue(&all, queue, quorum(), Duration::from_secs(10))
            .await
            .unwrap_or_else(|e| panic!("declare {queue}: {e}"));
    }
    let (leader, side_leader) = block_in_place(|| {
        (
            wait_for_steady_leader(&cluster, CHECKED),
            wait_for_steady_leader(&cluster, MINORITY),
        )
    });
    let cut_off = match role {
        Role::Leader => leader,
        Role::Follower => leader % 3 + 1,
    };
    let majority: Vec<u64> = (1..=3).filter(|id| *id != cut_off).collect();
    let uris = checker::uris(majority.iter().map(|id| cluster.node(*id).uri()).collect());
    let mut checker = Checker::start(load(), uris);
    let side = SidePublisher::start(&cluster.node(cut_off).uri(), MINORITY).await;
    assert!(
        checker
            .wait_for_confirmed(3000, Duration::from_secs(15))
            .await,
        "only {} confirms before the cut",
        checker.confirmed()
    );
    assert!(
        side.wait_acked_after(started, Duration::from_secs(10))
            .await,
        "the side publisher on node {cut_off} got no ack before the cut"
    );

    // The roles must not have moved meanwhile (the scenario is about the node cut off).
    let leader_now = block_in_place(|| {
        wait_for_queue_leader(&cluster, &[1, 2, 3], CHECKED, Duration::from_secs(5))
    });
    assert_eq!(
        leader_now, leader,
        "{CHECKED}'s leader moved before the cut"
    );
    cluster.isolate(cut_off);
    let cut_at = Instant::now();
    let at_cut = checker.confirmed();
    eprintln!(
        "node {cut_off} ({role:?} of {CHECKED}; {MINORITY} led by {side_leader}) cut off after {at_cut} confirms"
    );
    let new_leader =
        block_in_place(|| wait_for_queue_leader(&cluster, &majority, CHECKED, FAILOVER_WITHIN));
    let failover = cut_at.elapsed();
    eprintln!("majority leader of {CHECKED}: {new_leader} after {failover:?}");
    assert!(
        checker
            .wait_for_confirmed(at_cut + 1000, Duration::from_secs(15))
            .await,
        "the majority did not go on confirming: {at_cut} confirms at the cut, {} now",
        checker.confirmed()
    );
    // Meanwhile, what the majority's leader holds (the consumers keep up, or it grows).
    let mut depths = Vec::new();
    while Instant::now() < cut_at + CUT_AT_LEAST {
        let view = block_in_place(|| queue_view(&cluster, new_leader, CHECKED));
        depths.push(view.map(|v| (v.messages, v.unacked)));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("{CHECKED} on node {new_leader} every 0.5 s (messages, unacked): {depths:?}");
    let (cut_view, majority_view) = block_in_place(|| {
        (
            raft_view(&cluster, cut_off, &group_of(CHECKED)),
            raft_view(&cluster, new_leader, &group_of(CHECKED)),
        )
    });
    eprintln!("before healing, node {cut_off}: {cut_view:?}; the majority: {majority_view:?}");
    let at_heal = checker.confirmed();
    cluster.heal();
    let healed_at = Instant::now();
    assert!(
        at_heal - at_cut >= 1000,
        "the majority confirmed only {} during the partition",
        at_heal - at_cut
    );
    eprintln!(
        "healed after {:?}: the majority confirmed {} meanwhile",
        cut_at.elapsed(),
        at_heal - at_cut
    );

    // The node cut off rejoins under load: the same leader, and it catches up.
    let applied = majority_view.and_then(|v| v.last_applied).unwrap_or(0);
    let rejoined = block_in_place(|| {
        wait_rejoined(
            &cluster,
            cut_off,
            &[1, 2, 3],
            CHECKED,
            applied,
            CONVERGED_WITHIN,
        )
    });
    eprintln!("node {cut_off} rejoined {CHECKED} {rejoined:?} after healing");
    // And confirms again.
    let rejoined_at = Instant::now();
    assert!(
        side.wait_acked_after(rejoined_at, Duration::from_secs(10))
            .await,
        "node {cut_off} does not confirm again after healing"
    );
    let at_stop = checker.confirmed();
    assert!(
        at_stop > at_heal,
        "no confirms after healing ({at_heal} at the heal)"
    );
    let sent = side.finish().await;
    checker.stop_publishers().await;

    // Once the load stops, every node has the same of the side publisher's queue, which holds
    // every message it had acked.
    let minority = block_in_place(|| wait_queue_converged(&cluster, &[1, 2, 3], MINORITY));
    eprintln!("{MINORITY} converged: {minority:?}");
    check_side_publisher(&cluster, majority[0], &sent, cut_at, healed_at, &minority).await;

    let what = format!(
        "node {cut_off} ({role:?}) cut off after {at_cut} confirms, {at_heal} at the heal, {at_stop} at the stop; new leader {new_leader} after {failover:?}"
    );
    finish_and_check(&cluster, checker, &what).await;
    eprintln!(
        "partition ({role:?}) under load: {:?} in all",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_under_load_loses_nothing_confirmed() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let mut cluster = Cluster::start(3, FAST);
    cluster.wait_for_leader(&[1, 2, 3], Duration::from_secs(10));
    let uris = checker::uris((1..=3).map(|id| cluster.node(id).uri()).collect());
    checker::declare_queue(&uris, CHECKED, quorum(), Duration::from_secs(10))
        .await
        .expect("declare");
    block_in_place(|| {
        wait_for_queue_leader(&cluster, &[1, 2, 3], CHECKED, Duration::from_secs(10))
    });
    let mut checker = Checker::start(load(), uris.clone());
    assert!(
        checker
            .wait_for_confirmed(2000, Duration::from_secs(15))
            .await,
        "only {} confirms before the first restart",
        checker.confirmed()
    );
    for id in 1..=3u64 {
        let others: Vec<u64> = (1..=3).filter(|o| *o != id).collect();
        let led = block_in_place(|| queue_leader(&cluster, others[0], CHECKED)) == Some(id);
        let at_kill = checker.confirmed();
        block_in_place(|| cluster.kill9(id));
        let killed = Instant::now();
        let leader =
            block_in_place(|| wait_for_queue_leader(&cluster, &others, CHECKED, FAILOVER_WITHIN));
        let failover = killed.elapsed();
        block_in_place(|| cluster.restart(id));
        uris.lock()[(id - 1) as usize] = cluster.node(id).uri();
        let restarted = killed.elapsed();
        // What the leader has now, the load going on: more than the node had when it died (a
        // node just started names the leader of its last vote and has applied its own log,
        // before any contact).
        let applied = block_in_place(|| {
            raft_view(&cluster, leader, &group_of(CHECKED)).and_then(|v| v.last_log_index)
        })
        .unwrap_or(0);
        let rejoined = block_in_place(|| {
            wait_rejoined(&cluster, id, &[1, 2, 3], CHECKED, applied, CONVERGED_WITHIN)
        });
        let at_rejoin = checker.confirmed();
        eprintln!(
            "node {id} (leader: {led}) killed after {at_kill} confirms; leader {leader} after {failover:?}; listening again after {restarted:?}, rejoined {rejoined:?} later, {at_rejoin} confirms"
        );
        // The load goes on with the node back before the next one goes.
        assert!(
            checker
                .wait_for_confirmed(at_rejoin + 1000, Duration::from_secs(15))
                .await,
            "the load did not go on after node {id} rejoined: {at_rejoin} confirms then, {} now",
            checker.confirmed()
        );
    }
    checker.stop_publishers().await;
    let report = finish_and_check(&cluster, checker, "every node restarted in turn").await;
    // Every node was restarted under the clients: some of them had to connect again.
    let clients = load().publishers + load().consumers;
    let sessions = report.publisher_sessions + report.consumer_sessions;
    assert!(sessions > clients, "no client reconnected: {report}");
    eprintln!("rolling restart under load: {:?} in all", started.elapsed());
}
