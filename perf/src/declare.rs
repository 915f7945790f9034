//! `--declare-queues N`, a mode of its own (it replaces the normal run): one connection
//! declares N queues named by `--queue-pattern` with indexes 0..N-1 (default pattern
//! [`DEFAULT_PATTERN`]), durable with `--durable`, auto-delete with `--auto-delete`, with the
//! `--queue-args` / `--queue-type` arguments, pipelined over `--declare-channels` channels (see
//! [`crate::pipeline`]). Then it closes the connection and exits, leaving the queues in place:
//! the caller measures the broker afterwards. Prints a [`DeclareSummary`] (one JSON object
//! with `--json`, else one line).

use amq_protocol::protocol::{AMQPClass, queue};
use serde::Serialize;

use crate::Error;
use crate::client::Conn;
use crate::config::{Config, parse_uri, short_str};
use crate::pipeline;

/// The queue names of `--declare-queues` without a `--queue-pattern`.
pub const DEFAULT_PATTERN: &str = "bench-s1-%d";

/// The result of `--declare-queues`; its JSON is the mode's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeclareSummary {
    /// Always "declare-queues".
    pub mode: &'static str,
    /// Queues asked for (N).
    pub requested: usize,
    /// queue.declare-oks received.
    pub declared: usize,
    /// Seconds from the first queue.declare to the last declare-ok (channel opening excluded).
    pub declare_secs: f64,
    /// `declared / declare_secs`.
    pub declare_rate: f64,
    /// Why queues are missing: a channel or the connection closed by the broker, and so on.
    pub errors: Vec<String>,
}

impl DeclareSummary {
    /// All N declared and nothing went wrong.
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.declared == self.requested
    }
}

impl std::fmt::Display for DeclareSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "declare queues: {} of {} declared in {:.2}s ({:.0}/s)",
            self.declared, self.requested, self.declare_secs, self.declare_rate
        )?;
        for e in &self.errors {
            writeln!(f, "  error: {e}")?;
        }
        Ok(())
    }
}

/// The pattern the queue names come from.
pub fn pattern(config: &Config) -> &str {
    config.queue_pattern.as_deref().unwrap_or(DEFAULT_PATTERN)
}

/// Queue number `index` of `pattern` (its first `%d` replaced).
pub fn queue_name(pattern: &str, index: usize) -> String {
    pattern.replacen("%d", &index.to_string(), 1)
}

/// Checks the flags of the mode (nothing to check without `--declare-queues`).
pub fn validate(config: &Config) -> Result<(), Error> {
    let n = config.declare_queues;
    if n == 0 {
        return Ok(());
    }
    if config.queue.is_some() {
        return Err(Error::msg(
            "--declare-queues names its queues with --queue-pattern, not --queue",
        ));
    }
    // The longest name is the last one's.
    short_str(&queue_name(pattern(config), n - 1))?;
    Ok(())
}

/// Declares the queues and prints the summary. `Err` only for a bad URI or bad arguments;
/// whatever goes wrong with the broker is in the summary's errors.
pub async fn run(config: &Config) -> Result<DeclareSummary, Error> {
    let uri = parse_uri(&config.uri)?;
    let arguments = config.queue_arguments()?;
    let pattern = pattern(config);
    let requested = config.declare_queues;
    let make = |i: usize| -> Result<AMQPClass, Error> {
        let declare = queue::Declare {
            queue: short_str(&queue_name(pattern, i))?,
            passive: false,
            durable: config.durable,
            exclusive: false,
            auto_delete: config.auto_delete,
            nowait: false,
            arguments: arguments.clone(),
        };
        Ok(AMQPClass::Queue(queue::AMQPMethod::Declare(declare)))
    };
    let is_ok = |m: &AMQPClass| matches!(m, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)));
    let outcome = match Conn::open(&uri).await {
        Ok(mut conn) => {
            let outcome =
                pipeline::run(&mut conn, config.declare_channels, requested, make, is_ok).await;
            conn.close().await;
            outcome
        }
        Err(e) => pipeline::Outcome {
            answered: 0,
            secs: 0.0,
            errors: vec![e.0],
        },
    };
    let mut summary = DeclareSummary {
        mode: "declare-queues",
        requested,
        declared: outcome.answered,
        declare_secs: outcome.secs,
        declare_rate: outcome.rate(),
        errors: outcome.errors,
    };
    if summary.errors.is_empty() && summary.declared != requested {
        summary.errors.push(format!(
            "only {} of {requested} queues declared",
            summary.declared
        ));
    }
    crate::print_summary(config, &summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_count_from_zero_with_the_default_pattern() {
        let c = Config::from_args(["p", "--declare-queues", "3"]).unwrap();
        c.validate().unwrap();
        let names: Vec<String> = (0..3).map(|i| queue_name(pattern(&c), i)).collect();
        assert_eq!(names, ["bench-s1-0", "bench-s1-1", "bench-s1-2"]);
        assert_eq!(c.declare_channels, 8);
        let c =
            Config::from_args(["p", "--declare-queues", "2", "--queue-pattern", "q.%d.x"]).unwrap();
        assert_eq!(queue_name(pattern(&c), 1), "q.1.x");
    }

    #[test]
    fn bad_combinations_are_refused() {
        let refused = |args: &[&str]| match Config::from_args(args) {
            Ok(c) => c.validate().is_err(),
            Err(_) => true,
        };
        assert!(refused(&["p", "--declare-queues", "3", "--queue", "q"]));
        assert!(refused(&[
            "p",
            "--declare-queues",
            "3",
            "--idle-connections",
            "2"
        ]));
        assert!(refused(&[
            "p",
            "--declare-queues",
            "3",
            "--declare-channels",
            "0"
        ]));
        let long = format!("{}-%d", "x".repeat(250));
        assert!(refused(&[
            "p",
            "--declare-queues",
            "100000",
            "--queue-pattern",
            &long
        ]));
        let json = serde_json::to_value(DeclareSummary {
            mode: "declare-queues",
            requested: 2,
            declared: 2,
            declare_secs: 0.5,
            declare_rate: 4.0,
            errors: vec![],
        })
        .unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys.len(),
            6,
            "mode requested declared declare_secs declare_rate errors: {keys:?}"
        );
    }
}
