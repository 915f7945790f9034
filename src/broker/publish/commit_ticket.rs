//! What a publisher waits for before its confirm (or tx.commit-ok): the store's commit of the
//! message, the replicated commits of the quorum queues it went to on a cluster node, or
//! both. [`CommitTicket::when_committed`] reports once every part is done, with `ok` false if
//! any failed (then nothing is confirmed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::broker::replication::CommitWait;
use crate::store::{CommitListener, Store};

/// A place in the store's commit order (everything written before it was handed out, this
/// message included) and the replicated commits the message waits for.
pub struct CommitTicket {
    store: Option<Arc<Store>>,
    replicated: Vec<Arc<CommitWait>>,
}

impl CommitTicket {
    /// The store's next commit.
    pub fn store(store: Arc<Store>) -> CommitTicket {
        CommitTicket {
            store: Some(store),
            replicated: Vec::new(),
        }
    }

    /// The store's next commit if `store`, and these replicated commits; `None` when there is
    /// nothing to wait for.
    pub fn of(store: Option<Arc<Store>>, replicated: Vec<Arc<CommitWait>>) -> Option<Self> {
        (store.is_some() || !replicated.is_empty()).then_some(CommitTicket { store, replicated })
    }

    /// A ticket for both this one's commits and `later`'s (a transaction's messages).
    pub fn and(mut self, later: CommitTicket) -> CommitTicket {
        // The store commits in order: the later place covers the earlier one.
        if later.store.is_some() {
            self.store = later.store;
        }
        self.replicated.extend(later.replicated);
        self
    }

    /// Calls `listener.committed(token, ok)` once every commit this ticket holds is done, or
    /// one has failed (`ok` false: confirm nothing).
    pub fn when_committed(self, listener: Arc<dyn CommitListener>, token: u64) {
        if self.replicated.is_empty() {
            if let Some(store) = self.store {
                store.notify_when_committed(listener, token);
            }
            return;
        }
        let parts = self.replicated.len() + usize::from(self.store.is_some());
        let join = Arc::new(Join {
            listener,
            left: AtomicUsize::new(parts),
            ok: AtomicBool::new(true),
        });
        if let Some(store) = self.store {
            store.notify_when_committed(join.clone(), token);
        }
        for wait in self.replicated {
            let join = join.clone();
            wait.on_complete(move |ok| join.part_done(token, ok));
        }
    }
}

/// Several commits one confirm waits for.
struct Join {
    listener: Arc<dyn CommitListener>,
    left: AtomicUsize,
    ok: AtomicBool,
}

impl Join {
    fn part_done(&self, token: u64, ok: bool) {
        if !ok {
            self.ok.store(false, Ordering::Release);
        }
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.listener
                .committed(token, self.ok.load(Ordering::Acquire));
            self.listener.released();
        }
    }
}

impl CommitListener for Join {
    fn committed(&self, token: u64, ok: bool) {
        self.part_done(token, ok);
    }
}
