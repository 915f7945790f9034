//! A group's proposals in batches: one `client_write` in flight at a time, and every item that
//! arrived meanwhile goes into the next entry. openraft 0.9 waits for each append's flush
//! before it runs its next command, so a group commits about one entry per sync of its
//! leader's log; batching is what turns that into many items per sync (CLUSTER.md, "Per-queue
//! groups: first figures": one group from 2.3k to 22-28k items/s).
//!
//! Generic over what an entry holds: the caller says how to make an entry from a batch of
//! items ([`Batcher::start`]'s `entry`) and how to share its outcome among them (`split`).
//! This file knows nothing of queues or of the metadata group.

use std::sync::Arc;

use openraft::Raft;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use super::groups::GroupTypes;

/// Items taken into one entry at most (the rest wait for the next).
const MAX_ITEMS_PER_ENTRY: usize = 4096;

/// Why a batch was not committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCommitted(pub String);

type Waiting<I, O> = (I, oneshot::Sender<Result<O, NotCommitted>>);

/// Hands items to a group's leader in batches. Cheap to clone.
pub struct Batcher<I, O> {
    items: mpsc::UnboundedSender<Waiting<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Batcher {
            items: self.items.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the batcher's task (on the current runtime) for `raft`, which should be the
    /// group's leader: proposals made elsewhere fail with the leader's refusal.
    pub fn start<C>(
        raft: Raft<C>,
        entry: impl Fn(Vec<I>) -> C::D + Send + Sync + 'static,
        split: impl Fn(C::R, usize) -> Vec<O> + Send + Sync + 'static,
    ) -> Batcher<I, O>
    where
        C: GroupTypes,
        C::D: Serialize + DeserializeOwned,
        C::R: Serialize + DeserializeOwned,
    {
        let (items, mut queue) = mpsc::unbounded_channel::<Waiting<I, O>>();
        let entry = Arc::new(entry);
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_ITEMS_PER_ENTRY {
                    match queue.try_recv() {
                        Ok(more) => batch.push(more),
                        Err(_) => break,
                    }
                }
                let (items, waiters): (Vec<I>, Vec<_>) = batch.into_iter().unzip();
                let count = items.len();
                match raft.client_write(entry(items)).await {
                    Ok(response) => {
                        let outcomes = split(response.data, count);
                        if outcomes.len() != count {
                            let why = format!("{} outcomes for {count} items", outcomes.len());
                            for waiter in waiters {
                                let _ = waiter.send(Err(NotCommitted(why.clone())));
                            }
                            continue;
                        }
                        for (waiter, outcome) in waiters.into_iter().zip(outcomes) {
                            let _ = waiter.send(Ok(outcome));
                        }
                    }
                    Err(e) => {
                        let why = NotCommitted(e.to_string());
                        for waiter in waiters {
                            let _ = waiter.send(Err(why.clone()));
                        }
                    }
                }
            }
        });
        Batcher { items }
    }

    /// Proposes `item` in the next batch; resolves when that batch is committed and applied
    /// on the leader, with this item's share of the outcome.
    pub async fn propose(&self, item: I) -> Result<O, NotCommitted> {
        let (tx, rx) = oneshot::channel();
        self.items
            .send((item, tx))
            .map_err(|_| NotCommitted("the batcher has stopped".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(NotCommitted("the batcher has stopped".into())))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use openraft::{BasicNode, Raft};

    use super::Batcher;
    use crate::cluster::counter::{Counter, Sum};
    use crate::cluster::group_network::GroupNetwork;
    use crate::cluster::log_db::LogDb;
    use crate::cluster::log_store::LogStore;
    use crate::cluster::peer_link::Peers;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_items_go_into_few_entries_and_each_hears_its_outcome() {
        let dir = std::env::temp_dir().join(format!("warren-batcher-{}", std::process::id()));
        let db = LogDb::open(&dir).expect("log db");
        let peers = Arc::new(Peers::new(
            1,
            "c".into(),
            BTreeMap::from([(1, "127.0.0.1:1".into())]),
        ));
        let config = Arc::new(openraft::Config::default().validate().expect("config"));
        let raft = Raft::new(
            1,
            config,
            GroupNetwork::<Counter>::new(peers, 7),
            LogStore::new(db, 7),
            Sum::default(),
        )
        .await
        .expect("raft");
        raft.initialize(BTreeMap::from([(1, BasicNode::new("a"))]))
            .await
            .expect("initialize");
        raft.wait(Some(std::time::Duration::from_secs(10)))
            .current_leader(1, "leader")
            .await
            .expect("leader");
        let before = raft.metrics().borrow().last_log_index.unwrap_or(0);
        // Each item adds 1; each hears the sum after its entry (the same for a whole batch).
        let batcher = Batcher::<(), u64>::start(
            raft.clone(),
            |items: Vec<()>| items.len() as u64,
            |sum, n| vec![sum; n],
        );
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.propose(()).await })
            })
            .collect();
        let mut sums = Vec::new();
        for task in tasks {
            sums.push(task.await.expect("task").expect("committed"));
        }
        assert_eq!(sums.iter().max(), Some(&1000), "every item counted once");
        assert!(sums.iter().all(|s| *s >= 1 && *s <= 1000));
        let entries = raft.metrics().borrow().last_log_index.unwrap_or(0) - before;
        assert!(
            entries < 1000,
            "{entries} entries for 1000 items: nothing batched"
        );
        raft.shutdown().await.expect("shutdown");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
