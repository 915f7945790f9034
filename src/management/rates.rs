//! Rates, as RabbitMQ's management plugin reports them beside every counter and queue length
//! (`x_details: {"rate": R}`): per second, over the last statistics interval (RabbitMQ's
//! `collect_statistics_interval`, 5 s).
//!
//! One background task ([`run`], started with the management API, stopped at shutdown) takes a
//! sample every [`INTERVAL`]: the cumulative figures of every queue, exchange, connection,
//! channel and vhost, and of the node. [`Rates`] keeps, per object, the figures of the last
//! sample and the rates between it and the one before; handlers read counts live from the
//! broker and rates from here. Nothing is added to the message path: the sampler reads the
//! counters the broker keeps anyway (broker/message_counts.rs, `Queue::counts`,
//! `Exchange::counts`).
//!
//! An object is known by its address ([`Key`]). Its series holds a weak reference to it, so
//! that address cannot be taken by a new object (a queue deleted and declared again) while the
//! series lives; objects a sample no longer sees are forgotten. A sample updates the series in
//! place, and an object without traffic keeps no figures or rates (all zero), so a node with
//! many idle queues spends little memory or time on them.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{RwLock, RwLockWriteGuard};
use tokio::sync::watch;

use super::Api;
use crate::alarms::{disk_free, open_descriptors, resident_memory};
use crate::broker::message_counts::MessageFigures;

/// RabbitMQ's default `collect_statistics_interval`.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// What is sampled of a channel, and of a vhost (whose channels' totals come first).
const CHANNEL: [&str; 11] = [
    "publish",
    "confirm",
    "return_unroutable",
    "drop_unroutable",
    "deliver",
    "deliver_no_ack",
    "get",
    "get_no_ack",
    "get_empty",
    "redeliver",
    "ack",
];
const VHOST: [&str; 14] = [
    CHANNEL[0],
    CHANNEL[1],
    CHANNEL[2],
    CHANNEL[3],
    CHANNEL[4],
    CHANNEL[5],
    CHANNEL[6],
    CHANNEL[7],
    CHANNEL[8],
    CHANNEL[9],
    CHANNEL[10],
    "messages",
    "messages_ready",
    "messages_unacknowledged",
];
/// What is sampled of a queue: its counters, then its lengths.
const QUEUE: [&str; 11] = [
    "publish",
    "deliver",
    "deliver_no_ack",
    "get",
    "get_no_ack",
    "get_empty",
    "redeliver",
    "ack",
    "messages",
    "messages_ready",
    "messages_unacknowledged",
];
const EXCHANGE: [&str; 2] = ["publish_in", "publish_out"];
const CONNECTION: [&str; 2] = ["recv_oct", "send_oct"];
/// The figures the node page shows a rate for (after the churn counters in a node sample).
pub const NODE_GAUGES: [&str; 4] = ["mem_used", "fd_used", "disk_free", "sockets_used"];
const NODE: [&str; 11] = [
    "channel_closed",
    "channel_created",
    "connection_closed",
    "connection_created",
    "queue_created",
    "queue_declared",
    "queue_deleted",
    NODE_GAUGES[0],
    NODE_GAUGES[1],
    NODE_GAUGES[2],
    NODE_GAUGES[3],
];

/// An object whose figures are sampled: the address of the value an `Arc` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(usize);

impl Key {
    /// The node itself (no object lives at address 0).
    pub const NODE: Key = Key(0);

    /// The key of `object`, which must be the value inside an `Arc` to be sampled.
    pub fn of<T>(object: &T) -> Key {
        Key(object as *const T as usize)
    }
}

/// What is kept of one object: its last figures and the rates that led to them.
struct Series {
    _alive: Option<Weak<dyn Any + Send + Sync>>,
    /// The last sweep that saw the object.
    seen: u64,
    names: &'static [&'static str],
    /// `None`: every figure is 0 (an object without traffic).
    figures: Option<Box<[u64]>>,
    /// `None`: every rate is 0.
    rates: Option<Box<[f64]>>,
}

/// The latest rates of every object seen at the last sample.
#[derive(Default)]
pub struct Rates {
    latest: RwLock<Latest>,
}

#[derive(Default)]
struct Latest {
    at: Option<Instant>,
    sweeps: u64,
    // Looked up once per object per sample: ahash, not SipHash.
    series: HashMap<Key, Series, ahash::RandomState>,
}

/// Rates by figure name (0.0 for a name without one).
#[derive(Clone, Debug, Default)]
pub struct RateSet(Vec<(&'static str, f64)>);

impl RateSet {
    /// The rate of `name`; `deliver_get`'s is the sum of its four parts'.
    pub fn rate(&self, name: &str) -> f64 {
        if name == "deliver_get" {
            let parts = ["deliver", "deliver_no_ack", "get", "get_no_ack"];
            return parts.iter().map(|part| self.rate(part)).sum();
        }
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0.0, |(_, r)| *r)
    }

    /// Adds `other`'s rates to these (a total over several objects).
    pub fn add(&mut self, other: &RateSet) {
        for (name, rate) in &other.0 {
            match self.0.iter_mut().find(|(n, _)| n == name) {
                Some((_, mine)) => *mine += rate,
                None => self.0.push((name, *rate)),
            }
        }
    }
}

impl Rates {
    /// `key`'s rates over the last interval; none (every rate 0.0) before its second sample.
    pub fn of(&self, key: Key) -> RateSet {
        let latest = self.latest.read();
        match latest.series.get(&key) {
            Some(Series {
                names,
                rates: Some(rates),
                ..
            }) => RateSet(names.iter().copied().zip(rates.iter().copied()).collect()),
            _ => RateSet::default(),
        }
    }

    /// A sample made at `now`: each object's figures go in with [`Sweep::record`]; objects
    /// not recorded are forgotten when the sweep ends. Readers wait while it lasts.
    pub fn sweep(&self, now: Instant) -> Sweep<'_> {
        let mut latest = self.latest.write();
        let elapsed = latest
            .at
            .map(|at| now.saturating_duration_since(at).as_secs_f64())
            .filter(|secs| *secs > 0.0);
        latest.sweeps += 1;
        latest.at = Some(now);
        Sweep { latest, elapsed }
    }
}

/// One sample being taken (see [`Rates::sweep`]).
pub struct Sweep<'a> {
    latest: RwLockWriteGuard<'a, Latest>,
    /// Seconds since the previous sample, if there was one.
    elapsed: Option<f64>,
}

impl Sweep<'_> {
    /// `object`'s figures now, named by `names`.
    pub fn record<T: Any + Send + Sync>(
        &mut self,
        object: &Arc<T>,
        names: &'static [&'static str],
        figures: &[u64],
    ) {
        let alive = || Some(Arc::downgrade(object) as Weak<dyn Any + Send + Sync>);
        self.record_key(Key::of(&**object), alive, names, figures);
    }

    fn record_key(
        &mut self,
        key: Key,
        alive: impl FnOnce() -> Option<Weak<dyn Any + Send + Sync>>,
        names: &'static [&'static str],
        figures: &[u64],
    ) {
        let seen = self.latest.sweeps;
        let elapsed = self.elapsed;
        let now = (figures.iter().any(|f| *f > 0)).then(|| Box::<[u64]>::from(figures));
        match self.latest.series.get_mut(&key) {
            // An object's kind stays (its address is its own while the series lives).
            Some(series) if series.names.len() == names.len() => {
                series.seen = seen;
                series.rates = match (&series.figures, elapsed) {
                    (Some(was), Some(secs)) => {
                        let rates: Box<[f64]> = was
                            .iter()
                            .zip(figures)
                            .map(|(was, now)| per_second(*was, *now, secs))
                            .collect();
                        rates.iter().any(|r| *r != 0.0).then_some(rates)
                    }
                    (None, Some(secs)) if now.is_some() => Some(
                        figures
                            .iter()
                            .map(|now| per_second(0, *now, secs))
                            .collect(),
                    ),
                    _ => None,
                };
                // In place: an object whose figures stay put allocates nothing.
                match (&mut series.figures, now) {
                    (Some(kept), Some(_)) => kept.copy_from_slice(figures),
                    (kept, now) => *kept = now,
                }
            }
            _ => {
                let series = Series {
                    _alive: alive(),
                    seen,
                    names,
                    figures: now,
                    rates: None,
                };
                self.latest.series.insert(key, series);
            }
        }
    }
}

impl Drop for Sweep<'_> {
    fn drop(&mut self) {
        let seen = self.latest.sweeps;
        self.latest.series.retain(|_, series| series.seen == seen);
    }
}

/// The change per second, to one decimal as RabbitMQ shows it; negative for a queue that
/// shrank.
fn per_second(was: u64, now: u64, secs: f64) -> f64 {
    let rate = (now as f64 - was as f64) / secs;
    (rate * 10.0).round() / 10.0
}

/// Samples every [`INTERVAL`] until `shutdown`.
pub async fn run(api: Arc<Api>, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        // Every queue's lock is taken once: off the runtime's workers.
        let sampling = api.clone();
        if tokio::task::spawn_blocking(move || sample(&sampling))
            .await
            .is_err()
        {
            return;
        }
        let broker = &api.broker;
        broker
            .connections
            .forget_deleted_vhosts(|vhost| broker.vhost(vhost).is_some());
    }
}

/// Records the figures of everything that has rates, now.
pub fn sample(api: &Api) {
    let broker = &api.broker;
    // Read before the sweep, which keeps readers waiting while it lasts.
    let node = node_figures(api);
    let by_vhost = broker.connections.message_totals_by_vhost();
    let connections = broker.connections.list();
    let mut sweep = api.rates.sweep(Instant::now());
    sweep.record_key(Key::NODE, || None, &NODE, &node);
    for vhost in broker.vhosts() {
        let mut lengths = [0u64; 3];
        for queue in vhost.queues() {
            let queue_lengths = queue_lengths(&queue);
            for (sum, n) in lengths.iter_mut().zip(queue_lengths) {
                *sum += n;
            }
            let figures = queue_figures(&queue.counts.figures(), queue_lengths);
            sweep.record(&queue, &QUEUE, &figures);
        }
        for exchange in vhost.exchanges() {
            let (publish_in, publish_out) = exchange.counts.figures();
            sweep.record(&exchange, &EXCHANGE, &[publish_in, publish_out]);
        }
        let totals = by_vhost.get(vhost.name.as_ref()).copied();
        let mut figures = [0u64; VHOST.len()];
        figures[..CHANNEL.len()].copy_from_slice(&channel_figures(&totals.unwrap_or_default()));
        figures[CHANNEL.len()..].copy_from_slice(&lengths);
        sweep.record(&vhost, &VHOST, &figures);
    }
    for connection in connections {
        let traffic = connection.traffic();
        sweep.record(
            &connection,
            &CONNECTION,
            &[traffic.recv_oct, traffic.send_oct],
        );
        for (_, counts) in connection.channel_counts() {
            sweep.record(&counts, &CHANNEL, &channel_figures(&counts.figures()));
        }
    }
}

/// A queue's messages, ready and unacknowledged (as `message_stats::QUEUE_LENGTHS` names them).
/// A quorum queue's `messages` also counts the dead letters it holds (RabbitMQ's
/// `messages_total`; see dead_letter/at_least_once.rs).
pub fn queue_lengths(queue: &crate::broker::queue::Queue) -> [u64; 3] {
    let (ready, unacked) = queue.ready_and_unacked();
    let (ready, unacked) = (u64::from(ready), u64::from(unacked));
    let held = if queue.is_quorum() {
        queue.dead_letters_held().0
    } else {
        0
    };
    [ready + unacked + held, ready, unacked]
}

/// In [`QUEUE`]'s order (fields, not names: this runs for every queue at every sample).
fn queue_figures(c: &MessageFigures, [messages, ready, unacked]: [u64; 3]) -> [u64; QUEUE.len()] {
    [
        c.publish,
        c.deliver,
        c.deliver_no_ack,
        c.get,
        c.get_no_ack,
        c.get_empty,
        c.redeliver,
        c.ack,
        messages,
        ready,
        unacked,
    ]
}

/// In [`CHANNEL`]'s order.
fn channel_figures(c: &MessageFigures) -> [u64; CHANNEL.len()] {
    [
        c.publish,
        c.confirm,
        c.return_unroutable,
        c.drop_unroutable,
        c.deliver,
        c.deliver_no_ack,
        c.get,
        c.get_no_ack,
        c.get_empty,
        c.redeliver,
        c.ack,
    ]
}

/// The node's churn counters and the figures its page shows rates for, in [`NODE`]'s order.
fn node_figures(api: &Api) -> [u64; NODE.len()] {
    let mut figures = [0u64; NODE.len()];
    for (figure, (_, count)) in figures.iter_mut().zip(api.broker.churn.figures()) {
        *figure = count;
    }
    let gauges = [
        resident_memory().unwrap_or(0),
        open_descriptors().0,
        disk_free(&api.config.data_dir).unwrap_or(0),
        api.broker.connections.list().len() as u64,
    ];
    figures[NODE.len() - NODE_GAUGES.len()..].copy_from_slice(&gauges);
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIGURES: [&str; 2] = ["publish", "messages"];

    fn record(rates: &Rates, at: Instant, objects: &[(&Arc<u8>, [u64; 2])]) {
        let mut sweep = rates.sweep(at);
        for (object, figures) in objects {
            sweep.record(object, &FIGURES, figures);
        }
    }

    #[test]
    fn rates_are_per_second_between_the_last_two_samples() {
        let rates = Rates::default();
        let queue = Arc::new(0u8);
        let start = Instant::now();
        record(&rates, start, &[(&queue, [10, 8])]);
        assert_eq!(rates.of(Key::of(&*queue)).rate("publish"), 0.0);
        record(&rates, start + INTERVAL, &[(&queue, [60, 3])]);
        let now = rates.of(Key::of(&*queue));
        assert_eq!(now.rate("publish"), 10.0);
        assert_eq!(now.rate("messages"), -1.0);
        assert_eq!(now.rate("not a figure"), 0.0);
        record(&rates, start + 2 * INTERVAL, &[(&queue, [60, 3])]);
        assert_eq!(rates.of(Key::of(&*queue)).rate("publish"), 0.0);
    }

    #[test]
    fn an_object_without_traffic_keeps_nothing_until_it_has_some() {
        let rates = Rates::default();
        let queue = Arc::new(0u8);
        let start = Instant::now();
        record(&rates, start, &[(&queue, [0, 0])]);
        assert!(
            rates.latest.read().series[&Key::of(&*queue)]
                .figures
                .is_none()
        );
        record(&rates, start + INTERVAL, &[(&queue, [5, 5])]);
        assert_eq!(rates.of(Key::of(&*queue)).rate("messages"), 1.0);
    }

    #[test]
    fn objects_missing_from_a_sample_are_forgotten() {
        let rates = Rates::default();
        let (kept, gone) = (Arc::new(1u8), Arc::new(2u8));
        let start = Instant::now();
        record(&rates, start, &[(&kept, [0, 0]), (&gone, [0, 0])]);
        record(
            &rates,
            start + INTERVAL,
            &[(&kept, [5, 0]), (&gone, [5, 0])],
        );
        assert_eq!(rates.of(Key::of(&*gone)).rate("publish"), 1.0);
        record(&rates, start + 2 * INTERVAL, &[(&kept, [10, 0])]);
        assert_eq!(rates.of(Key::of(&*gone)).rate("publish"), 0.0);
        assert_eq!(rates.latest.read().series.len(), 1);
        // Nothing holds the forgotten object's memory any more.
        assert_eq!(Arc::weak_count(&gone), 0);
    }

    #[test]
    fn figures_are_in_the_order_of_their_names() {
        let counts = MessageFigures {
            publish: 1,
            routed: 99,
            drop_unroutable: 2,
            return_unroutable: 3,
            confirm: 4,
            deliver: 5,
            deliver_no_ack: 6,
            get: 7,
            get_no_ack: 8,
            get_empty: 9,
            redeliver: 10,
            ack: 11,
        };
        for (name, figure) in CHANNEL.iter().zip(channel_figures(&counts)) {
            assert_eq!(counts.get(name), figure, "{name}");
        }
        let queue = queue_figures(&counts, [20, 21, 22]);
        for (name, figure) in QUEUE.iter().zip(queue).take(8) {
            assert_eq!(counts.get(name), figure, "{name}");
        }
        assert_eq!(queue[8..], [20, 21, 22]);
    }

    #[test]
    fn rate_sets_add_up_by_name_and_deliver_get_is_the_sum_of_its_parts() {
        let mut total = RateSet(vec![("publish", 1.5), ("deliver", 1.0)]);
        total.add(&RateSet(vec![("publish", 2.0), ("get", 0.5)]));
        assert_eq!(total.rate("publish"), 3.5);
        assert_eq!(total.rate("deliver_get"), 1.5);
    }
}
