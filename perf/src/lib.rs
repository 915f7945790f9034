//! warren-perf: an AMQP 0-9-1 load generator modelled on RabbitMQ's PerfTest, with its own
//! lean client on tokio + `warren-protocol` (no lapin), so it works against any broker and is
//! not the bottleneck. This module owns a run: topology setup, spawning one task per producer
//! and consumer, the per-second report, deciding when the run is over, and the [`Summary`].
//!
//! - [`config`]: flags, URI, queue arguments.  - [`client`]: connection and handshake.
//! - [`wire`]: frame decode fast path, publish template.  - [`producer`] / [`consumer`].
//! - [`stats`]: counters, histograms, summary.  - [`sink`]: the fake broker of `--sink`.
//! - [`idle`]: `--idle-connections`, connections that only stay open.
//! - [`declare`]: `--declare-queues`, a mode that only declares queues.
//! - [`bindings`]: `--topic-bindings`, N topic patterns on one queue and their routing keys.
//! - [`pipeline`]: setup methods pipelined over several channels of one connection.
//! - [`order`]: the delivery order checks of consumers (per producer, per priority).
//! - [`delay`]: `--delays`: x-delay headers or TTL holding queues, and lateness.
//! - [`progress`]: per-second lines, or a status line on a terminal.

pub mod bindings;
pub mod client;
pub mod config;
pub mod consumer;
pub mod declare;
pub mod delay;
pub mod idle;
pub mod order;
pub mod pipeline;
pub mod producer;
pub mod progress;
pub mod sink;
pub mod stats;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use amq_protocol::protocol::{AMQPClass, exchange, queue};
use amq_protocol::types::FieldTable;
use tokio::sync::watch;

pub use config::Config;
pub use stats::{ConsumerSummary, LatencySummary, Summary};

use client::{CHANNEL, Conn};
use config::{Uri, parse_uri, short_str};
use progress::Progress;
use stats::{Reporter, Stats};

/// An error reported to the user (never a panic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl Error {
    pub fn msg(s: &str) -> Error {
        Error(s.to_string())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// With every producer done and consumers caught up or silent this long, the run is over.
const DRAIN_IDLE: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(50);

/// Runs a whole benchmark and returns its summary (also printed, as text or JSON).
pub async fn run(config: Config) -> Result<Summary, Error> {
    config.validate()?;
    let uri = if config.sink {
        let addr = sink::start().await?;
        parse_uri(&format!("amqp://guest:guest@{addr}/%2f"))?
    } else {
        parse_uri(&config.uri)?
    };
    let queues = config.queue_names();
    if !config.predeclared {
        declare(&uri, &config, &queues).await?;
    }
    let exchange = config.exchange.clone().unwrap_or_default();
    let topic_bindings = match config.topic_bindings {
        0 => None,
        n if config.predeclared => Some(bindings::BindSummary {
            bindings: n,
            bind_secs: 0.0,
            bind_rate: 0.0,
        }),
        _ => Some(bindings::bind(&uri, &config, &queues[0], &exchange).await?),
    };
    let stats = Arc::new(Stats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let producers_done = Arc::new(AtomicUsize::new(0));
    let consumers_done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    let consumer_arguments = config.consumer_arguments()?;
    let delays = config.delays()?;

    for id in 0..config.consumers {
        let spec = consumer::ConsumerSpec {
            id,
            uri: uri.clone(),
            queue: queues[id % queues.len()].clone(),
            auto_ack: config.auto_ack,
            prefetch: config.prefetch,
            ack_every: config.multi_ack_every,
            get: config.get,
            arguments: consumer_arguments.clone(),
            messages: config.cmessages,
        };
        let (stats, stop, done) = (stats.clone(), stop_rx.clone(), consumers_done.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = consumer::run(spec, stats.clone(), stop).await {
                stats.error(&format!("consumer {id}"), e);
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    let start = Instant::now();
    for id in 0..config.producers {
        let queue = &queues[id % queues.len()];
        let routing_key = config.routing_key.clone().unwrap_or_else(|| queue.clone());
        let targets = match config.topic_bindings {
            0 => delay::targets(config.delay_mode(), &exchange, &routing_key, queue, &delays),
            n => bindings::targets(&exchange, id, config.producers, n),
        };
        let spec = producer::ProducerSpec {
            id,
            uri: uri.clone(),
            targets,
            message: wire::MessageSpec {
                producer: id,
                persistent: config.persistent,
                size: config.size,
                priorities: config.priorities,
                expiration: config.expiration.clone(),
            },
            confirm: config.confirm,
            rate: config.rate,
            messages: config.pmessages,
        };
        let (stats, stop, done) = (stats.clone(), stop_rx.clone(), producers_done.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = producer::run(spec, stats.clone(), stop).await {
                stats.error(&format!("producer {id}"), e);
            }
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }

    let mut reporter = Reporter::new(start);
    let mut progress = Progress::new(&config);
    let mut next_report = start + Duration::from_secs(1);
    let deadline = (config.time > 0).then(|| start + Duration::from_secs(config.time));
    let mut last_consumed = (0u64, Instant::now());
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut ctrl_c_armed = true;
    let mut p_done_at: Option<Instant> = None;
    // Delayed messages are due up to the longest delay after the last publish: consumers get
    // that long (then the usual idle second) before the run calls them silent.
    let delay_grace = match delays.iter().max() {
        Some(&d) if config.consumers > 0 => Duration::from_millis(d),
        _ => Duration::ZERO,
    };
    let end = loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            r = &mut ctrl_c, if ctrl_c_armed => {
                if r.is_ok() {
                    break Instant::now();
                }
                ctrl_c_armed = false; // no signal handling here: just never interrupted
            }
        }
        let now = Instant::now();
        stats.blocking.sample(now);
        if now >= next_report {
            progress.report(reporter.tick(&stats));
            next_report += Duration::from_secs(1);
        } else {
            progress.refresh(now.duration_since(start), &stats);
        }
        if deadline.is_some_and(|d| now >= d) {
            break now;
        }
        let consumed = stats.consumed.load(Ordering::Relaxed);
        if consumed != last_consumed.0 {
            last_consumed = (consumed, now);
        }
        let c_done = consumers_done.load(Ordering::SeqCst) == config.consumers;
        if config.producers == 0 {
            if c_done {
                break now;
            }
            continue;
        }
        if producers_done.load(Ordering::SeqCst) < config.producers {
            continue;
        }
        let p_done_at = *p_done_at.get_or_insert(now);
        // Through the default exchange, or with --topic-bindings, each message reaches exactly
        // one queue once, so consumers have caught up once they consumed as many as were
        // published.
        let one_copy_each = config.exchange.is_none() || config.topic_bindings > 0;
        let caught_up = one_copy_each && consumed >= stats.published.load(Ordering::Relaxed);
        if c_done || caught_up {
            break now;
        }
        if now.duration_since(last_consumed.1) >= DRAIN_IDLE
            && now.duration_since(p_done_at) >= delay_grace + DRAIN_IDLE
        {
            break last_consumed.1.max(p_done_at);
        }
    };
    progress.finish();
    let _ = stop_tx.send(true);
    for task in tasks {
        let handle = task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .is_err()
        {
            handle.abort();
        }
    }
    let mut summary = stats.summary(end.duration_since(start), config.confirm > 0);
    summary.topic_bindings = topic_bindings;
    if config.json {
        let json = serde_json::to_string(&summary).map_err(|e| Error(format!("json: {e}")))?;
        println!("{json}");
    } else {
        println!("{summary}");
    }
    Ok(summary)
}

/// Declares the exchange (unless it is a predefined `amq.*` one), the queues and bindings
/// (except `--topic-bindings`' own), and with `--delay-mode ttl-queues` each queue's holding
/// queues.
async fn declare(uri: &Uri, config: &Config, queues: &[String]) -> Result<(), Error> {
    let mut conn = Conn::open(uri).await?;
    let exchange = config.exchange.as_deref().unwrap_or("");
    if !exchange.is_empty() && !exchange.starts_with("amq.") {
        let declare = exchange::Declare {
            exchange: short_str(exchange)?,
            kind: short_str(&config.exchange_type)?,
            passive: false,
            durable: config.durable,
            auto_delete: false,
            internal: false,
            nowait: false,
            arguments: config.exchange_arguments()?,
        };
        match conn
            .call(
                AMQPClass::Exchange(exchange::AMQPMethod::Declare(declare)),
                CHANNEL,
            )
            .await?
        {
            AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(_)) => {}
            other => {
                return Err(Error(format!(
                    "expected exchange.declare-ok, got {other:?}"
                )));
            }
        }
    }
    let arguments = config.queue_arguments()?;
    let holding = match config.delay_mode() {
        delay::DelayMode::TtlQueues => delay::distinct(&config.delays()?),
        delay::DelayMode::Header => Vec::new(),
    };
    for q in queues {
        declare_queue(&mut conn, config, q, arguments.clone()).await?;
        for &d in &holding {
            let name = delay::holding_queue(q, d);
            declare_queue(
                &mut conn,
                config,
                &name,
                delay::holding_queue_arguments(q, d)?,
            )
            .await?;
        }
        // With --topic-bindings, the N patterns made by `bindings::bind` are the bindings.
        if !exchange.is_empty() && config.topic_bindings == 0 {
            let bind = queue::Bind {
                queue: short_str(q)?,
                exchange: short_str(exchange)?,
                routing_key: short_str(config.routing_key.as_deref().unwrap_or(q))?,
                nowait: false,
                arguments: FieldTable::default(),
            };
            match conn
                .call(AMQPClass::Queue(queue::AMQPMethod::Bind(bind)), CHANNEL)
                .await?
            {
                AMQPClass::Queue(queue::AMQPMethod::BindOk(_)) => {}
                other => return Err(Error(format!("expected queue.bind-ok, got {other:?}"))),
            }
        }
    }
    conn.close().await;
    Ok(())
}

async fn declare_queue(
    conn: &mut Conn,
    config: &Config,
    name: &str,
    arguments: FieldTable,
) -> Result<(), Error> {
    let declare = queue::Declare {
        queue: short_str(name)?,
        passive: false,
        durable: config.durable,
        exclusive: false,
        auto_delete: config.auto_delete,
        nowait: false,
        arguments,
    };
    match conn
        .call(
            AMQPClass::Queue(queue::AMQPMethod::Declare(declare)),
            CHANNEL,
        )
        .await?
    {
        AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_)) => Ok(()),
        other => Err(Error(format!("expected queue.declare-ok, got {other:?}"))),
    }
}

/// Prints a mode's summary: one JSON object with `--json`, else its text form.
pub(crate) fn print_summary<S: serde::Serialize + std::fmt::Display>(
    config: &Config,
    summary: &S,
) -> Result<(), Error> {
    if config.json {
        let json = serde_json::to_string(summary).map_err(|e| Error(format!("json: {e}")))?;
        println!("{json}");
    } else {
        print!("{summary}");
    }
    Ok(())
}
