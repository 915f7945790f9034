//! Paged backlogs and the store across purges, deletes and restarts: emptying a paged queue of
//! any kind leaves no message record behind once the broker has restarted; a restart (SIGTERM or
//! SIGKILL) brings back only the persistent messages of a paged backlog, in order, redelivered,
//! and the store keeps no record of the transient ones; a paged priority queue comes back still
//! delivering highest priority first, FIFO within a level. The brokers after a restart page too.

use warren::store::{RecordCounts, count_in_dir};

use super::*;
use crate::common::*;
use crate::support::*;

/// Messages per queue in the purge and delete tests (eight queues).
const PER_QUEUE: usize = 300;
/// Messages in the restart tests.
const N: usize = 1000;

fn records(n: usize) -> RecordCounts {
    let n = n as u64;
    RecordCounts {
        messages: n,
        queue_index: n,
        refcounts: n,
        schedule_index: 0,
    }
}

/// A paged queue of every shape, then each purged (or deleted) whole; after a graceful restart
/// the broker agrees, and once it stops the store holds no message at all.
async fn emptied_paged_queues_leave_no_records(delete: bool) {
    let mut node = paging_node();
    let mut checks = PagingChecks::new();
    let mut queues = Vec::new();
    {
        let (_conn, ch) = node.confirm_channel().await;
        for shape in ALL_SHAPES {
            let q = shape.declare(&ch).await;
            publish_to_queue(&ch, &q, &shape.messages(PER_QUEUE)).await;
            checks.paged(&node.broker, &q, shape.ram_bound()).await;
            queues.push((shape, q));
        }
        for (shape, q) in &queues {
            let removed = match delete {
                true => delete_queue(&ch, q).await,
                false => purge_queue(&ch, q).await,
            };
            assert_eq!(removed as usize, PER_QUEUE, "{}", shape.name);
        }
    }
    node.restart_with_config(Stop::Graceful, &config());
    let conn = node.broker.connect().await;
    for (shape, q) in &queues {
        let survives = shape.durable && !delete;
        assert_eq!(queue_exists(&conn, q).await, survives, "{}", shape.name);
        if survives {
            let ch = conn.create_channel().await.expect("create channel");
            assert_eq!(
                message_count(&ch, q).await,
                0,
                "{} after restart",
                shape.name
            );
        }
    }
    let _ = conn.close(200, "bye".into()).await;
    node.stop(Stop::Graceful);
    let counts = count_in_dir(node.path()).expect("count records");
    assert_eq!(counts, records(0), "records left by emptied paged queues");
    checks.verify();
}

#[tokio::test]
async fn purged_paged_queues_of_every_kind_leave_no_message_records() {
    emptied_paged_queues_leave_no_records(false).await
}

#[tokio::test]
async fn deleted_paged_queues_of_every_kind_leave_no_message_records() {
    emptied_paged_queues_leave_no_records(true).await
}

/// Every third message transient.
fn mixed_persistence(i: usize) -> lapin::BasicProperties {
    if i % 3 == 1 {
        transient()
    } else {
        persistent()
    }
}

/// A paged durable queue of persistent and transient messages, stopped as `stop` says: the
/// restarted broker has only the persistent ones (paged again), the store keeps records of
/// those alone, and they come out in order, redelivered.
async fn only_persistent_paged_messages_come_back(mut node: Node, stop: Stop) {
    let mut checks = PagingChecks::new();
    let q = unique("mixed");
    let msgs = messages("mixed", N, mixed_persistence);
    let kept: Vec<String> = msgs
        .iter()
        .filter(|m| m.props.delivery_mode() == &Some(2))
        .map(|m| m.body.clone())
        .collect();
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, &q).await;
        publish_to_queue(&ch, &q, &msgs).await;
        checks.paged(&node.broker, &q, PLAIN.ram_bound()).await;
    }
    node.restart_with_config(stop, &config());
    {
        let (_conn, ch) = node.channel().await;
        assert_eq!(
            message_count(&ch, &q).await as usize,
            kept.len(),
            "after {stop:?}"
        );
        checks.paged(&node.broker, &q, PLAIN.ram_bound()).await;
    }
    node.stop(Stop::Graceful);
    let counts = count_in_dir(node.path()).expect("count records");
    assert_eq!(
        counts,
        records(kept.len()),
        "only persistent messages stored"
    );
    node.restart_after_stop_with_config(&config());
    let (_conn, ch) = node.channel().await;
    let got = get_all(&ch, &q).await;
    assert_same_order(&bodies(&got), &kept, &format!("{q} after {stop:?}"));
    if let Some(g) = got.iter().find(|g| !g.redelivered) {
        panic!("{} came back after {stop:?} but not redelivered", g.body);
    }
    checks.verify();
}
both_stops!(
    only_persistent_paged_messages_come_back,
    a_paged_backlog_keeps_only_its_persistent_messages_over_a_graceful_restart,
    a_paged_backlog_keeps_only_its_persistent_messages_over_kill9,
    paging_node()
);

/// A paged priority queue (a low-priority front first, every level behind it), stopped as
/// `stop` says: the restarted broker pages it again and delivers highest priority first, FIFO
/// within a level.
async fn a_paged_priority_queue_keeps_its_order(mut node: Node, stop: Stop) {
    let mut checks = PagingChecks::new();
    let low = messages("low", 300, |_| persistent().with_priority(1));
    let mixed = messages("mixed", N - low.len(), mixed_priority);
    let all: Vec<Msg> = low.into_iter().chain(mixed).collect();
    let q = {
        let (_conn, ch) = node.confirm_channel().await;
        let q = PRIORITIES.declare(&ch).await;
        publish_to_queue(&ch, &q, &all).await;
        checks.paged(&node.broker, &q, PRIORITIES.ram_bound()).await;
        q
    };
    node.restart_with_config(stop, &config());
    let (conn, ch) = node.channel().await;
    checks.paged(&node.broker, &q, PRIORITIES.ram_bound()).await;
    drain_in_order(&conn, &ch, &q, &by_priority(&all)).await;
    checks.verify();
}
both_stops!(
    a_paged_priority_queue_keeps_its_order,
    a_paged_priority_queue_delivers_highest_priority_first_after_a_graceful_restart,
    a_paged_priority_queue_delivers_highest_priority_first_after_kill9,
    paging_node()
);
