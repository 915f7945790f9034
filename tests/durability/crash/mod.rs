//! The crash tests: publishers with confirms (and, in some cycles, a consumer that acks most of
//! what it gets) run against the real binary until it is killed with SIGKILL at a random moment;
//! the broker is restarted on the same data directory and it all happens again. At the end
//! everything left is consumed and checked (check.rs):
//!
//! - every confirmed message that must survive and that the consumer never acked is there:
//!   persistent ones in a classic queue; in a quorum queue, transient ones too (it stores every
//!   message, whatever its delivery mode);
//! - nothing appears that was never published, and (classic) no transient message outlives its
//!   broker;
//! - a message seen before comes again only with redelivered = true, and never twice in one
//!   broker's life; a quorum queue's deliveries carry `x-delivery-count` (0 when not
//!   redelivered);
//! - what is left is in publish order (per publisher, and older broker lives first); in a quorum
//!   queue, the messages no consumer had seen before. In a classic queue, so is what the
//!   consumer got in each life.
//!
//! One test per queue type, from one scenario ([`Kind`]): classic, quorum, and the stream
//! variant (stream.rs, with checks of its own: offsets and contents intact across crashes,
//! consumers resuming at the offset they ask for); and two paged classic shapes (paged.rs, with
//! checks of their own): a queue that dead-letters what the consumer rejects, and a priority
//! queue, on brokers that page beyond 50 ready messages.
//!
//! Acks racing with the kill may be lost (RabbitMQ does not promise otherwise either), so "acked
//! messages never come back" is not asserted here (it is in `messages`, across a graceful
//! restart); the number of acked messages that came back is printed.
//!
//! `WARREN_CRASH_CYCLES` (default 5) sets the number of kill/restart cycles;
//! `WARREN_CRASH_SEED` fixes the random choices (not the timing); `WARREN_CRASH_RATE` caps each
//! publisher's messages a second (default 2000, 0 = no cap). Run with `--nocapture` to see the
//! per-cycle summary lines.

mod check;
mod clients;
mod lives;
mod paged;
mod stream;
mod stream_check;
mod stream_reads;

use std::sync::Arc;
use std::time::{Duration, Instant};

use amq_protocol::types::FieldTable;
use futures_lite::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};

use crate::common::*;
use crate::support::*;

use check::check;
use clients::{Client, Rng, Seen, Settling, SharedLog, body_id, consumer, lock, publisher};
use lives::{Clients, Lives, cycles, describe_stuck, queue_depth, seed};

/// The queue a crash test runs against: its type, or one of the paged classic shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Classic,
    Quorum,
    Stream,
    /// A classic queue with a dead-letter exchange; the consumer rejects some deliveries
    /// (paged.rs).
    DeadLettering,
    /// A classic priority queue (paged.rs).
    Priority,
}

impl Kind {
    fn is_classic(self) -> bool {
        matches!(self, Kind::Classic | Kind::DeadLettering | Kind::Priority)
    }

    /// The brokers' configuration (TOML), if they need one: the paged shapes page beyond a few
    /// ready messages.
    fn config(self) -> Option<String> {
        matches!(self, Kind::DeadLettering | Kind::Priority).then(paged::config)
    }

    /// Whether the queue stores a message whatever its delivery mode, so that a confirmed
    /// transient message must survive a crash too.
    fn stores_transient(self) -> bool {
        matches!(self, Kind::Quorum | Kind::Stream)
    }

    /// The durable queue's declare arguments.
    fn arguments(self) -> FieldTable {
        let queue_type = match self {
            Kind::Classic => return FieldTable::default(),
            Kind::DeadLettering => return paged::dead_lettering_arguments(),
            Kind::Priority => return paged::priority_arguments(),
            Kind::Quorum => "quorum",
            Kind::Stream => "stream",
        };
        table(vec![("x-queue-type", long_str(queue_type))])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirmed_messages_survive_repeated_kill9() {
    queue_survives_repeated_kill9(Kind::Classic).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quorum_confirmed_messages_survive_repeated_kill9() {
    queue_survives_repeated_kill9(Kind::Quorum).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paged_dead_lettering_queue_survives_repeated_kill9() {
    queue_survives_repeated_kill9(Kind::DeadLettering).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paged_priority_queue_survives_repeated_kill9() {
    queue_survives_repeated_kill9(Kind::Priority).await
}

/// The scenario of the module doc against a classic (or paged classic) or quorum queue.
async fn queue_survives_repeated_kill9(kind: Kind) {
    let cycles = cycles();
    let seed = seed();
    println!("crash test ({kind:?}): {cycles} cycles, WARREN_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = DataDir::new();
    let config = kind.config();
    let mut lives = Lives::new(dir.path(), config.as_deref());
    let queue = unique("crash-q");
    let log: SharedLog = Arc::default();
    let started = Instant::now();
    let mut had_consumer = false;

    for life in 0..cycles {
        let mut this = lives.start(life, &mut rng);
        let broker = &mut this.broker;
        let depth = if life == 0 {
            let (conn, ch) = broker.channel().await;
            if kind == Kind::DeadLettering {
                paged::declare_dead_letter_target(&ch).await;
            }
            declare_durable_queue_with(&ch, &queue, kind.arguments()).await;
            let _ = conn.close(200, "bye".into()).await;
            0
        } else {
            queue_depth(broker, &queue, life).await
        };
        // Early check: everything confirmed and never acked (nor rejected) must be in the queue.
        let must_have = {
            let l = lock(&log);
            let settled = |id: &String| l.acked.contains(id) || l.rejected.contains_key(id);
            l.confirmed.iter().filter(|id| !settled(id)).count()
        };
        assert!(
            depth as usize >= must_have,
            "life {life}: after kill -9 the queue holds {depth} messages, but {must_have} \
             confirmed and unacked ones must be there (seed {seed})"
        );

        let (before_sent, before_confirmed, before_deliveries, before_acked, before_rejects) = {
            let l = lock(&log);
            (
                l.sent.len() + l.sent_transient.len(),
                l.confirmed.len(),
                l.deliveries.len(),
                l.acked.len(),
                rejects(&l),
            )
        };
        let publishers = rng.range(2, 4) as usize;
        // Some life has a consumer: the last one if none before did.
        let with_consumer = life > 0 && (rng.chance(60) || (life + 1 == cycles && !had_consumer));
        had_consumer |= with_consumer;
        let mut clients = Clients::new();
        let client = Client {
            kind,
            uri: broker.uri(),
            queue: queue.clone(),
            life,
            log: log.clone(),
            stop: clients.stop_signal(),
        };
        if with_consumer {
            let (seed, ack_percent) = (rng.next(), rng.range(70, 98));
            let reject_percent = match kind {
                Kind::DeadLettering => rng.range(10, 30),
                _ => 0,
            };
            let settling = Settling {
                seed,
                ack_percent,
                reject_percent,
            };
            let c = client.clone();
            clients.spawn("consumer", move |ready| consumer(c, ready, settling));
        }
        for p in 0..publishers {
            let (c, tag) = (client.clone(), format!("l{life}p{p}"));
            clients.spawn("publisher", move |ready| publisher(c, ready, tag));
        }
        let (delay, stuck) = clients.run_until_kill(broker, life, &mut rng).await;

        let l = lock(&log);
        println!(
            "cycle {}/{cycles}: {}, depth {depth}, {publishers} publishers{}, killed after {} ms: \
             published {}, confirmed {}, consumed {}, acked {}{}{}",
            life + 1,
            this.describe_start(),
            if with_consumer { " + consumer" } else { "" },
            delay.as_millis(),
            l.sent.len() + l.sent_transient.len() - before_sent,
            l.confirmed.len() - before_confirmed,
            l.deliveries.len() - before_deliveries,
            l.acked.len() - before_acked,
            match rejects(&l) - before_rejects {
                0 => String::new(),
                n => format!(", rejected {n}"),
            },
            describe_stuck(&stuck),
        );
    }

    // Final life: take everything that is left (and the dead letters), then check.
    let final_life = cycles;
    let mut broker = lives.spawn();
    let mut drain_violations = Vec::new();
    let drained = drain_final_life(&broker, &queue, final_life, &mut drain_violations).await;
    let mut drained_queues = vec![queue.as_str()];
    let dead = if kind == Kind::DeadLettering {
        drained_queues.push(paged::DEAD_LETTERS);
        drain_final_life(
            &broker,
            paged::DEAD_LETTERS,
            final_life,
            &mut drain_violations,
        )
        .await
    } else {
        Vec::new()
    };

    let (mut violations, paged_summary, summary) = {
        let mut l = lock(&log);
        let (mut violations, paged_summary) = paged::check(kind, &l, &queue, &drained, &dead);
        let (mut check_violations, summary) = check(kind, &mut l, drained, final_life);
        violations.append(&mut check_violations);
        (violations, paged_summary, summary)
    };
    violations.append(&mut drain_violations);
    if let Some(line) = paged_summary {
        println!("{line}");
    }
    println!("{summary}, {:.1} s", started.elapsed().as_secs_f64());

    // The drain's acks are durable across a clean stop.
    broker.terminate();
    let broker = lives.spawn();
    for name in drained_queues {
        let left = queue_depth(&broker, name, final_life + 1).await;
        if left != 0 {
            violations.push(format!(
                "{name}: {left} messages back after the final drain was acked and the broker \
                 stopped cleanly"
            ));
        }
    }
    drop(broker);

    if !violations.is_empty() {
        let n = violations.len();
        violations.truncate(30);
        panic!(
            "{kind:?}: {n} violations (seed {seed}):\n  {}",
            violations.join("\n  ")
        );
    }
}

/// Rejects the consumers sent so far.
fn rejects(l: &clients::Log) -> usize {
    l.rejected.values().sum()
}

/// The final life: consumes (and acks) every message the queue holds after the last crash, and
/// checks that no more come. A shortfall is a violation (the drain stops there).
async fn drain_final_life(
    broker: &TestBroker,
    queue: &str,
    final_life: usize,
    violations: &mut Vec<String>,
) -> Vec<Seen> {
    let depth = queue_depth(broker, queue, final_life).await;
    let (conn, ch) = broker.channel().await;
    ch.basic_qos(1000, BasicQosOptions::default())
        .await
        .expect("basic.qos for the final drain");
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "final".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("basic.consume for the final drain");
    let mut drained: Vec<Seen> = Vec::with_capacity(depth as usize);
    while drained.len() < depth as usize {
        let d = match tokio::time::timeout(WAIT, consumer.next()).await {
            Ok(Some(Ok(d))) => d,
            other => {
                violations.push(format!(
                    "final drain: {} of the {depth} messages the queue reported, then {}",
                    drained.len(),
                    match other {
                        Err(_) => format!("nothing for {WAIT:?}"),
                        Ok(end) => format!("{end:?}"),
                    }
                ));
                break;
            }
        };
        drained.push(Seen::of(&d, final_life));
        if drained.len().is_multiple_of(500) || drained.len() == depth as usize {
            ch.basic_ack(d.delivery_tag, BasicAckOptions { multiple: true })
                .await
                .expect("basic.ack in the final drain");
        }
    }
    let extra = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await;
    if let Ok(Some(Ok(d))) = extra {
        violations.push(format!(
            "final drain: a delivery beyond the {depth} messages the queue reported: {}",
            body_id(&d.data)
        ));
    }
    // A round trip: the acks were taken (a channel or connection the broker closed shows here).
    let passive = lapin::options::ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let round_trip = ch
        .exchange_declare(
            "amq.direct".into(),
            lapin::ExchangeKind::Direct,
            passive,
            FieldTable::default(),
        )
        .await;
    if let Err(e) = round_trip {
        violations.push(format!(
            "final drain: the channel failed after {} deliveries: {e:?}",
            drained.len()
        ));
    }
    let _ = conn.close(200, "bye".into()).await;
    drained
}
