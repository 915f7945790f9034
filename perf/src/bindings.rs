//! `--topic-bindings N`, part of a normal run with `--exchange X --exchange-type topic` and one
//! queue Q: before the consumers and producers start, Q is bound to X with N distinct topic
//! patterns (pipelined over `--declare-channels` channels of one connection, see
//! [`crate::pipeline`]), and producers publish with routing keys from a matching set, round
//! robin, so that every message is routed by exactly one binding. Binding i (0..N-1) has one of
//! three shapes mixing `*` and `#`, by i mod 3:
//!
//! | i mod 3 | pattern      | its key      |
//! |---------|--------------|--------------|
//! | 0       | `s2.{i}.*.x` | `s2.{i}.a.x` |
//! | 1       | `s2.{i}.#`   | `s2.{i}.b.c` |
//! | 2       | `*.{i}.y`    | `s2.{i}.y`   |
//!
//! Every pattern names i in its second word, so key i matches pattern i and no other.
//! Producer p (of P) sends its k-th message with key (p + k * P) mod N. The bind time goes into
//! the run's summary as [`BindSummary`]. With `--predeclared` the bindings are taken to exist
//! already: nothing is bound and the bind time is 0.

use amq_protocol::protocol::{AMQPClass, queue};
use amq_protocol::types::FieldTable;
use serde::Serialize;

use crate::Error;
use crate::client::Conn;
use crate::config::{Config, Uri, short_str};
use crate::delay::Target;
use crate::pipeline;

/// The `--topic-bindings` part of a run's summary (flattened into its JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BindSummary {
    /// Bindings made (N).
    pub bindings: usize,
    /// Seconds from the first queue.bind to the last bind-ok (channel opening excluded).
    pub bind_secs: f64,
    /// `bindings / bind_secs` (0 with `--predeclared`).
    pub bind_rate: f64,
}

impl std::fmt::Display for BindSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  topic bindings {} made in {:.2}s ({:.0}/s)",
            self.bindings, self.bind_secs, self.bind_rate
        )
    }
}

/// The topic pattern of binding `i`.
pub fn pattern(i: usize) -> String {
    match i % 3 {
        0 => format!("s2.{i}.*.x"),
        1 => format!("s2.{i}.#"),
        _ => format!("*.{i}.y"),
    }
}

/// The routing key that binding `i`'s pattern, and only that one, matches.
pub fn key(i: usize) -> String {
    match i % 3 {
        0 => format!("s2.{i}.a.x"),
        1 => format!("s2.{i}.b.c"),
        _ => format!("s2.{i}.y"),
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Producer `producer`'s publish targets, one per message in its cycle: message k goes to
/// `exchange` with key (producer + k * producers) mod n. The cycle is n / gcd(n, producers)
/// long; over all producers every key is used equally often.
pub fn targets(exchange: &str, producer: usize, producers: usize, n: usize) -> Vec<Target> {
    let producers = producers.max(1);
    let cycle = n / gcd(n, producers);
    (0..cycle)
        .map(|k| Target {
            exchange: exchange.to_string(),
            routing_key: key((producer + k * producers) % n),
            delay_ms: None,
            x_delay_header: false,
        })
        .collect()
}

/// Checks the flags (nothing to check without `--topic-bindings`): a topic exchange, a single
/// queue, no delays.
pub fn validate(config: &Config) -> Result<(), Error> {
    if config.topic_bindings == 0 {
        return Ok(());
    }
    let exchange = config.exchange.as_deref().unwrap_or("");
    if exchange.is_empty() || config.exchange_type != "topic" {
        return Err(Error::msg(
            "--topic-bindings needs a topic exchange: --exchange X --exchange-type topic",
        ));
    }
    if config.queue_names().len() != 1 {
        return Err(Error::msg(
            "--topic-bindings binds a single queue: --queue Q (not --queues N)",
        ));
    }
    if config.delays.is_some() {
        return Err(Error::msg(
            "--topic-bindings cannot be combined with --delays",
        ));
    }
    Ok(())
}

/// Binds `queue` to `exchange` with the N patterns. Any failure fails the run: its routing
/// would not be what it claims.
pub async fn bind(
    uri: &Uri,
    config: &Config,
    queue: &str,
    exchange: &str,
) -> Result<BindSummary, Error> {
    let n = config.topic_bindings;
    let (queue_name, exchange_name) = (short_str(queue)?, short_str(exchange)?);
    let make = |i: usize| -> Result<AMQPClass, Error> {
        let bind = queue::Bind {
            queue: queue_name.clone(),
            exchange: exchange_name.clone(),
            routing_key: short_str(&pattern(i))?,
            nowait: false,
            arguments: FieldTable::default(),
        };
        Ok(AMQPClass::Queue(queue::AMQPMethod::Bind(bind)))
    };
    let is_ok = |m: &AMQPClass| matches!(m, AMQPClass::Queue(queue::AMQPMethod::BindOk(_)));
    let mut conn = Conn::open(uri).await?;
    let outcome = pipeline::run(&mut conn, config.declare_channels, n, make, is_ok).await;
    conn.close().await;
    if outcome.answered != n || !outcome.errors.is_empty() {
        return Err(Error(format!(
            "--topic-bindings: {} of {n} bindings made: {}",
            outcome.answered,
            outcome.errors.join("; ")
        )));
    }
    Ok(BindSummary {
        bindings: n,
        bind_secs: outcome.secs,
        bind_rate: outcome.rate(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AMQP topic matching, written plainly: `*` is one word, `#` zero or more.
    fn matches(pattern: &[&str], key: &[&str]) -> bool {
        match pattern.split_first() {
            None => key.is_empty(),
            Some((&"#", rest)) => (0..=key.len()).any(|skip| matches(rest, &key[skip..])),
            Some((&word, rest)) => match key.split_first() {
                Some((&k, key_rest)) => (word == "*" || word == k) && matches(rest, key_rest),
                None => false,
            },
        }
    }

    #[test]
    fn the_matcher_is_a_topic_matcher() {
        let m = |p: &str, k: &str| {
            matches(
                &p.split('.').collect::<Vec<_>>(),
                &k.split('.').collect::<Vec<_>>(),
            )
        };
        assert!(m("a.#", "a") && m("a.#", "a.b.c") && m("#", "x.y") && m("*.b", "a.b"));
        assert!(!m("a.*", "a") && !m("a.*", "a.b.c") && !m("*.b", "b"));
        assert!(m("#.c", "c") && m("a.#.c", "a.b.b.c") && !m("a.#.c", "a.b"));
    }

    #[test]
    fn each_key_matches_its_own_binding_and_no_other() {
        const N: usize = 3000;
        let patterns: Vec<String> = (0..N).map(pattern).collect();
        let keys: Vec<String> = (0..N).map(key).collect();
        let patterns: Vec<Vec<&str>> = patterns.iter().map(|p| p.split('.').collect()).collect();
        let distinct: std::collections::HashSet<&Vec<&str>> = patterns.iter().collect();
        assert_eq!(distinct.len(), N);
        assert!(
            patterns.iter().any(|p| p.contains(&"*")) && patterns.iter().any(|p| p.contains(&"#"))
        );
        for (i, k) in keys.iter().enumerate() {
            let words: Vec<&str> = k.split('.').collect();
            let hits: Vec<usize> = (0..N).filter(|&j| matches(&patterns[j], &words)).collect();
            assert_eq!(hits, [i], "key {k}");
        }
    }

    #[test]
    fn producers_cover_every_key_evenly() {
        for (producers, n) in [(1, 7), (2, 300), (3, 300), (4, 6), (5, 3)] {
            let mut uses = vec![0usize; n];
            for p in 0..producers {
                let t = targets("x", p, producers, n);
                // Message k of producer p: key (p + k * producers) mod n.
                for (k, target) in t.iter().enumerate().take(3) {
                    assert_eq!(target.routing_key, key((p + k * producers) % n));
                }
                for target in &t {
                    let i = (0..n).position(|i| key(i) == target.routing_key);
                    uses[i.expect("a known key")] += 1;
                }
            }
            let first = uses[0];
            assert!(
                first > 0 && uses.iter().all(|&u| u == first),
                "{producers} {n}: {uses:?}"
            );
        }
    }

    #[test]
    fn flags_are_checked() {
        let check = |args: &[&str]| Config::from_args(args).and_then(|c| c.validate());
        let topic = [
            "p",
            "--topic-bindings",
            "10",
            "--queue",
            "q",
            "--exchange",
            "t",
        ];
        assert!(check(&[&topic[..], &["--exchange-type", "topic"]].concat()).is_ok());
        assert!(check(&topic).is_err(), "a direct exchange");
        assert!(check(&["p", "--topic-bindings", "10", "--exchange-type", "topic"]).is_err());
        let two_queues = [
            "--exchange-type",
            "topic",
            "--queue-pattern",
            "q%d",
            "--queues",
            "2",
        ];
        let mut args = vec!["p", "--topic-bindings", "10", "--exchange", "t"];
        args.extend_from_slice(&two_queues);
        assert!(check(&args).is_err(), "two queues");
        let with_key = [
            &topic[..],
            &["--exchange-type", "topic", "--routing-key", "k"],
        ]
        .concat();
        assert!(check(&with_key).is_err(), "a routing key");
    }
}
