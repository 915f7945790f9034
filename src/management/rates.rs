//! Rates, as RabbitMQ's management plugin reports them beside every counter and queue length
//! (`x_details: {"rate": R}`): per second, over the last statistics interval (RabbitMQ's
//! `collect_statistics_interval`, 5 s).
//!
//! One background task ([`run`], started with the management API, stopped at shutdown) takes a
//! sample every [`INTERVAL`]: the cumulative figures of every queue, exchange, connection,
//! channel and vhost, and of the node. [`Rates`] keeps, per object, the last sample and the
//! rates between it and the one before; handlers read counts live from the broker and rates
//! from here. Nothing is added to the message path: the sampler reads the counters the broker
//! keeps anyway (broker/message_counts.rs, `Queue::counts`, `Exchange::counts`).
//!
//! An object is known by its address ([`Key`]). Its sample holds a weak reference to it, so
//! that address cannot be taken by a new object (a queue deleted and declared again) while the
//! sample lives; objects gone by the next sample are forgotten with their samples.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tokio::sync::watch;

use super::Api;
use super::message_stats::{COUNTERS, QUEUE_LENGTHS};
use crate::alarms::{disk_free, open_descriptors, resident_memory};
use crate::broker::message_counts::MessageFigures;

/// RabbitMQ's default `collect_statistics_interval`.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Figures the node page shows a rate for (the churn counters add theirs).
pub const NODE_GAUGES: [&str; 4] = ["mem_used", "fd_used", "disk_free", "sockets_used"];

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

/// Named figures, in the order an object's kind lists them.
pub type Figures = Vec<(&'static str, u64)>;

/// One object's figures at one sample.
pub struct Sample {
    pub key: Key,
    /// Keeps `key`'s address from being reused while the sample is kept (`None`: the node).
    pub alive: Option<Weak<dyn Any + Send + Sync>>,
    pub figures: Figures,
}

impl Sample {
    pub fn of<T: Any + Send + Sync>(object: &Arc<T>, figures: Figures) -> Sample {
        let alive: Weak<dyn Any + Send + Sync> = Arc::downgrade(object) as _;
        Sample {
            key: Key::of(&**object),
            alive: Some(alive),
            figures,
        }
    }
}

/// What is kept of one object: its last figures and the rates that led to them.
struct Series {
    _alive: Option<Weak<dyn Any + Send + Sync>>,
    figures: Figures,
    rates: Vec<f64>,
}

/// The latest rates of every object seen at the last sample.
#[derive(Default)]
pub struct Rates {
    latest: RwLock<Latest>,
}

#[derive(Default)]
struct Latest {
    at: Option<Instant>,
    series: HashMap<Key, Series>,
}

/// Rates by figure name (0.0 for a name without one).
#[derive(Clone, Debug, Default)]
pub struct RateSet(Vec<(&'static str, f64)>);

impl RateSet {
    pub fn rate(&self, name: &str) -> f64 {
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
            Some(s) => RateSet(
                s.figures
                    .iter()
                    .map(|(n, _)| *n)
                    .zip(s.rates.clone())
                    .collect(),
            ),
            None => RateSet::default(),
        }
    }

    /// Takes a sample made at `now`: rates against the previous one, which it replaces.
    /// Objects missing from `samples` are forgotten.
    pub fn record(&self, samples: Vec<Sample>, now: Instant) {
        let mut latest = self.latest.write();
        let elapsed = latest
            .at
            .map(|at| now.saturating_duration_since(at).as_secs_f64())
            .filter(|secs| *secs > 0.0);
        let mut previous = std::mem::take(&mut latest.series);
        for sample in samples {
            let before = previous.remove(&sample.key);
            let rates = sample
                .figures
                .iter()
                .map(|(name, now_value)| {
                    let before_value = before.as_ref().and_then(|b| figure(&b.figures, name));
                    match (before_value, elapsed) {
                        (Some(was), Some(secs)) => per_second(was, *now_value, secs),
                        _ => 0.0,
                    }
                })
                .collect();
            latest.series.insert(
                sample.key,
                Series {
                    _alive: sample.alive,
                    figures: sample.figures,
                    rates,
                },
            );
        }
        latest.at = Some(now);
    }
}

fn figure(figures: &Figures, name: &str) -> Option<u64> {
    figures.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
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
        let Ok(samples) = tokio::task::spawn_blocking(move || sample(&sampling)).await else {
            return;
        };
        api.rates.record(samples, Instant::now());
        let broker = &api.broker;
        broker
            .connections
            .forget_deleted_vhosts(|vhost| broker.vhost(vhost).is_some());
    }
}

/// The figures of everything that has rates, now.
pub fn sample(api: &Api) -> Vec<Sample> {
    let broker = &api.broker;
    let mut samples = vec![node_sample(api)];
    let by_vhost = broker.connections.message_totals_by_vhost();
    for vhost in broker.vhosts() {
        let mut lengths = [0u64; 3];
        for queue in vhost.queues() {
            let queue_lengths = queue_lengths(&queue);
            for (sum, n) in lengths.iter_mut().zip(queue_lengths) {
                *sum += n;
            }
            let mut figures = message_figures(&queue.counts.figures());
            figures.extend(QUEUE_LENGTHS.into_iter().zip(queue_lengths));
            samples.push(Sample::of(&queue, figures));
        }
        for exchange in vhost.exchanges() {
            let (publish_in, publish_out) = exchange.counts.figures();
            let figures = vec![("publish_in", publish_in), ("publish_out", publish_out)];
            samples.push(Sample::of(&exchange, figures));
        }
        let totals = by_vhost
            .get(vhost.name.as_ref())
            .copied()
            .unwrap_or_default();
        let mut figures = message_figures(&totals);
        figures.extend(QUEUE_LENGTHS.into_iter().zip(lengths));
        samples.push(Sample::of(&vhost, figures));
    }
    for connection in broker.connections.list() {
        let traffic = connection.traffic();
        let figures = vec![
            ("recv_oct", traffic.recv_oct),
            ("send_oct", traffic.send_oct),
        ];
        samples.push(Sample::of(&connection, figures));
        for (_, counts) in connection.channel_counts() {
            samples.push(Sample::of(&counts, message_figures(&counts.figures())));
        }
    }
    samples
}

/// A queue's messages, ready and unacknowledged (in [`QUEUE_LENGTHS`]' order).
pub fn queue_lengths(queue: &crate::broker::queue::Queue) -> [u64; 3] {
    let (ready, unacked) = queue.ready_and_unacked();
    let (ready, unacked) = (u64::from(ready), u64::from(unacked));
    [ready + unacked, ready, unacked]
}

fn message_figures(figures: &MessageFigures) -> Figures {
    COUNTERS
        .iter()
        .map(|name| (*name, figures.get(name)))
        .collect()
}

/// The node's churn counters and the figures its page shows rates for.
fn node_sample(api: &Api) -> Sample {
    let mut figures: Figures = api.broker.churn.figures().into_iter().collect();
    let gauges = [
        resident_memory().unwrap_or(0),
        open_descriptors().0,
        disk_free(&api.config.data_dir).unwrap_or(0),
        api.broker.connections.list().len() as u64,
    ];
    figures.extend(NODE_GAUGES.into_iter().zip(gauges));
    Sample {
        key: Key::NODE,
        alive: None,
        figures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(object: &Arc<u8>, publish: u64, messages: u64) -> Sample {
        Sample::of(object, vec![("publish", publish), ("messages", messages)])
    }

    #[test]
    fn rates_are_per_second_between_the_last_two_samples() {
        let rates = Rates::default();
        let queue = Arc::new(0u8);
        let start = Instant::now();
        rates.record(vec![sample(&queue, 10, 8)], start);
        assert_eq!(rates.of(Key::of(&*queue)).rate("publish"), 0.0);
        rates.record(vec![sample(&queue, 60, 3)], start + INTERVAL);
        let now = rates.of(Key::of(&*queue));
        assert_eq!(now.rate("publish"), 10.0);
        assert_eq!(now.rate("messages"), -1.0);
        assert_eq!(now.rate("not a figure"), 0.0);
        rates.record(vec![sample(&queue, 60, 3)], start + 2 * INTERVAL);
        assert_eq!(rates.of(Key::of(&*queue)).rate("publish"), 0.0);
    }

    #[test]
    fn objects_missing_from_a_sample_are_forgotten() {
        let rates = Rates::default();
        let (kept, gone) = (Arc::new(1u8), Arc::new(2u8));
        let start = Instant::now();
        rates.record(vec![sample(&kept, 0, 0), sample(&gone, 0, 0)], start);
        rates.record(
            vec![sample(&kept, 5, 0), sample(&gone, 5, 0)],
            start + INTERVAL,
        );
        assert_eq!(rates.of(Key::of(&*gone)).rate("publish"), 1.0);
        rates.record(vec![sample(&kept, 10, 0)], start + 2 * INTERVAL);
        assert_eq!(rates.of(Key::of(&*gone)).rate("publish"), 0.0);
        assert_eq!(rates.latest.read().series.len(), 1);
        // Nothing holds the forgotten object's memory any more.
        assert_eq!(Arc::weak_count(&gone), 0);
    }

    #[test]
    fn rate_sets_add_up_by_name() {
        let mut total = RateSet(vec![("publish", 1.5)]);
        total.add(&RateSet(vec![("publish", 2.0), ("ack", 1.0)]));
        assert_eq!(total.rate("publish"), 3.5);
        assert_eq!(total.rate("ack"), 1.0);
    }
}
