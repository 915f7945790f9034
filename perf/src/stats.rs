//! Shared run statistics: message counters (atomics, bumped once per batch), latency
//! histograms (each task records into its own local `hdrhistogram` and merges it into the
//! shared interval and total histograms every few milliseconds), the per-second [`Tick`] (its
//! plain line), each consumer's own count and rate ([`ConsumerSummary`]) and the final
//! [`Summary`] (with the connection.blocked notices of [`crate::client::Blocking`] and the
//! order checks of [`crate::order`]). Where ticks are shown: [`crate::progress`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::bindings::BindSummary;
use crate::client::Blocking;
use crate::delay::{DelayedSummary, is_early};

/// Largest latency tracked exactly (longer ones are clamped): 10 minutes in nanoseconds.
const MAX_NS: u64 = 600_000_000_000;
const FLUSH_EVERY: Duration = Duration::from_millis(20);

fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A latency histogram shared by all tasks: the current reporting interval and the whole run.
pub struct SharedHist {
    interval: Mutex<Histogram<u64>>,
    total: Mutex<Histogram<u64>>,
}

impl SharedHist {
    fn new() -> SharedHist {
        SharedHist {
            interval: Mutex::new(new_histogram()),
            total: Mutex::new(new_histogram()),
        }
    }

    /// p50 and p99 (ms) of the interval since the last call, which starts a new interval.
    fn take_interval(&self) -> Option<(f64, f64)> {
        let mut h = lock(&self.interval);
        let r =
            (!h.is_empty()).then(|| (ms(h.value_at_quantile(0.5)), ms(h.value_at_quantile(0.99))));
        h.reset();
        r
    }

    /// A copy of the whole run's histogram.
    fn total(&self) -> Histogram<u64> {
        lock(&self.total).clone()
    }

    fn summary(&self) -> LatencySummary {
        let h = lock(&self.total);
        LatencySummary {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// A task's own histogram, merged into a [`SharedHist`] periodically and when dropped.
pub struct LocalHist<'a> {
    shared: &'a SharedHist,
    h: Histogram<u64>,
    last_flush: Instant,
}

impl<'a> LocalHist<'a> {
    pub fn new(shared: &'a SharedHist) -> Self {
        LocalHist {
            shared,
            h: new_histogram(),
            last_flush: Instant::now(),
        }
    }

    pub fn record(&mut self, ns: u64) {
        self.h.saturating_record(ns.clamp(1, MAX_NS));
    }

    /// Merges into the shared histograms if the last merge is more than a few ms old.
    pub fn maybe_flush(&mut self) {
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        self.last_flush = Instant::now();
        if self.h.is_empty() {
            return;
        }
        // Same bounds on both sides: `add` cannot fail.
        let _ = lock(&self.shared.interval).add(&self.h);
        let _ = lock(&self.shared.total).add(&self.h);
        self.h.reset();
    }
}

impl Drop for LocalHist<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

pub struct Stats {
    pub published: AtomicU64,
    pub confirmed: AtomicU64,
    pub nacked: AtomicU64,
    pub consumed: AtomicU64,
    /// Deliveries out of order within a producer and priority level ([`crate::order`]).
    pub order_violations: AtomicU64,
    /// Deliveries of a higher priority than the consumer's previous one.
    pub priority_inversions: AtomicU64,
    /// connection.blocked / unblocked notices on every connection of the run.
    pub blocking: Arc<Blocking>,
    pub latency: SharedHist,
    pub confirm_latency: SharedHist,
    /// Delayed messages' lateness (ns; early ones as 0), see [`crate::delay`].
    pub lateness: SharedHist,
    /// Delayed messages delivered more than 1 ms early.
    pub early: AtomicU64,
    /// The earliest of those, in ns before its due time.
    pub max_early_ns: AtomicU64,
    pub errors: Mutex<Vec<String>>,
    /// Each consumer's result, added as it ends.
    pub consumers: Mutex<Vec<ConsumerSummary>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            published: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            nacked: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            order_violations: AtomicU64::new(0),
            priority_inversions: AtomicU64::new(0),
            blocking: Arc::default(),
            latency: SharedHist::new(),
            confirm_latency: SharedHist::new(),
            lateness: SharedHist::new(),
            early: AtomicU64::new(0),
            max_early_ns: AtomicU64::new(0),
            errors: Mutex::new(Vec::new()),
            consumers: Mutex::new(Vec::new()),
        }
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

#[derive(Clone, Copy, Default)]
pub(crate) struct Counts {
    pub published: u64,
    pub confirmed: u64,
    pub consumed: u64,
}

impl Stats {
    pub fn error(&self, who: &str, e: impl std::fmt::Display) {
        let msg = format!("{who}: {e}");
        eprintln!("warren-perf: {msg}");
        lock(&self.errors).push(msg);
    }

    /// Records one consumer's result (called once by each consumer as it ends).
    pub fn consumer_done(&self, c: ConsumerSummary) {
        lock(&self.consumers).push(c);
    }

    /// Records one delayed message's lateness (ns, negative when early) into `hist` (a
    /// [`LocalHist`] of [`Stats::lateness`]), counting it as early past the 1 ms slack.
    pub fn record_lateness(&self, hist: &mut LocalHist<'_>, lateness: i64) {
        if is_early(lateness) {
            self.early.fetch_add(1, Ordering::Relaxed);
            self.max_early_ns
                .fetch_max(lateness.unsigned_abs(), Ordering::Relaxed);
        }
        hist.record(lateness.max(0) as u64);
    }

    /// The delayed messages' summary, when any was consumed.
    fn delayed_summary(&self) -> Option<DelayedSummary> {
        let h = self.lateness.total();
        (!h.is_empty()).then(|| {
            DelayedSummary::from_histogram(
                &h,
                self.early.load(Ordering::Relaxed),
                self.max_early_ns.load(Ordering::Relaxed),
            )
        })
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts {
            published: self.published.load(Ordering::Relaxed),
            confirmed: self.confirmed.load(Ordering::Relaxed),
            consumed: self.consumed.load(Ordering::Relaxed),
        }
    }

    pub fn summary(&self, elapsed: Duration, confirms: bool) -> Summary {
        let c = self.counts();
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut consumers = lock(&self.consumers).clone();
        consumers.sort_by_key(|c| c.id);
        Summary {
            duration_secs: elapsed.as_secs_f64(),
            published: c.published,
            confirmed: c.confirmed,
            nacked: self.nacked.load(Ordering::Relaxed),
            consumed: c.consumed,
            publish_rate: c.published as f64 / secs,
            confirm_rate: c.confirmed as f64 / secs,
            consume_rate: c.consumed as f64 / secs,
            blocked: self.blocking.blocked.load(Ordering::Relaxed) > 0,
            blocked_count: self.blocking.blocked.load(Ordering::Relaxed),
            unblocked_count: self.blocking.unblocked.load(Ordering::Relaxed),
            blocked_secs: self.blocking.blocked_time().as_secs_f64(),
            blocked_reason: self.blocking.first_reason(),
            order_violations: self.order_violations.load(Ordering::Relaxed),
            priority_inversions: self.priority_inversions.load(Ordering::Relaxed),
            latency: self.latency.summary(),
            confirm_latency: confirms.then(|| self.confirm_latency.summary()),
            delayed: self.delayed_summary(),
            topic_bindings: None,
            consumers,
            errors: lock(&self.errors).clone(),
        }
    }
}

/// One per-second report: rates over the interval since the previous report, the interval's
/// end-to-end latency (p50, p99 in ms) and the running totals. Its `Display` is the plain
/// per-second line.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Since the start of the run.
    pub elapsed: Duration,
    pub published_rate: u64,
    pub confirmed_rate: u64,
    pub consumed_rate: u64,
    pub latency: Option<(f64, f64)>,
    pub published: u64,
    pub confirmed: u64,
    pub consumed: u64,
}

impl std::fmt::Display for Tick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "time {:.1}s, published {} msg/s, confirmed {} msg/s, consumed {} msg/s, latency p50/p99 ",
            self.elapsed.as_secs_f64(),
            self.published_rate,
            self.confirmed_rate,
            self.consumed_rate,
        )?;
        match self.latency {
            Some((p50, p99)) => write!(f, "{p50:.3}/{p99:.3} ms"),
            None => f.write_str("-/- ms"),
        }
    }
}

/// Produces the per-second [`Tick`]s from counter deltas and interval histograms.
pub struct Reporter {
    start: Instant,
    last: Instant,
    prev: Counts,
}

impl Reporter {
    pub fn new(start: Instant) -> Reporter {
        Reporter {
            start,
            last: start,
            prev: Counts::default(),
        }
    }

    /// The report for the interval since the previous call (which starts a new interval).
    pub fn tick(&mut self, stats: &Stats) -> Tick {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64().max(1e-9);
        let c = stats.counts();
        let rate = |a: u64, b: u64| (a.saturating_sub(b) as f64 / dt).round() as u64;
        let latency = stats.latency.take_interval();
        let _ = stats.confirm_latency.take_interval();
        let _ = stats.lateness.take_interval();
        let tick = Tick {
            elapsed: now.duration_since(self.start),
            published_rate: rate(c.published, self.prev.published),
            confirmed_rate: rate(c.confirmed, self.prev.confirmed),
            consumed_rate: rate(c.consumed, self.prev.consumed),
            latency,
            published: c.published,
            confirmed: c.confirmed,
            consumed: c.consumed,
        };
        self.last = now;
        self.prev = c;
        tick
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// One consumer's share of a run. Its clock starts at its consume-ok (or qos-ok / connection
/// with `--get`) and stops at its last message, so with `--cmessages` the rate is how fast that
/// consumer got its N messages (for a stream replayed from `first`: its replay rate).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerSummary {
    pub id: usize,
    pub consumed: u64,
    pub duration_secs: f64,
    pub consume_rate: f64,
}

impl ConsumerSummary {
    pub fn new(id: usize, consumed: u64, elapsed: Duration) -> ConsumerSummary {
        let secs = elapsed.as_secs_f64();
        ConsumerSummary {
            id,
            consumed,
            duration_secs: secs,
            consume_rate: if secs > 0.0 {
                consumed as f64 / secs
            } else {
                0.0
            },
        }
    }
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub duration_secs: f64,
    pub published: u64,
    pub confirmed: u64,
    pub nacked: u64,
    pub consumed: u64,
    pub publish_rate: f64,
    pub confirm_rate: f64,
    pub consume_rate: f64,
    /// The broker sent connection.blocked (a resource alarm) on some connection of the run.
    pub blocked: bool,
    /// connection.blocked notices received, over all connections.
    pub blocked_count: u64,
    /// connection.unblocked notices received.
    pub unblocked_count: u64,
    /// Seconds during which at least one connection was blocked (sampled every 50 ms).
    pub blocked_secs: f64,
    /// The reason the first connection.blocked gave (RabbitMQ: "low on memory" / "low on disk").
    pub blocked_reason: Option<String>,
    /// Deliveries of a message published before one already delivered from the same producer
    /// at the same priority level (or delivered again), over all consumers. See [`crate::order`].
    pub order_violations: u64,
    /// Deliveries whose priority was higher than that consumer's previous delivery's: none when
    /// a priority queue's backlog is drained with nothing publishing. See [`crate::order`].
    pub priority_inversions: u64,
    /// End-to-end latency, from the send timestamp in the body to its arrival at a consumer.
    pub latency: LatencySummary,
    /// Publish to confirm latency (only with --confirm).
    pub confirm_latency: Option<LatencySummary>,
    /// Delayed messages (`--delays`): count, lateness, early ones; none consumed: `None`.
    /// Their end-to-end latency (which includes the delay) is not in `latency`.
    pub delayed: Option<DelayedSummary>,
    /// `--topic-bindings`: bindings, bind_secs, bind_rate (fields of the summary's JSON object,
    /// absent without the flag).
    #[serde(flatten)]
    pub topic_bindings: Option<BindSummary>,
    /// Per consumer that got as far as consuming, by id (one still busy 3 s after the run ended
    /// is aborted and missing).
    pub consumers: Vec<ConsumerSummary>,
    pub errors: Vec<String>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "summary: {:.2}s", self.duration_secs)?;
        writeln!(
            f,
            "  published {} ({:.0} msg/s), confirmed {} ({:.0} msg/s), nacked {}, consumed {} ({:.0} msg/s)",
            self.published,
            self.publish_rate,
            self.confirmed,
            self.confirm_rate,
            self.nacked,
            self.consumed,
            self.consume_rate
        )?;
        if self.blocked {
            writeln!(
                f,
                "  connection.blocked {} time(s) ({}), unblocked {}, blocked for {:.1}s",
                self.blocked_count,
                self.blocked_reason.as_deref().unwrap_or("no reason given"),
                self.unblocked_count,
                self.blocked_secs
            )?;
        }
        if self.order_violations + self.priority_inversions > 0 {
            writeln!(
                f,
                "  order violations {}, priority inversions {}",
                self.order_violations, self.priority_inversions
            )?;
        }
        let l = &self.latency;
        write!(
            f,
            "  latency ({} samples) p50 {:.3} ms, p95 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            l.count, l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms
        )?;
        if let Some(c) = &self.confirm_latency {
            write!(
                f,
                "\n  confirm latency ({} samples) p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                c.count, c.p50_ms, c.p99_ms, c.max_ms
            )?;
        }
        if let Some(d) = &self.delayed {
            write!(f, "\n{d}")?;
        }
        if let Some(b) = &self.topic_bindings {
            write!(f, "\n{b}")?;
        }
        if self.consumers.len() > 1 {
            for c in &self.consumers {
                write!(
                    f,
                    "\n  consumer {}: {} in {:.2}s ({:.0} msg/s)",
                    c.id, c.consumed, c.duration_secs, c.consume_rate
                )?;
            }
        }
        for e in &self.errors {
            write!(f, "\n  error: {e}")?;
        }
        Ok(())
    }
}
