//! The part of a schedule held in memory: its near future, bodies included, ordered by due
//! time. Everything a schedule holds is also in the store (schedule_index.rs); the window is a
//! cache of its start, so a delayed exchange holding millions of messages keeps a bounded few
//! thousand in memory.
//!
//! The one rule: every entry before the *horizon* is in the window; entries at or after it may
//! be only in the store. A new entry before the horizon joins the window; past the limits the
//! latest entries are dropped from it and the horizon moves back to them. When the window runs
//! low, the schedule reads the next entries from the store from the horizon on
//! ([`Window::begin_load`] / [`Window::end_load`]); entries scheduled while that read runs are
//! kept aside, since the read may not see them.
//!
//! Pure bookkeeping: no store, no clock, no locks (schedule.rs holds it under its lock).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::broker::message::Message;
use crate::store::DueKey;

/// How much of its schedule a window holds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_count: usize,
    pub max_bytes: usize,
}

impl Limits {
    /// Room for a second's worth of a busy exchange's messages, and a few MB of bodies.
    pub const DEFAULT: Limits = Limits {
        max_count: 8192,
        max_bytes: 16 << 20,
    };

    /// Everything in memory (half messages: a commit takes its message at once).
    pub const UNBOUNDED: Limits = Limits {
        max_count: usize::MAX,
        max_bytes: usize::MAX,
    };

    /// Below this many entries (or a quarter of the bytes), a window backed by the store
    /// reads ahead.
    fn low_water(&self) -> usize {
        self.max_count / 4
    }
}

pub struct Window {
    entries: BTreeMap<DueKey, Arc<Message>>,
    bytes: usize,
    /// Every entry before it is in `entries`; `None`: every entry is.
    horizon: Option<DueKey>,
    /// While a read from the store runs: what was scheduled at or after the horizon meanwhile.
    arrivals: Option<Vec<(DueKey, Arc<Message>)>>,
    /// Whether the store holds every entry too (entries may then leave memory).
    backed: bool,
    limits: Limits,
}

/// The key right after `key`.
pub fn successor(key: DueKey) -> DueKey {
    match key.id.checked_add(1) {
        Some(id) => DueKey { id, ..key },
        None => DueKey {
            due_ms: key.due_ms.saturating_add(1),
            id: 0,
        },
    }
}

fn size(message: &Message) -> usize {
    message.body.len() + message.properties.raw().len()
}

impl Window {
    /// A window for a schedule with no store behind it: it holds everything.
    pub fn in_memory() -> Self {
        Window::new(None, false, Limits::DEFAULT)
    }

    /// A window over a schedule the store holds; `restored` when that schedule may hold
    /// entries already (a restart: nothing is in memory yet).
    pub fn backed(restored: bool, limits: Limits) -> Self {
        Window::new(restored.then_some(DueKey::FIRST), true, limits)
    }

    fn new(horizon: Option<DueKey>, backed: bool, limits: Limits) -> Self {
        Window {
            entries: BTreeMap::new(),
            bytes: 0,
            horizon,
            arrivals: None,
            backed,
            limits,
        }
    }

    /// Takes in a newly scheduled entry (already sent to the store when backed). What it keeps
    /// it detaches from the publisher's read buffer: the window outlives the messages
    /// published around it (see [`Message::detached`]).
    pub fn insert(&mut self, key: DueKey, message: Arc<Message>) {
        if self.horizon.is_none_or(|h| key < h) {
            self.bytes += size(&message);
            self.entries.insert(key, Arc::new(message.detached()));
            self.trim();
        } else if let Some(arrivals) = &mut self.arrivals {
            arrivals.push((key, Arc::new(message.detached())));
        }
        // Otherwise it waits in the store until a read reaches it.
    }

    /// Drops the latest entries beyond the limits (they are in the store), moving the
    /// horizon back to them. Not while a read runs: its result is measured from the horizon.
    fn trim(&mut self) {
        if !self.backed || self.arrivals.is_some() {
            return;
        }
        while self.entries.len() > self.limits.max_count
            || (self.bytes > self.limits.max_bytes && self.entries.len() > 1)
        {
            let Some((key, message)) = self.entries.pop_last() else {
                break;
            };
            self.bytes -= size(&message);
            self.horizon = Some(key);
        }
    }

    /// The due time of the earliest entry in memory.
    pub fn first_due(&self) -> Option<u64> {
        self.entries.first_key_value().map(|(k, _)| k.due_ms)
    }

    /// Takes one entry out, if it is in memory.
    pub fn remove(&mut self, key: DueKey) -> Option<Arc<Message>> {
        let message = self.entries.remove(&key)?;
        self.bytes -= size(&message);
        Some(message)
    }

    /// Moves up to `max` entries due at `now_ms` (or before) to `out`, earliest first.
    pub fn pop_due(&mut self, now_ms: u64, max: usize, out: &mut Vec<(DueKey, Arc<Message>)>) {
        for _ in 0..max {
            match self.entries.first_entry() {
                Some(entry) if entry.key().due_ms <= now_ms => {
                    let (key, message) = entry.remove_entry();
                    self.bytes -= size(&message);
                    out.push((key, message));
                }
                _ => break,
            }
        }
    }

    /// Where a read from the store should start, when one is due: the window is running low
    /// and the store holds more, and no read runs. Marks the read as started.
    pub fn begin_load(&mut self) -> Option<DueKey> {
        let horizon = self.horizon?;
        if self.arrivals.is_some()
            || self.entries.len() >= self.limits.low_water()
            || self.bytes >= self.limits.max_bytes / 4
        {
            return None;
        }
        self.arrivals = Some(Vec::new());
        Some(horizon)
    }

    /// The read started by [`Self::begin_load`] found `loaded` (in key order, from the
    /// horizon on) and covered everything before `resume`; `None` when it read to the
    /// schedule's end.
    pub fn end_load(&mut self, loaded: Vec<(DueKey, Arc<Message>)>, resume: Option<DueKey>) {
        let horizon = resume;
        let arrivals = self.arrivals.take().unwrap_or_default();
        self.horizon = horizon;
        for (key, message) in loaded.into_iter().chain(arrivals) {
            if horizon.is_none_or(|h| key < h) {
                let size = size(&message);
                if let Some(old) = self.entries.insert(key, message) {
                    // Read back and also kept aside: the same entry.
                    self.bytes -= self::size(&old);
                }
                self.bytes += size;
            }
        }
        self.trim();
    }

    /// The read started by [`Self::begin_load`] failed: nothing changes (what was kept aside
    /// is in the store, at or after the horizon).
    pub fn abort_load(&mut self) {
        self.arrivals = None;
    }

    /// Whether a read from the store runs.
    #[cfg(test)]
    pub fn loading(&self) -> bool {
        self.arrivals.is_some()
    }

    /// Whether every entry of the schedule is in memory.
    #[cfg(test)]
    pub fn complete(&self) -> bool {
        self.horizon.is_none()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
        self.horizon = None;
        self.arrivals = None;
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
