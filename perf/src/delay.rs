//! Delayed messages (`--delays`, `--delay-mode`): what a producer publishes so that a broker
//! holds each message for a given number of milliseconds, and how late the consumer sees it.
//!
//! Two ways to delay a message:
//!
//! - `header` (the default): publish to `--exchange` (an `x-delayed-message` exchange, warren's
//!   built-in or RabbitMQ's plugin) with the header `x-delay: <ms>` (a long-long int).
//! - `ttl-queues`, the classic workaround on a RabbitMQ without the plugin: for each distinct
//!   delay D a holding queue `<queue>.delay.<D>` with `x-message-ttl=D`,
//!   `x-dead-letter-exchange=""` and `x-dead-letter-routing-key=<queue>`; messages go to the
//!   default exchange with routing key `<queue>.delay.<D>`, expire after D ms and are
//!   dead-lettered into `<queue>`.
//!
//! Message number k of each producer gets `delays[k mod n]` (round-robin, so every level gets
//! the same share). Its delay is also written into the body, after the send stamp and the
//! sequence field (bytes 16..24, see [`delay_field`]), so a consumer in any process can tell a
//! delayed message and its due time: lateness = receive time − (send time + delay). Both
//! stamps are wall-clock ([`crate::wire::now_ns`]). A message seen more than [`EARLY_SLACK_NS`]
//! before it was due counts as early; lateness below zero is recorded as zero in the histogram.

use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use clap::ValueEnum;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::config::short_str;
use crate::{Config, Error};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DelayMode {
    /// Header `x-delay: <ms>` on each message, published to --exchange (x-delayed-message).
    #[default]
    Header,
    /// Per-delay holding queues `<queue>.delay.<D>` (x-message-ttl=D, dead-lettered into the
    /// queue through the default exchange); publishes go to the default exchange.
    TtlQueues,
}

/// Largest delay: it must fit the 48 bits of the body's delay field (about 8,900 years).
pub const MAX_DELAY_MS: u64 = (1 << DELAY_BITS) - 1;
/// Body bytes a delayed message needs: send stamp, sequence field, delay field.
pub const MIN_SIZE: usize = 24;
/// A delivery this much before its due time counts as early (1 ms).
pub const EARLY_SLACK_NS: i64 = 1_000_000;

const DELAY_BITS: u32 = 48;
/// The top 16 bits of a body's delay field: marks the field as present.
const DELAY_TAG: u64 = 0xDE1A << DELAY_BITS;
const DELAY_MASK: u64 = (1 << DELAY_BITS) - 1;

/// Parses `--delays`: milliseconds, comma-separated, each 1..=[`MAX_DELAY_MS`].
pub fn parse_delays(spec: &str) -> Result<Vec<u64>, Error> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim) {
        let ok = !item.is_empty() && item.bytes().all(|b| b.is_ascii_digit());
        match item.parse::<u64>() {
            Ok(d) if ok && (1..=MAX_DELAY_MS).contains(&d) => out.push(d),
            _ => {
                return Err(Error(format!(
                    "--delays: '{item}' is not a delay in milliseconds (1 to {MAX_DELAY_MS})"
                )));
            }
        }
    }
    Ok(out)
}

/// The `--delays` / `--delay-mode` side of [`Config`].
impl Config {
    pub(crate) fn validate_delays(&self) -> Result<(), Error> {
        let delays = self.delays()?;
        if delays.is_empty() {
            return Ok(());
        }
        if self.size < MIN_SIZE {
            return Err(Error::msg(
                "--delays needs --size 24 or more (timestamp + sequence + delay)",
            ));
        }
        match self.delay_mode() {
            DelayMode::Header if self.exchange.is_none() => Err(Error::msg(
                "--delays in header mode publishes to an x-delayed-message exchange: give --exchange",
            )),
            DelayMode::TtlQueues if self.exchange.is_some() || self.routing_key.is_some() => {
                Err(Error::msg(
                    "--delay-mode ttl-queues publishes to the default exchange: drop --exchange / --routing-key",
                ))
            }
            DelayMode::TtlQueues => {
                for q in self.queue_names() {
                    for d in distinct(&delays) {
                        short_str(&holding_queue(&q, d))?;
                    }
                }
                Ok(())
            }
            DelayMode::Header => Ok(()),
        }
    }

    /// `--delays` (empty without it).
    pub fn delays(&self) -> Result<Vec<u64>, Error> {
        self.delays.as_deref().map_or(Ok(Vec::new()), parse_delays)
    }

    /// `--delay-mode`, header by default.
    pub fn delay_mode(&self) -> DelayMode {
        self.delay_mode.unwrap_or_default()
    }
}

/// The distinct delays, in increasing order (one holding queue each in ttl-queues mode).
pub fn distinct(delays: &[u64]) -> Vec<u64> {
    let mut d = delays.to_vec();
    d.sort_unstable();
    d.dedup();
    d
}

/// The body's delay field: a tag in the top 16 bits, the delay in ms in the low 48.
pub fn delay_field(delay_ms: u64) -> u64 {
    DELAY_TAG | (delay_ms & DELAY_MASK)
}

/// The delay in a body's delay field, if the field is one (any other bytes: `None`).
pub fn split_delay_field(field: u64) -> Option<u64> {
    (field & !DELAY_MASK == DELAY_TAG).then_some(field & DELAY_MASK)
}

/// The holding queue of delay `delay_ms` for `queue` in ttl-queues mode.
pub fn holding_queue(queue: &str, delay_ms: u64) -> String {
    format!("{queue}.delay.{delay_ms}")
}

/// The arguments of a holding queue: expire after the delay, dead-letter into `queue` through
/// the default exchange.
pub fn holding_queue_arguments(queue: &str, delay_ms: u64) -> Result<FieldTable, Error> {
    let mut t = FieldTable::default();
    let ttl = i64::try_from(delay_ms).map_err(|_| Error::msg("--delays: delay too large"))?;
    t.insert(short_str("x-message-ttl")?, AMQPValue::LongLongInt(ttl));
    t.insert(
        short_str("x-dead-letter-exchange")?,
        AMQPValue::LongString(LongString::from(Vec::new())),
    );
    t.insert(
        short_str("x-dead-letter-routing-key")?,
        AMQPValue::LongString(LongString::from(queue.as_bytes().to_vec())),
    );
    Ok(t)
}

/// Where one kind of message goes and what marks it: a producer cycles through its targets,
/// message number k using target k mod n.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub exchange: String,
    pub routing_key: String,
    /// The message's delay in ms (written into the body's delay field).
    pub delay_ms: Option<u64>,
    /// Send the delay as the `x-delay` header too (header mode).
    pub x_delay_header: bool,
}

/// A producer's targets: one without a delay when `delays` is empty, else one per entry of
/// `delays` (in its order, repeats kept, so the list is the round-robin cycle).
pub fn targets(
    mode: DelayMode,
    exchange: &str,
    routing_key: &str,
    queue: &str,
    delays: &[u64],
) -> Vec<Target> {
    if delays.is_empty() {
        return vec![Target {
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
            delay_ms: None,
            x_delay_header: false,
        }];
    }
    delays
        .iter()
        .map(|&d| match mode {
            DelayMode::Header => Target {
                exchange: exchange.to_string(),
                routing_key: routing_key.to_string(),
                delay_ms: Some(d),
                x_delay_header: true,
            },
            DelayMode::TtlQueues => Target {
                exchange: String::new(),
                routing_key: holding_queue(queue, d),
                delay_ms: Some(d),
                x_delay_header: false,
            },
        })
        .collect()
}

/// The `headers` property of a header-mode message: `x-delay` as a long-long int.
pub fn x_delay_headers(delay_ms: u64) -> Result<FieldTable, Error> {
    let d = i64::try_from(delay_ms).map_err(|_| Error::msg("--delays: delay too large"))?;
    let mut t = FieldTable::default();
    t.insert(short_str("x-delay")?, AMQPValue::LongLongInt(d));
    Ok(t)
}

/// Nanoseconds between a delayed message's due time (send stamp + delay) and its arrival;
/// negative when it arrived early. Saturates rather than overflowing on odd stamps.
pub fn lateness_ns(now_ns: u64, sent_ns: u64, delay_ms: u64) -> i64 {
    let due = sent_ns as i128 + delay_ms as i128 * 1_000_000;
    (now_ns as i128 - due).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Is a delivery `lateness` ns late an early one (more than [`EARLY_SLACK_NS`] before due)?
pub fn is_early(lateness: i64) -> bool {
    lateness < -EARLY_SLACK_NS
}

/// Delayed messages seen by the consumers: how many, how late, how many early.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DelayedSummary {
    /// Delayed messages consumed (those whose body carries a delay field).
    pub count: u64,
    /// Lateness (receive − (send + delay)) in ms; early ones count as 0 here.
    pub lateness_p50_ms: f64,
    pub lateness_p99_ms: f64,
    pub lateness_p999_ms: f64,
    pub lateness_max_ms: f64,
    /// Delivered more than 1 ms before they were due.
    pub early: u64,
    /// The earliest of the early ones, in ms before its due time (0 when none was early).
    pub max_early_ms: f64,
}

impl DelayedSummary {
    /// From the run's lateness histogram (ns), the early count and the largest earliness (ns).
    pub fn from_histogram(h: &Histogram<u64>, early: u64, max_early_ns: u64) -> DelayedSummary {
        let ms = |ns: u64| ns as f64 / 1e6;
        let q = |p: f64| {
            if h.is_empty() {
                0.0
            } else {
                ms(h.value_at_quantile(p))
            }
        };
        DelayedSummary {
            count: h.len(),
            lateness_p50_ms: q(0.5),
            lateness_p99_ms: q(0.99),
            lateness_p999_ms: q(0.999),
            lateness_max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
            early,
            max_early_ms: ms(max_early_ns),
        }
    }
}

impl std::fmt::Display for DelayedSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  delayed {}: lateness p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms; \
             early (> 1 ms) {}",
            self.count,
            self.lateness_p50_ms,
            self.lateness_p99_ms,
            self.lateness_p999_ms,
            self.lateness_max_ms,
            self.early
        )?;
        if self.max_early_ms > 0.0 {
            write!(f, " (earliest {:.3} ms before due)", self.max_early_ms)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_parse_and_reject() {
        assert_eq!(parse_delays("1000").unwrap(), [1000]);
        assert_eq!(
            parse_delays("3600000, 7200000,1").unwrap(),
            [3_600_000, 7_200_000, 1]
        );
        for bad in [
            "",
            "0",
            "-5",
            "1.5",
            "1s",
            "10,,20",
            "281474976710656",
            "+3",
        ] {
            assert!(parse_delays(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_delays(&MAX_DELAY_MS.to_string()).unwrap(),
            [MAX_DELAY_MS]
        );
        assert_eq!(distinct(&[30, 10, 30, 20]), [10, 20, 30]);
    }

    #[test]
    fn body_delay_field_round_trips_and_filler_is_not_one() {
        for d in [1, 1000, 7_200_000, MAX_DELAY_MS] {
            assert_eq!(split_delay_field(delay_field(d)), Some(d));
        }
        // Bytes 16..24 of an undelayed warren-perf body are filler: 16, 17, ... 23.
        let filler = u64::from_be_bytes([16, 17, 18, 19, 20, 21, 22, 23]);
        assert_eq!(split_delay_field(filler), None);
        assert_eq!(split_delay_field(0), None);
    }

    #[test]
    fn lateness_math() {
        let sent = 1_700_000_000_000_000_000u64;
        // Due at sent + 1 s; arrives 2.5 ms after that.
        assert_eq!(lateness_ns(sent + 1_002_500_000, sent, 1000), 2_500_000);
        assert_eq!(lateness_ns(sent + 1_000_000_000, sent, 1000), 0);
        // 0.5 ms early: not early; 1.5 ms early: early.
        let l = lateness_ns(sent + 999_500_000, sent, 1000);
        assert_eq!((l, is_early(l)), (-500_000, false));
        let l = lateness_ns(sent + 998_500_000, sent, 1000);
        assert_eq!((l, is_early(l)), (-1_500_000, true));
        assert!(!is_early(-EARLY_SLACK_NS));
        // Odd stamps saturate instead of overflowing.
        assert_eq!(lateness_ns(0, u64::MAX, MAX_DELAY_MS), i64::MIN);
        assert_eq!(lateness_ns(u64::MAX, 0, 0), i64::MAX);
    }

    #[test]
    fn targets_per_mode() {
        let none = targets(DelayMode::Header, "ex", "rk", "q", &[]);
        assert_eq!(none.len(), 1);
        assert_eq!((none[0].delay_ms, none[0].x_delay_header), (None, false));
        let h = targets(DelayMode::Header, "later", "rk", "q", &[10, 20, 10]);
        assert_eq!(h.len(), 3);
        assert!(
            h.iter()
                .all(|t| t.exchange == "later" && t.routing_key == "rk")
        );
        assert_eq!(h[1].delay_ms, Some(20));
        assert!(h[1].x_delay_header);
        let t = targets(DelayMode::TtlQueues, "", "q", "q", &[1000, 5000]);
        assert_eq!(t[0].exchange, "");
        assert_eq!(t[0].routing_key, "q.delay.1000");
        assert_eq!(t[1].routing_key, "q.delay.5000");
        assert_eq!((t[1].delay_ms, t[1].x_delay_header), (Some(5000), false));
    }

    #[test]
    fn holding_queue_arguments_dead_letter_into_the_queue() {
        let a = holding_queue_arguments("target", 3000).unwrap();
        let a = a.inner();
        assert_eq!(a.get("x-message-ttl"), Some(&AMQPValue::LongLongInt(3000)));
        assert_eq!(
            a.get("x-dead-letter-exchange"),
            Some(&AMQPValue::LongString(LongString::from(Vec::new())))
        );
        assert_eq!(
            a.get("x-dead-letter-routing-key"),
            Some(&AMQPValue::LongString(LongString::from(b"target".to_vec())))
        );
        let h = x_delay_headers(42).unwrap();
        assert_eq!(h.inner().get("x-delay"), Some(&AMQPValue::LongLongInt(42)));
    }

    #[test]
    fn summary_quantiles_from_the_histogram() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000_000, 3).unwrap();
        for ms in 1..=1000u64 {
            h.record(ms * 1_000_000).unwrap();
        }
        let s = DelayedSummary::from_histogram(&h, 2, 3_000_000);
        assert_eq!((s.count, s.early), (1000, 2));
        assert!(
            (s.lateness_p50_ms - 500.0).abs() < 1.0,
            "{}",
            s.lateness_p50_ms
        );
        assert!(
            (s.lateness_p99_ms - 990.0).abs() < 1.0,
            "{}",
            s.lateness_p99_ms
        );
        assert!(
            (s.lateness_p999_ms - 999.0).abs() < 1.0,
            "{}",
            s.lateness_p999_ms
        );
        assert!((s.lateness_max_ms - 1000.0).abs() < 1.0);
        assert_eq!(s.max_early_ms, 3.0);
        let empty = Histogram::<u64>::new_with_bounds(1, 600_000_000_000, 3).unwrap();
        let e = DelayedSummary::from_histogram(&empty, 0, 0);
        assert_eq!((e.count, e.lateness_p99_ms), (0, 0.0));
        assert!(e.to_string().contains("delayed 0"));
    }

    #[test]
    fn delays_modes_and_exchange_args() {
        let text = |s: &str| AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()));
        let c = Config::from_args([
            "p",
            "--exchange",
            "later",
            "--exchange-type",
            "x-delayed-message",
            "--delays",
            "1000,2000",
            "--size",
            "1024",
        ])
        .unwrap();
        c.validate().unwrap();
        assert_eq!(
            (c.delays().unwrap(), c.delay_mode()),
            (vec![1000, 2000], DelayMode::Header)
        );
        let a = c.exchange_arguments().unwrap();
        assert_eq!(a.inner().get("x-delayed-type"), Some(&text("direct")));
        // An explicit x-delayed-type wins; other exchange types get only what is given.
        let c = Config::from_args([
            "p",
            "-t",
            "x-delayed-message",
            "--exchange-args",
            "x-delayed-type=topic,alt=1",
        ])
        .unwrap();
        let a = c.exchange_arguments().unwrap();
        assert_eq!(a.inner().get("x-delayed-type"), Some(&text("topic")));
        assert_eq!(a.inner().get("alt"), Some(&AMQPValue::LongLongInt(1)));
        let plain = Config::from_args(["p"]).unwrap();
        assert!(plain.exchange_arguments().unwrap().inner().is_empty());
        assert!(plain.delays().unwrap().is_empty());

        let ttl = Config::from_args([
            "p",
            "--queue",
            "q",
            "--delays",
            "5",
            "--delay-mode",
            "ttl-queues",
            "--size",
            "24",
        ])
        .unwrap();
        ttl.validate().unwrap();
        assert_eq!(ttl.delay_mode(), DelayMode::TtlQueues);

        let bad = [
            // Header mode needs an exchange; ttl-queues must not have one.
            vec!["p", "--delays", "5", "--size", "24"],
            vec![
                "p",
                "--delays",
                "5",
                "--size",
                "24",
                "--delay-mode",
                "ttl-queues",
                "-e",
                "x",
            ],
            vec![
                "p",
                "--delays",
                "5",
                "--size",
                "24",
                "--delay-mode",
                "ttl-queues",
                "-k",
                "x",
            ],
            // The body holds the delay: 24 bytes at least.
            vec!["p", "--delays", "5", "-e", "x"],
            vec!["p", "--delays", "0", "-e", "x", "--size", "24"],
            vec!["p", "--exchange-args", "novalue"],
        ];
        for args in bad {
            let c = Config::from_args(args.clone()).unwrap();
            assert!(c.validate().is_err(), "{args:?}");
        }
        // --delay-mode without --delays, or an unknown mode: clap refuses.
        assert!(Config::from_args(["p", "--delay-mode", "header"]).is_err());
        assert!(Config::from_args(["p", "--delays", "5", "--delay-mode", "later"]).is_err());
    }
}
