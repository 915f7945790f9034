//! `--idle-connections N --hold SECS`: opens N connections, each with channels 1..=K of
//! `--idle-channels K` (default 1) opened one after the other (at most `OPEN_IN_FLIGHT`
//! connections opening at a time), keeps them alive (heartbeats answered, server closes
//! noticed) for `--hold` seconds once all are open, then closes them. It measures nothing on the
//! broker itself: the caller samples the broker's memory while the connections are held. Prints
//! a summary (JSON with `--json`); "all N connections open" goes to stderr when the hold starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::Error;
use crate::client::{Conn, close_error};
use crate::config::{Config, parse_uri};
use crate::wire::Inbound;

/// Handshakes in flight at once while opening.
const OPEN_IN_FLIGHT: usize = 64;

#[derive(Debug, Clone, Serialize)]
pub struct IdleSummary {
    /// Connections asked for.
    pub requested: usize,
    /// Connections (each with all its channels open) that were up when the hold started.
    pub opened: usize,
    /// Channels each connection opened (`--idle-channels`).
    pub channels_per_connection: u16,
    /// Seconds from the first connect to the last connection's last channel.open-ok.
    pub open_secs: f64,
    /// Connections opened per second.
    pub open_rate: f64,
    /// Seconds the connections were held.
    pub hold_secs: f64,
    /// Connections the server closed or lost during the hold.
    pub lost: u64,
    pub errors: Vec<String>,
}

impl std::fmt::Display for IdleSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let channels = match self.channels_per_connection {
            1 => String::new(),
            k => format!(" ({k} channels each)"),
        };
        writeln!(
            f,
            "idle connections: {} of {} opened{channels} in {:.2}s ({:.0}/s), held {:.1}s, {} lost",
            self.opened, self.requested, self.open_secs, self.open_rate, self.hold_secs, self.lost
        )?;
        for e in &self.errors {
            writeln!(f, "  error: {e}")?;
        }
        Ok(())
    }
}

/// Keeps one connection alive until `stop`: answers nothing but sends heartbeats when due, and
/// counts the connection as lost if the server closes it or the socket fails.
async fn keep_alive(mut conn: Conn, mut stop: watch::Receiver<bool>, lost: Arc<AtomicU64>) {
    let check = conn.writer.heartbeat_check_interval();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(check) => {
                if conn.writer.heartbeat_if_idle().await.is_err() {
                    lost.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            r = conn.reader.fill() => {
                if r.is_err() {
                    lost.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                loop {
                    match conn.reader.frame() {
                        Ok(Some((_, Inbound::Method(m)))) if close_error(&m).is_some() => {
                            lost.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                        Err(_) => {
                            lost.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            }
        }
    }
    conn.close().await;
}

pub async fn run(config: &Config) -> Result<IdleSummary, Error> {
    let n = config.idle_connections;
    let channels = config.idle_channels;
    let uri = parse_uri(&config.uri)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let lost = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(OPEN_IN_FLIGHT));
    let mut opening = JoinSet::new();
    let start = Instant::now();
    for _ in 0..n {
        let (uri, gate) = (uri.clone(), gate.clone());
        opening.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let mut conn = Conn::open(&uri).await?;
            match conn.open_channels(channels).await {
                Ok(()) => Ok(conn),
                Err(e) => {
                    conn.close().await;
                    Err(e)
                }
            }
        });
    }
    let mut errors = Vec::new();
    let mut alive = JoinSet::new();
    let mut opened = 0;
    while let Some(r) = opening.join_next().await {
        match r {
            Ok(Ok(conn)) => {
                opened += 1;
                alive.spawn(keep_alive(conn, stop_rx.clone(), lost.clone()));
            }
            Ok(Err(e)) => {
                if errors.len() < 10 {
                    errors.push(e.0);
                }
            }
            Err(e) => errors.push(format!("open task: {e}")),
        }
    }
    let open_secs = start.elapsed().as_secs_f64();
    if !config.quiet {
        eprintln!("all {opened} connections open ({open_secs:.2}s); holding");
    }
    let held = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(config.hold)).await;
    let hold_secs = held.elapsed().as_secs_f64();
    let lost_n = lost.load(Ordering::Relaxed);
    let _ = stop_tx.send(true);
    // Graceful closes, but a slow broker must not keep us here for long.
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while alive.join_next().await.is_some() {}
    })
    .await;
    alive.abort_all();
    let skipped = n - opened;
    if skipped > 0 && errors.len() < 11 {
        errors.push(format!("{skipped} connections failed to open"));
    }
    let summary = IdleSummary {
        requested: n,
        opened,
        channels_per_connection: channels,
        open_secs,
        open_rate: opened as f64 / open_secs.max(1e-9),
        hold_secs,
        lost: lost_n,
        errors,
    };
    crate::print_summary(config, &summary)?;
    Ok(summary)
}
