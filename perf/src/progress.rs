//! Per-second output of a run: where the reports go and how they look. The stream is stdout, or
//! stderr with `--json` (whose stdout carries only the JSON summary).
//!
//! - Not a terminal (pipes, files, CI, `bench/compare`): one plain [`Tick`] line per second,
//!   `time 1.0s, published … msg/s, confirmed … msg/s, consumed … msg/s, latency p50/p99 …`.
//! - A terminal: a single status line redrawn in place a few times a second (progress bar over
//!   `--time`, or over the `--pmessages` / `--cmessages` total, elapsed time, the last second's
//!   rates and latency, running totals), erased before the final summary is printed.
//! - `--quiet`: nothing.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::Config;
use crate::stats::{Stats, Tick};

/// How often the terminal status line is redrawn between per-second reports.
const REDRAW: Duration = Duration::from_millis(200);
const BAR_WIDTH: usize = 20;
const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Off,
    Lines,
    Status,
}

/// What the status line shows, fixed for the run.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// `--time`, when set.
    pub duration: Option<Duration>,
    /// (messages to publish, or to consume when nothing publishes; counted on published).
    pub target: Option<(u64, bool)>,
    pub producers: bool,
    pub consumers: bool,
    pub confirms: bool,
}

impl Shape {
    pub fn of(config: &Config) -> Shape {
        let target = if config.time > 0 {
            None
        } else if config.pmessages > 0 && config.producers > 0 {
            Some((config.pmessages * config.producers as u64, true))
        } else if config.cmessages > 0 && config.consumers > 0 {
            Some((config.cmessages * config.consumers as u64, false))
        } else {
            None
        };
        Shape {
            duration: (config.time > 0).then(|| Duration::from_secs(config.time)),
            target,
            producers: config.producers > 0,
            consumers: config.consumers > 0,
            confirms: config.confirm > 0,
        }
    }
}

pub struct Progress {
    mode: Mode,
    to_stderr: bool,
    shape: Shape,
    last: Option<Tick>,
    drawn: bool,
    last_draw: Option<Instant>,
    frame: usize,
}

impl Progress {
    /// Plain lines or a status line, depending on whether the report stream is a terminal.
    pub fn new(config: &Config) -> Progress {
        let to_stderr = config.json;
        let tty = if to_stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        let mode = match (config.quiet, tty) {
            (true, _) => Mode::Off,
            (false, true) => Mode::Status,
            (false, false) => Mode::Lines,
        };
        Progress::with_mode(mode, to_stderr, Shape::of(config))
    }

    pub fn with_mode(mode: Mode, to_stderr: bool, shape: Shape) -> Progress {
        Progress {
            mode,
            to_stderr,
            shape,
            last: None,
            drawn: false,
            last_draw: None,
            frame: 0,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The once-a-second report.
    pub fn report(&mut self, tick: Tick) {
        match self.mode {
            Mode::Off => {}
            Mode::Lines => self.write(&format!("{tick}\n")),
            Mode::Status => {
                let elapsed = tick.elapsed;
                let totals = (tick.published, tick.confirmed, tick.consumed);
                self.last = Some(tick);
                self.draw(elapsed, totals);
            }
        }
    }

    /// Between reports: redraws the status line (elapsed time, bar, totals) every `REDRAW`.
    pub fn refresh(&mut self, elapsed: Duration, stats: &Stats) {
        if self.mode != Mode::Status || self.last_draw.is_some_and(|t| t.elapsed() < REDRAW) {
            return;
        }
        let c = stats.counts();
        self.draw(elapsed, (c.published, c.confirmed, c.consumed));
    }

    /// Erases the status line, so that the summary starts on a clean line.
    pub fn finish(&mut self) {
        if self.drawn {
            self.write("\r\x1b[2K");
            self.drawn = false;
        }
    }

    fn draw(&mut self, elapsed: Duration, totals: (u64, u64, u64)) {
        self.frame += 1;
        let line = status_line(&self.shape, self.last.as_ref(), elapsed, totals, self.frame);
        // Auto-wrap off while drawing: a line wider than the terminal is clipped, not wrapped
        // (a wrapped line could not be redrawn in place with `\r`).
        self.write(&format!("\r\x1b[?7l{line}\x1b[K\x1b[?7h"));
        self.drawn = true;
        self.last_draw = Some(Instant::now());
    }

    fn write(&self, s: &str) {
        if self.to_stderr {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(s.as_bytes());
            let _ = err.flush();
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(s.as_bytes());
            let _ = out.flush();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The terminal status line (no control characters), e.g.
/// `[########            ]  4.0/10s  pub 1.52M/s  cons 1.49M/s  p50/p99 12.1/30.4 ms  total 6.1M / 6.0M`.
pub fn status_line(
    shape: &Shape,
    last: Option<&Tick>,
    elapsed: Duration,
    (published, confirmed, consumed): (u64, u64, u64),
    frame: usize,
) -> String {
    let secs = elapsed.as_secs_f64();
    let mut s = match (shape.duration, shape.target) {
        (Some(d), _) => {
            let total = d.as_secs_f64().max(1e-9);
            format!("{}  {secs:.1}/{:.0}s", bar(secs / total), total)
        }
        (None, Some((total, on_published))) => {
            let done = if on_published { published } else { consumed };
            format!(
                "{}  {}/{} msgs  {secs:.1}s",
                bar(done as f64 / total.max(1) as f64),
                si(done),
                si(total)
            )
        }
        (None, None) => format!("{}  {secs:.1}s", SPINNER[frame % SPINNER.len()]),
    };
    let rate = |r: Option<u64>| r.map_or_else(|| "-".to_string(), si);
    if shape.producers {
        s += &format!("  pub {}/s", rate(last.map(|t| t.published_rate)));
        if shape.confirms {
            s += &format!("  conf {}/s", rate(last.map(|t| t.confirmed_rate)));
        }
    }
    if shape.consumers {
        s += &format!("  cons {}/s", rate(last.map(|t| t.consumed_rate)));
        match last.and_then(|t| t.latency) {
            Some((p50, p99)) => s += &format!("  p50/p99 {} / {} ms", ms(p50), ms(p99)),
            None => s += "  p50/p99 -",
        }
    }
    let mut totals = Vec::new();
    if shape.producers {
        totals.push(format!("pub {}", si(published)));
        if shape.confirms {
            totals.push(format!("conf {}", si(confirmed)));
        }
    }
    if shape.consumers {
        totals.push(format!("cons {}", si(consumed)));
    }
    if !totals.is_empty() {
        s += &format!("  total {}", totals.join(" "));
    }
    s
}

fn bar(fraction: f64) -> String {
    let filled = ((fraction.clamp(0.0, 1.0) * BAR_WIDTH as f64).round()) as usize;
    format!("[{}{}]", "#".repeat(filled), " ".repeat(BAR_WIDTH - filled))
}

/// 950, 12.3k, 1.52M.
fn si(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.2}M", n as f64 / 1e6),
    }
}

/// Milliseconds with about three significant digits.
fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick() -> Tick {
        Tick {
            elapsed: Duration::from_secs(4),
            published_rate: 1_520_000,
            confirmed_rate: 0,
            consumed_rate: 1_490_000,
            latency: Some((12.08, 30.4)),
            published: 6_100_000,
            confirmed: 0,
            consumed: 6_000_000,
        }
    }

    #[test]
    fn plain_line_is_unchanged() {
        assert_eq!(
            tick().to_string(),
            "time 4.0s, published 1520000 msg/s, confirmed 0 msg/s, consumed 1490000 msg/s, latency p50/p99 12.080/30.400 ms"
        );
        let t = Tick {
            latency: None,
            ..tick()
        };
        assert!(t.to_string().ends_with("latency p50/p99 -/- ms"));
    }

    #[test]
    fn status_line_with_duration() {
        let shape = Shape {
            duration: Some(Duration::from_secs(10)),
            producers: true,
            consumers: true,
            ..Shape::default()
        };
        let t = tick();
        let s = status_line(
            &shape,
            Some(&t),
            Duration::from_secs(4),
            (6_100_000, 0, 6_000_000),
            1,
        );
        assert_eq!(
            s,
            "[########            ]  4.0/10s  pub 1.52M/s  cons 1.49M/s  p50/p99 12.1 / 30.4 ms  total pub 6.10M cons 6.00M"
        );
    }

    #[test]
    fn status_line_with_message_target_and_confirms() {
        let shape = Shape {
            target: Some((2000, true)),
            producers: true,
            confirms: true,
            ..Shape::default()
        };
        let s = status_line(&shape, None, Duration::from_millis(500), (500, 400, 0), 0);
        assert_eq!(
            s,
            "[#####               ]  500/2.0k msgs  0.5s  pub -/s  conf -/s  total pub 500 conf 400"
        );
    }

    #[test]
    fn status_line_open_ended_spins() {
        let shape = Shape {
            consumers: true,
            ..Shape::default()
        };
        let s = status_line(&shape, None, Duration::from_secs(2), (0, 0, 7), 2);
        assert_eq!(s, "-  2.0s  cons -/s  p50/p99 -  total cons 7");
    }
}
