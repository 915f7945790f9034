//! A timer keyed by due time: objects register their next deadline here (a queue: the expiry of
//! the message at its head, or its `x-expires` while unused) and housekeeping sleeps until the
//! earliest one. An idle broker does no work at all, however many queues it holds.
//!
//! As mini-redis's `db.rs` purges expired keys: deadlines sit in a `BTreeMap` ordered by (due
//! time, target address), and a `Notify` wakes the sleeping task when a deadline earlier than
//! all others is registered. Times are [`clock::now_ms`] milliseconds.
//!
//! Each target is registered at most once, under the due time kept in its [`Registered`]:
//! registering an earlier deadline replaces the entry, a later one is ignored. Rescheduling is
//! lazy: a deadline that moves later (a queue used again) is not re-registered; when the old one
//! fires, the target does what is due, perhaps nothing, and registers its next deadline.
//! Targets are held weakly: one that is dropped is skipped when its deadline comes up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use super::clock;

const NONE: u64 = u64::MAX;

/// Targets fired between two looks at the shutdown signal.
const FIRE_BATCH: usize = 256;

/// The due time a target is registered under, if any; owned by the target, written only by
/// [`Deadlines`] under its lock.
#[derive(Debug)]
pub struct Registered(AtomicU64);

impl Default for Registered {
    fn default() -> Self {
        Registered(AtomicU64::new(NONE))
    }
}

impl Registered {
    /// Whether a deadline at or before `due` is registered already: then registering `due`
    /// would change nothing, and the caller can skip finding the timer.
    pub fn covers(&self, due: u64) -> bool {
        // Relaxed: a stale value only sends the caller to `register`, which looks again under
        // the lock. The one reset that matters (a deadline firing) is seen by the target's own
        // lock order: housekeeping resets it before it takes the target's lock to do the work.
        self.0.load(Ordering::Relaxed) <= due
    }
}

/// Something with deadlines: it keeps its own [`Registered`].
pub trait Scheduled {
    fn registered(&self) -> &Registered;
}

/// The timer: registered deadlines, earliest first.
pub struct Deadlines<T> {
    /// (due, address of the target) → the target. The `Weak` keeps the address from being
    /// reused while the entry exists.
    due: Mutex<BTreeMap<(u64, usize), Weak<T>>>,
    /// Signalled when a deadline earlier than every other one is registered.
    earlier: Notify,
}

impl<T> Default for Deadlines<T> {
    fn default() -> Self {
        Deadlines {
            due: Mutex::new(BTreeMap::new()),
            earlier: Notify::new(),
        }
    }
}

fn address<T>(target: &T) -> usize {
    std::ptr::from_ref(target) as usize
}

impl<T: Scheduled> Deadlines<T> {
    /// Registers `target` to fire at `due`, unless it is registered at or before that already.
    pub fn register(&self, target: &Arc<T>, due: u64) {
        let registered = &target.registered().0;
        if registered.load(Ordering::Relaxed) <= due {
            return;
        }
        let key = address(&**target);
        let mut map = self.due.lock();
        let current = registered.load(Ordering::Relaxed);
        if current <= due {
            return;
        }
        if current != NONE {
            map.remove(&(current, key));
        }
        let earliest = map
            .first_key_value()
            .is_none_or(|(&(first, _), _)| due < first);
        map.insert((due, key), Arc::downgrade(target));
        registered.store(due, Ordering::Relaxed);
        drop(map);
        if earliest {
            self.earlier.notify_one();
        }
    }

    /// Forgets `target`'s deadline (it was deleted: nothing more is due).
    pub fn cancel(&self, target: &T) {
        let registered = &target.registered().0;
        if registered.load(Ordering::Relaxed) == NONE {
            return;
        }
        let mut map = self.due.lock();
        let current = registered.swap(NONE, Ordering::Relaxed);
        if current != NONE {
            map.remove(&(current, address(target)));
        }
    }

    /// Takes up to `max` targets due at `now`, earliest first, each no longer registered;
    /// targets dropped meanwhile are skipped.
    pub fn take_due(&self, now: u64, max: usize) -> Vec<Arc<T>> {
        let mut taken = Vec::new();
        let mut map = self.due.lock();
        while taken.len() < max {
            let Some(entry) = map.first_entry() else {
                break;
            };
            if entry.key().0 > now {
                break;
            }
            if let Some(target) = entry.remove().upgrade() {
                target.registered().0.store(NONE, Ordering::Relaxed);
                taken.push(target);
            }
        }
        taken
    }

    /// The earliest registered deadline.
    pub fn next_due(&self) -> Option<u64> {
        self.due.lock().first_key_value().map(|(&(due, _), _)| due)
    }

    /// Calls `fire(target, now)` for each target as its deadline comes, until `shutdown` turns
    /// true. `fire` does what is due and registers the target's next deadline, which must be
    /// later than `now`. Sleeps while nothing is due, however many deadlines wait.
    pub async fn run(
        &self,
        mut shutdown: watch::Receiver<bool>,
        mut fire: impl FnMut(Arc<T>, u64),
    ) {
        loop {
            let now = clock::now_ms();
            let due = self.take_due(now, FIRE_BATCH);
            let more = due.len() == FIRE_BATCH;
            for target in due {
                fire(target, now);
            }
            if more {
                // A burst (many queues due at once): let other tasks, and shutdown, in between.
                tokio::task::yield_now().await;
                if *shutdown.borrow() {
                    return;
                }
                continue;
            }
            let next = self.next_due();
            let sleep = async {
                match next {
                    Some(due) => tokio::time::sleep_until(clock::instant_at(due).into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                // A permit stored by a registration since `next_due` wakes this at once.
                _ = self.earlier.notified() => {}
                _ = sleep => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "deadlines_tests.rs"]
mod tests;
