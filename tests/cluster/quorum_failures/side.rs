//! The publisher on the node a partition cuts off (quorum_failures.rs): publishes with
//! confirms to a queue of its own (the checker would report its messages as unexpected),
//! records when each was published and when and how it was confirmed, and at the end checks
//! what it was told against what its queue holds.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::{BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use super::{MINORITY, QueueView, queue_agreed, queue_view};
use crate::harness::Cluster;

/// What became of one publish of the [`SidePublisher`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Sent {
    published: Instant,
    /// Acked (true) or nacked, and when the publisher learnt it.
    confirm: Option<(bool, Instant)>,
}

/// A publisher with confirms on one node, outside the checker: publishes `m-{n}` to its own
/// queue every 20 ms on one connection (no reconnect), recording when each was published and
/// when and how each was confirmed.
pub(super) struct SidePublisher {
    sent: Arc<Mutex<Vec<Sent>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SidePublisher {
    pub(super) async fn start(uri: &str, queue: &str) -> SidePublisher {
        let conn = Connection::connect(uri, ConnectionProperties::default())
            .await
            .expect("the side publisher's connection");
        let ch = conn.create_channel().await.expect("channel");
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm.select");
        let sent: Arc<Mutex<Vec<Sent>>> = Arc::default();
        let stop = CancellationToken::new();
        let (record, stopped, queue) = (sent.clone(), stop.clone(), queue.to_string());
        let task = tokio::spawn(async move {
            let mut confirms = Vec::new();
            while !stopped.is_cancelled() {
                let index = {
                    let mut record = record.lock();
                    record.push(Sent {
                        published: Instant::now(),
                        confirm: None,
                    });
                    record.len() - 1
                };
                let id = format!("m-{index}");
                let properties = BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_message_id(id.as_str().into());
                let published = ch.basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    id.as_bytes(),
                    properties,
                );
                let Ok(Ok(confirm)) = tokio::time::timeout(Duration::from_secs(5), published).await
                else {
                    break;
                };
                let record = record.clone();
                confirms.push(tokio::spawn(async move {
                    if let Ok(confirmation) = confirm.await {
                        record.lock()[index].confirm =
                            Some((confirmation.is_ack(), Instant::now()));
                    }
                }));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = stopped.cancelled() => {}
                }
            }
            // The confirms still due: bounded (past the commit timeout), then given up.
            let until = tokio::time::Instant::now() + Duration::from_secs(5);
            for mut confirm in confirms {
                if tokio::time::timeout_at(until, &mut confirm).await.is_err() {
                    confirm.abort();
                }
            }
            let _ =
                tokio::time::timeout(Duration::from_secs(2), conn.close(200, "done".into())).await;
        });
        SidePublisher { sent, stop, task }
    }

    /// Waits until an ack has come for a message published after `since`.
    pub(super) async fn wait_acked_after(&self, since: Instant, within: Duration) -> bool {
        let until = Instant::now() + within;
        while Instant::now() < until {
            let acked = self
                .sent
                .lock()
                .iter()
                .any(|s| s.published > since && matches!(s.confirm, Some((true, _))));
            if acked {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    pub(super) async fn finish(self) -> Vec<Sent> {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        self.sent.lock().clone()
    }
}

/// Reads `queue` empty with basic.get (acking each) on node `id`: how many copies of each id,
/// and the get-empty answers that came while the node still counted messages (the drain goes
/// on after those, until the node counts none or 20 s have passed).
async fn drain(cluster: &Cluster, id: u64, queue: &str) -> (HashMap<String, usize>, Vec<u64>) {
    let conn = Connection::connect(&cluster.node(id).uri(), ConnectionProperties::default())
        .await
        .expect("connect to drain");
    let ch = conn.create_channel().await.expect("channel");
    let (mut copies, mut empty_with) = (HashMap::new(), Vec::new());
    let until = Instant::now() + Duration::from_secs(20);
    while Instant::now() < until {
        let got = ch
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .expect("basic.get");
        let Some(message) = got else {
            let view = tokio::task::block_in_place(|| queue_view(cluster, id, queue));
            match view.map(|v| v.messages) {
                Some(0) => break,
                counted => empty_with.push(counted.unwrap_or(u64::MAX)),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let delivery = message.delivery;
        let id = String::from_utf8_lossy(&delivery.data).to_string();
        *copies.entry(id).or_default() += 1;
        delivery.ack(BasicAckOptions::default()).await.expect("ack");
    }
    let _ = conn.close(200, "drained".into()).await;
    (copies, empty_with)
}

/// The publisher on the node cut off: no ack came while cut off for what it published after
/// the cut; every ack it got is in its queue, once; the queue holds what every node counted.
pub(super) async fn check_side_publisher(
    cluster: &Cluster,
    on: u64,
    sent: &[Sent],
    cut_at: Instant,
    healed_at: Instant,
    converged: &QueueView,
) {
    let during: Vec<&Sent> = sent
        .iter()
        .filter(|s| s.published > cut_at && s.published < healed_at)
        .collect();
    let count = |f: &dyn Fn(&Sent) -> bool| during.iter().filter(|s| f(s)).count();
    let acked_while_cut = count(&|s| matches!(s.confirm, Some((true, at)) if at < healed_at));
    let nacked = count(&|s| matches!(s.confirm, Some((false, _))));
    let acked_later = count(&|s| matches!(s.confirm, Some((true, at)) if at >= healed_at));
    let silent = count(&|s| s.confirm.is_none());
    eprintln!(
        "side publisher: {} published, {} while cut off: {acked_while_cut} acked while cut off, {nacked} nacked, {acked_later} acked after healing, {silent} never confirmed",
        sent.len(),
        during.len()
    );
    assert!(
        !during.is_empty(),
        "the side publisher published nothing while cut off"
    );
    assert_eq!(
        acked_while_cut, 0,
        "the minority side confirmed {acked_while_cut} publishes while cut off"
    );
    let (copies, empty_with) = drain(cluster, on, MINORITY).await;
    let acked: Vec<String> = sent
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s.confirm, Some((true, _))))
        .map(|(i, _)| format!("m-{i}"))
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|id| !copies.contains_key(*id))
        .collect();
    let twice: Vec<&String> = copies
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    // A nack means "not taken" to a client, yet a batch that timed out may still commit.
    let nacked_in = sent
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            matches!(s.confirm, Some((false, _))) && copies.contains_key(&format!("m-{i}"))
        })
        .count();
    let total: usize = copies.values().sum();
    eprintln!(
        "{MINORITY}: {} acked, {total} drained ({} distinct), {} lost, {} twice, {nacked_in} nacked yet enqueued; get-empty while node {on} counted messages: {empty_with:?}",
        acked.len(),
        copies.len(),
        lost.len(),
        twice.len()
    );
    assert!(lost.is_empty(), "acked, not in {MINORITY}: {lost:?}");
    assert!(twice.is_empty(), "in {MINORITY} twice: {twice:?}");
    assert_eq!(
        total as u64, converged.messages,
        "{MINORITY}: drained {total}, every node counted {converged:?}"
    );
    // Nothing left, nothing held (a basic.get answered empty whose dequeue committed later
    // would leave its message held by no client).
    let after = tokio::task::block_in_place(|| {
        queue_agreed(cluster, &[1, 2, 3], MINORITY, Duration::from_secs(5), |v| {
            v.messages == 0 && v.unacked == 0
        })
    });
    if let Err(e) = after {
        panic!("{MINORITY} is not empty after the drain: {e}");
    }
}
