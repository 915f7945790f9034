//! A schedule: messages held until they are due, in the store's due-time index
//! (store/schedule_index.rs) with the near future in memory (window.rs), and the deadline that
//! wakes it (broker/deadlines.rs, run by delayed/mod.rs's task). A delayed exchange holds its
//! delayed messages in one; a queue with `x-retry-delays` holds the messages waiting for their
//! next attempt in one (queue/retry.rs).
//!
//! What survives what: a persistent message delayed by a durable exchange is written to the
//! log before its confirm, like a persistent message in a durable queue; anything else is
//! written to LMDB without the log (a crash may lose it; a graceful restart keeps it, as the
//! plugin keeps every delayed message). A non-durable exchange's schedule is a fresh id each
//! run, dropped at the next start.
//!
//! When an entry is due it is routed through the exchange (VHost::route_due), or put back into
//! its queue, and only then removed from the store: a crash in between delivers it again,
//! never loses it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use warren_protocol::properties::Property;

use super::window::{Limits, Window, successor};
use crate::broker::clock;
use crate::broker::deadlines::{Deadlines, Registered, Scheduled};
use crate::broker::durable::message_from_store;
use crate::broker::message::Message;
use crate::broker::publish::Publisher;
use crate::broker::queue::Queue;
use crate::broker::queue::stream::epoch_ms;
use crate::broker::vhost::VHost;
use crate::store::{DueKey, MessageRecord, Store};

/// Entries routed per wake-up; more due ones wait for the next (1 ms later).
const FIRE_MAX: usize = 1024;
/// One read from the store: entries, and bytes of records.
const LOAD_COUNT: usize = 4096;
const LOAD_BYTES: usize = 8 << 20;
/// How long a read waits for the store to apply what it must see, before it tries again later.
const APPLY_WAIT: Duration = Duration::from_secs(10);

pub struct Schedule {
    registered: Registered,
    /// Where the schedule is kept: the store and the schedule's id there.
    store: Option<(Arc<Store>, u64)>,
    /// A durable exchange's or queue's: persistent messages go through the log.
    durable: bool,
    target: Target,
    vhost: Weak<VHost>,
    deadlines: Arc<Deadlines<Schedule>>,
    state: Mutex<State>,
    /// Entry ids when there is no store (with one, they are message ids).
    next_id: AtomicU64,
}

/// Where due messages go.
pub enum Target {
    /// Routed through the exchange of this name: the delayed exchange, or once it is deleted,
    /// one re-declared under its name, or nowhere (leftovers.rs).
    Exchange(Arc<str>),
    /// Back into a queue (a retry).
    Queue(Weak<Queue>),
    /// A vhost's pending half messages: due for a check-back (broker/half.rs).
    Half(Weak<VHost>),
}

struct State {
    window: Window,
    /// Messages held (in memory or not): the plugin's `messages_delayed`.
    count: u64,
    deleted: bool,
    /// Its exchange was deleted; the vhost keeps it until it is empty (leftovers.rs).
    left: bool,
    /// Entries by `message_id` (half messages, whose window holds everything).
    by_message_id: Option<HashMap<String, DueKey>>,
    /// Bumped when everything is dropped: a read from the store begun before is stale.
    generation: u64,
}

impl Scheduled for Schedule {
    fn registered(&self) -> &Registered {
        &self.registered
    }
}

/// Where a schedule lives, and what it holds already.
pub struct ScheduleSpec {
    pub store: Option<(Arc<Store>, u64)>,
    pub durable: bool,
    /// Entries the store holds for it already (a restart); 0 for a new exchange.
    pub restored: u64,
}

/// Where [`Schedule::add`] put a message.
#[derive(Debug, Clone, Copy)]
pub struct Added {
    pub key: DueKey,
    /// It went through the log: a publisher's confirm waits for the commit.
    pub logged: bool,
}

fn message_id(message: &Message) -> Option<String> {
    message
        .properties
        .short_str(Property::MessageId)
        .map(str::to_string)
}

/// The clock deadline (clock.rs) of a due time in ms since the epoch.
fn deadline(due_ms: u64) -> u64 {
    clock::now_ms().saturating_add(due_ms.saturating_sub(epoch_ms()))
}

impl Schedule {
    pub fn new(
        spec: ScheduleSpec,
        target: Target,
        vhost: Weak<VHost>,
        deadlines: Arc<Deadlines<Schedule>>,
    ) -> Arc<Self> {
        let indexed = matches!(target, Target::Half(_));
        let window = match (&spec.store, indexed) {
            // Half messages stay in memory: a commit takes its message at once.
            (Some(_), true) => Window::backed(spec.restored > 0, Limits::UNBOUNDED),
            (Some(_), false) => Window::backed(spec.restored > 0, Limits::DEFAULT),
            (None, _) => Window::in_memory(),
        };
        let schedule = Arc::new(Schedule {
            registered: Registered::default(),
            store: spec.store,
            durable: spec.durable,
            target,
            vhost,
            deadlines,
            state: Mutex::new(State {
                window,
                count: spec.restored,
                deleted: false,
                left: false,
                by_message_id: indexed.then(HashMap::new),
                generation: 0,
            }),
            next_id: AtomicU64::new(1),
        });
        if spec.restored > 0 {
            // Read the near future (and route what fell due while the broker was down) as
            // soon as the timer runs.
            schedule.deadlines.register(&schedule, clock::now_ms());
        }
        schedule
    }

    /// The store's id of this schedule.
    pub fn store_id(&self) -> Option<u64> {
        self.store.as_ref().map(|(_, id)| *id)
    }

    /// Messages held.
    pub fn messages_delayed(&self) -> u64 {
        self.state.lock().count
    }

    fn logged(&self, message: &Message) -> bool {
        self.durable && message.is_persistent()
    }

    /// Holds `message` for `delay_ms`.
    pub fn add(self: &Arc<Self>, message: Arc<Message>, delay_ms: u64) -> Added {
        let due_ms = epoch_ms().saturating_add(delay_ms);
        let logged = self.logged(&message);
        // To the store before the window: a read of the store that starts after this entry
        // is in the window's care sees it (window.rs).
        let key = match &self.store {
            Some((store, schedule_id)) => {
                let key = DueKey {
                    due_ms,
                    id: store.next_message_id(),
                };
                let record = MessageRecord {
                    exchange: message.exchange.clone(),
                    routing_key: message.routing_key.clone(),
                    properties: message.properties.raw().clone(),
                    body: message.body.clone(),
                };
                store.schedule(*schedule_id, key, Some(record), logged);
                key
            }
            None => DueKey {
                due_ms,
                id: self.next_id.fetch_add(1, Ordering::Relaxed),
            },
        };
        let first_due = {
            let mut state = self.state.lock();
            if state.deleted {
                return Added { key, logged };
            }
            if let (Some(index), Some(id)) = (&mut state.by_message_id, message_id(&message)) {
                index.insert(id, key);
            }
            state.window.insert(key, message);
            state.count += 1;
            state.window.first_due()
        };
        if let Some(first) = first_due {
            self.deadlines.register(self, deadline(first));
        }
        Added { key, logged }
    }

    /// Whether a message with this `message_id` is held (half messages).
    pub fn holds_message_id(&self, id: &str) -> bool {
        let state = self.state.lock();
        state
            .by_message_id
            .as_ref()
            .is_some_and(|i| i.contains_key(id))
    }

    /// Takes the message with this `message_id` out of memory (half messages); the caller
    /// routes or drops it, then calls [`Self::forget`].
    pub fn take_message_id(&self, id: &str) -> Option<(DueKey, Arc<Message>)> {
        let mut state = self.state.lock();
        let key = state.by_message_id.as_mut()?.remove(id)?;
        let message = state.window.remove(key)?;
        state.count = state.count.saturating_sub(1);
        Some((key, message))
    }

    /// Removes a taken entry from the store.
    pub fn forget(&self, key: DueKey, message: &Message) {
        if let Some((store, schedule_id)) = &self.store {
            store.unschedule(*schedule_id, key, self.logged(message));
        }
    }

    /// The deadline came: routes what is due, reads ahead from the store when the window runs
    /// low, and registers the next deadline.
    pub fn fire(self: &Arc<Self>) {
        let now = epoch_ms();
        let mut due = Vec::new();
        let (load, first_due, emptied) = {
            let mut state = self.state.lock();
            if state.deleted {
                return;
            }
            state.window.pop_due(now, FIRE_MAX, &mut due);
            state.count -= due.len() as u64;
            let emptied = state.left && state.count == 0;
            if let Some(index) = &mut state.by_message_id {
                for (_, message) in &due {
                    if let Some(id) = message_id(message) {
                        index.remove(&id);
                    }
                }
            }
            let generation = state.generation;
            let load = match &self.store {
                Some((store, _)) => state
                    .window
                    .begin_load()
                    .map(|from| (from, store.sent_ops(), generation)),
                None => None,
            };
            (load, state.window.first_due(), emptied)
        };
        self.route(&due);
        if emptied && let Some(vhost) = self.vhost.upgrade() {
            vhost.leftover_emptied(self);
            return;
        }
        if let Some((from, sent, generation)) = load {
            let schedule = self.clone();
            tokio::task::spawn_blocking(move || schedule.load(from, sent, generation));
        }
        if due.len() == FIRE_MAX {
            self.deadlines.register(self, clock::now_ms() + 1);
        } else if let Some(first) = first_due {
            self.deadlines.register(self, deadline(first));
        }
    }

    /// Routes due entries through the exchange (or puts them back into the queue), then takes
    /// them out of the store.
    fn route(&self, due: &[(DueKey, Arc<Message>)]) {
        if due.is_empty() {
            return;
        }
        match &self.target {
            Target::Exchange(exchange) => {
                if let Some(vhost) = self.vhost.upgrade() {
                    let mut publisher = Publisher::default();
                    for (_, message) in due {
                        vhost.route_due(exchange, message, &mut publisher);
                    }
                }
            }
            Target::Queue(queue) => {
                if let Some(queue) = queue.upgrade() {
                    for (_, message) in due {
                        queue.retry_due(message);
                    }
                }
            }
            Target::Half(vhost) => {
                if let Some(vhost) = vhost.upgrade() {
                    for (_, message) in due {
                        vhost.half_check_due(message);
                    }
                }
            }
        }
        if let Some((store, schedule_id)) = &self.store {
            for (key, message) in due {
                store.unschedule(*schedule_id, *key, self.logged(message));
            }
        }
    }

    /// Reads the schedule's next entries from the store, from `from` on, once the store has
    /// applied the first `sent` operations (everything sent before the read began). Blocking.
    /// Discarded if everything was dropped meanwhile (`generation` moved on).
    fn load(self: Arc<Self>, from: DueKey, sent: u64, generation: u64) {
        let Some((store, schedule_id)) = &self.store else {
            return;
        };
        let started = std::time::Instant::now();
        while store.applied_ops() < sent {
            if started.elapsed() > APPLY_WAIT {
                tracing::warn!(
                    exchange = self.exchange_name(),
                    "delayed messages: the store has not applied its writes for {APPLY_WAIT:?}; reading later"
                );
                self.abort_load(generation);
                self.deadlines.register(&self, clock::now_ms() + 1000);
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut loaded = Vec::new();
        let mut damaged = Vec::new();
        let mut last = None;
        let mut exchange_name = None;
        let read =
            store.read_schedule(*schedule_id, from, LOAD_COUNT, LOAD_BYTES, |key, record| {
                last = Some(key);
                match message_from_store(key.id, record, &mut exchange_name) {
                    Some(message) => loaded.push((key, message)),
                    None => damaged.push(key),
                }
            });
        let more = match read {
            Ok(more) => more,
            Err(e) => {
                tracing::error!(
                    exchange = self.exchange_name(),
                    "delayed messages: cannot read the schedule: {e}"
                );
                self.abort_load(generation);
                self.deadlines.register(&self, clock::now_ms() + 1000);
                return;
            }
        };
        let first_due = {
            let mut state = self.state.lock();
            if state.deleted || state.generation != generation {
                return;
            }
            if let Some(index) = &mut state.by_message_id {
                for (key, message) in &loaded {
                    if let Some(id) = message_id(message) {
                        index.insert(id, *key);
                    }
                }
            }
            state
                .window
                .end_load(loaded, last.filter(|_| more).map(successor));
            state.count = state.count.saturating_sub(damaged.len() as u64);
            state.window.first_due()
        };
        // A damaged record (logged by message_from_store) is dropped, not retried forever.
        for key in damaged {
            store.unschedule(*schedule_id, key, true);
        }
        if let Some(first) = first_due {
            self.deadlines.register(&self, deadline(first));
        }
    }

    /// A read failed: the next one starts where it did (unless everything was dropped since).
    fn abort_load(&self, generation: u64) {
        let mut state = self.state.lock();
        if state.generation == generation {
            state.window.abort_load();
        }
    }

    fn exchange_name(&self) -> String {
        match &self.target {
            Target::Exchange(name) => Some(name.to_string()),
            Target::Queue(q) => q.upgrade().map(|q| q.name.to_string()),
            Target::Half(v) => v
                .upgrade()
                .map(|v| format!("half messages of vhost {}", v.name)),
        }
        .unwrap_or_default()
    }

    /// Its exchange was deleted, and the vhost keeps it for what it holds: it goes on firing
    /// (routing by the exchange's name) and tells the vhost once it is empty. Returns what it
    /// holds; with nothing, it is not marked (the vhost deletes it instead).
    pub fn leave(&self) -> u64 {
        let mut state = self.state.lock();
        state.left = state.count > 0;
        state.count
    }

    /// The exchange (queue) was deleted: everything it held goes.
    pub fn delete(&self) {
        self.drop_all(true);
    }

    /// Drops everything it holds (a purge of its queue); it goes on taking new messages.
    pub fn clear(&self) {
        self.drop_all(false);
    }

    fn drop_all(&self, deleted: bool) {
        {
            let mut state = self.state.lock();
            state.deleted |= deleted;
            state.generation += 1;
            state.window.clear();
            state.count = 0;
            if let Some(index) = &mut state.by_message_id {
                index.clear();
            }
        }
        if let Some((store, schedule_id)) = &self.store {
            store.drop_schedule(*schedule_id);
        }
        self.deadlines.cancel(self);
    }
}
