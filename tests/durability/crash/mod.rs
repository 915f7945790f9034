//! The crash test: publishers with confirms (and, in some cycles, a consumer that acks most of
//! what it gets) run against the real binary until it is killed with SIGKILL at a random moment;
//! the broker is restarted on the same data directory and it all happens again. At the end
//! everything left is consumed and checked:
//!
//! - every confirmed persistent message that the consumer never acked is there;
//! - nothing appears that was never published, and no transient message outlives its broker;
//! - a message seen before comes again only with redelivered = true, and never twice in one
//!   broker's life;
//! - what is left is in publish order (per publisher, and older broker lives first).
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

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use amq_protocol::types::FieldTable;
use futures_lite::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use tokio::task::JoinHandle;

use crate::common::*;
use crate::support::*;

use check::check;
use clients::{Client, Rng, Seen, SharedLog, body_id, consumer, lock, publisher};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn confirmed_messages_survive_repeated_kill9() {
    let cycles = cycles();
    let seed = seed();
    println!("crash test: {cycles} cycles, WARREN_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = DataDir::new();
    let queue = unique("crash-q");
    let log: SharedLog = Arc::default();
    let started = Instant::now();

    let mut last_startup = Duration::from_millis(20);
    for life in 0..cycles {
        // Sometimes crash a broker while it is still recovering, before the real one starts.
        let recovery_kill = (life > 0 && rng.chance(25)).then(|| {
            let ms = rng.range(0, last_startup.as_millis() as u64 + 5);
            kill_during_startup(dir.path(), Duration::from_millis(ms))
        });
        let t0 = Instant::now();
        let mut broker = TestBroker::spawn_in(dir.path(), &[]);
        let startup = t0.elapsed();
        last_startup = startup;
        let depth = if life == 0 {
            let (conn, ch) = broker.channel().await;
            declare_durable_queue(&ch, &queue).await;
            let _ = conn.close(200, "bye".into()).await;
            0
        } else {
            queue_depth(&broker, &queue, life).await
        };
        // Early check: everything confirmed and never acked must be in the queue.
        let must_have = {
            let l = lock(&log);
            l.confirmed.difference(&l.acked).count()
        };
        assert!(
            depth as usize >= must_have,
            "life {life}: after kill -9 the queue holds {depth} messages, but {must_have} \
             confirmed and unacked ones must be there"
        );

        let (before_sent, before_confirmed, before_deliveries, before_acked) = {
            let l = lock(&log);
            (
                l.sent.len() + l.sent_transient.len(),
                l.confirmed.len(),
                l.deliveries.len(),
                l.acked.len(),
            )
        };
        let publishers = rng.range(2, 4) as usize;
        let with_consumer = life > 0 && rng.chance(60);
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(8);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let client = Client {
            uri: broker.uri(),
            queue: queue.clone(),
            life,
            log: log.clone(),
            stop: stop_rx,
        };
        let mut handles = Vec::new();
        if with_consumer {
            let (seed, ack_percent) = (rng.next(), rng.range(70, 98));
            let task = tokio::spawn(consumer(
                client.clone(),
                ready_tx.clone(),
                seed,
                ack_percent,
            ));
            handles.push(("consumer", task));
        }
        for p in 0..publishers {
            let tag = format!("l{life}p{p}");
            let task = tokio::spawn(publisher(client.clone(), ready_tx.clone(), tag));
            handles.push(("publisher", task));
        }
        // The clients hold the only senders: one that fails before it is ready ends the wait.
        drop(ready_tx);
        let want_ready = publishers + usize::from(with_consumer);
        for _ in 0..want_ready {
            tokio::time::timeout(Duration::from_secs(10), ready_rx.recv())
                .await
                .unwrap_or_else(|_| panic!("life {life}: clients not ready within 10 s"))
                .unwrap_or_else(|| panic!("life {life}: a client failed to set up"));
        }
        let delay = Duration::from_millis(rng.range(100, 700));
        tokio::time::sleep(delay).await;
        broker.kill9();
        let _ = stop_tx.send(true);
        let stuck = join_all(handles).await;
        drop(broker);

        let l = lock(&log);
        println!(
            "cycle {}/{cycles}: {}start {} ms, depth {depth}, {publishers} publishers{}, killed \
             after {} ms: published {}, confirmed {}, consumed {}, acked {}{}",
            life + 1,
            match recovery_kill {
                Some(ms) => format!("(a broker killed {ms} ms into its start-up) "),
                None => String::new(),
            },
            startup.as_millis(),
            if with_consumer { " + consumer" } else { "" },
            delay.as_millis(),
            l.sent.len() + l.sent_transient.len() - before_sent,
            l.confirmed.len() - before_confirmed,
            l.deliveries.len() - before_deliveries,
            l.acked.len() - before_acked,
            if stuck.is_empty() {
                String::new()
            } else {
                format!(" (aborted, still running 10 s after the kill: {stuck:?})")
            }
        );
    }

    // Final life: take everything that is left, then check.
    let final_life = cycles;
    let mut broker = TestBroker::spawn_in(dir.path(), &[]);
    let drained = drain_final_life(&broker, &queue, final_life).await;

    let (mut violations, summary) = check(&mut lock(&log), drained, final_life);
    println!("{summary}, {:.1} s", started.elapsed().as_secs_f64());

    // The drain's acks are durable across a clean stop.
    broker.terminate();
    let broker = TestBroker::spawn_in(dir.path(), &[]);
    let left = queue_depth(&broker, &queue, final_life + 1).await;
    if left != 0 {
        violations.push(format!(
            "{left} messages back after the final drain was acked and the broker stopped cleanly"
        ));
    }
    drop(broker);

    if !violations.is_empty() {
        let n = violations.len();
        violations.truncate(30);
        panic!(
            "{n} violations (seed {seed}):\n  {}",
            violations.join("\n  ")
        );
    }
}

/// The final life: consumes (and acks) every message the queue holds after the last crash, and
/// checks that no more come.
async fn drain_final_life(broker: &TestBroker, queue: &str, final_life: usize) -> Vec<Seen> {
    let depth = queue_depth(broker, queue, final_life).await;
    let (conn, ch) = broker.channel().await;
    ch.basic_qos(1000, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "final".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut drained: Vec<Seen> = Vec::with_capacity(depth as usize);
    for _ in 0..depth {
        let d = next_delivery(&mut consumer).await;
        drained.push(Seen {
            id: body_id(&d.data),
            redelivered: d.redelivered,
            life: final_life,
        });
        if drained.len().is_multiple_of(500) {
            ch.basic_ack(d.delivery_tag, BasicAckOptions { multiple: true })
                .await
                .unwrap();
        }
        if drained.len() == depth as usize {
            ch.basic_ack(d.delivery_tag, BasicAckOptions { multiple: true })
                .await
                .unwrap();
        }
    }
    let extra = tokio::time::timeout(Duration::from_millis(300), consumer.next()).await;
    assert!(
        !matches!(extra, Ok(Some(Ok(_)))),
        "a delivery beyond the {depth} messages the queue reported"
    );
    sync(&ch).await;
    let _ = conn.close(200, "bye".into()).await;
    drained
}

fn cycles() -> usize {
    std::env::var("WARREN_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

fn seed() -> u64 {
    std::env::var("WARREN_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// Starts a broker on `dir` and SIGKILLs it after `after` (whether or not it is listening yet,
/// so possibly in the middle of recovery). Returns the delay in ms.
fn kill_during_startup(dir: &Path, after: Duration) -> u128 {
    let mut child = warren_command(dir, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn warren");
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
    after.as_millis()
}

/// Ready messages in the queue (passive declare on a fresh connection); panics if it is gone.
async fn queue_depth(broker: &TestBroker, queue: &str, life: usize) -> u32 {
    let (conn, ch) = broker.channel().await;
    let n = match declare_queue_passive(&ch, queue).await {
        Ok(q) => q.message_count(),
        Err(e) => panic!("life {life}: durable queue {queue} not recovered after kill -9: {e:?}"),
    };
    let _ = conn.close(200, "bye".into()).await;
    n
}

/// Waits for the clients of one life to finish (they were told to stop; their broker is dead);
/// aborts any still running after 10 s. A client panic fails the test. Returns how many were
/// aborted: their logs are complete up to that point, so the checks stay sound.
async fn join_all(handles: Vec<(&'static str, JoinHandle<()>)>) -> Vec<&'static str> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut stuck = Vec::new();
    for (what, mut h) in handles {
        match tokio::time::timeout_at(deadline, &mut h).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(Err(e)) => panic!("{what} task failed: {e:?}"),
            Err(_) => {
                h.abort();
                stuck.push(what);
            }
        }
    }
    stuck
}
