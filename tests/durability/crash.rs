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

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use amq_protocol::types::FieldTable;
use futures_lite::StreamExt;
use lapin::{
    BasicProperties, Connection, ConnectionProperties, PublisherConfirm,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions,
        QueueDeclareOptions,
    },
};
use tokio::task::JoinHandle;

use crate::common::*;
use crate::support::*;

/// Unconfirmed publishes one publisher keeps in flight.
const WINDOW: usize = 64;

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in lo..=hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One delivery a consumer (or the final drain) saw.
struct Seen {
    id: String,
    redelivered: bool,
    /// Which broker process delivered it (0 = the first).
    life: usize,
}

/// Everything the clients did, shared by the tasks of all cycles.
#[derive(Default)]
struct Log {
    /// Persistent publishes attempted (basic.publish called), whatever came of them.
    sent: HashSet<String>,
    /// Transient publishes attempted, with the broker life they were sent to.
    sent_transient: HashMap<String, usize>,
    /// Persistent publishes the broker confirmed with basic.ack.
    confirmed: HashSet<String>,
    nacked: usize,
    /// Ids whose basic.ack the consumer sent (or tried to).
    acked: HashSet<String>,
    /// Every delivery, in the order received.
    deliveries: Vec<Seen>,
}

type SharedLog = Arc<Mutex<Log>>;

fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|e| e.into_inner())
}

/// The id a body carries: everything before the first '|'.
fn body_id(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(data);
    s.split('|').next().unwrap_or("").to_string()
}

fn body_for(id: &str, n: u64) -> Vec<u8> {
    // Some padding of varying size, so records are not all alike.
    let pad = (n * 37 % 700) as usize;
    let mut body = format!("{id}|").into_bytes();
    body.extend(std::iter::repeat_n(b'x', pad));
    body
}

/// What every client task of one broker life gets.
#[derive(Clone)]
struct Client {
    uri: String,
    queue: String,
    /// Which broker process this is (0 = the first).
    life: usize,
    log: SharedLog,
    /// Each client sends one () once it is set up.
    ready: tokio::sync::mpsc::Sender<()>,
    /// Becomes true right after the broker was killed.
    stop: tokio::sync::watch::Receiver<bool>,
}

/// One publisher for one broker life: publishes until the broker is gone, with up to WINDOW
/// confirms outstanding. Every 10th message is transient.
async fn publisher(client: Client, tag: String) {
    let Client {
        uri,
        queue,
        life,
        log,
        ready,
        mut stop,
    } = client;
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect("publisher connects");
    let ch = conn.create_channel().await.expect("publisher channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    ready.send(()).await.expect("report ready");
    drop(ready);
    let mut inflight: VecDeque<(String, PublisherConfirm)> = VecDeque::new();
    let mut n: u64 = 0;
    let rate = rate();
    let started = tokio::time::Instant::now();
    'publish: loop {
        if *stop.borrow() {
            break;
        }
        if rate > 0 && n.is_multiple_of(16) {
            // Keep to `rate` messages a second, so that the queue does not grow without bound
            // over many cycles.
            let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = stop.changed() => break 'publish,
            }
        }
        let transient = n % 10 == 9;
        let id = if transient {
            format!("{tag}-t{n}")
        } else {
            format!("{tag}-{n}")
        };
        {
            let mut l = lock(&log);
            if transient {
                l.sent_transient.insert(id.clone(), life);
            } else {
                l.sent.insert(id.clone());
            }
        }
        let props = if transient {
            BasicProperties::default().with_delivery_mode(1)
        } else {
            persistent()
        };
        let body = body_for(&id, n);
        n += 1;
        let res = tokio::time::timeout(
            WAIT,
            ch.basic_publish(
                "".into(),
                queue.as_str().into(),
                Default::default(),
                &body,
                props,
            ),
        )
        .await;
        match res {
            Ok(Ok(confirm)) => inflight.push_back((id, confirm)),
            _ => break 'publish,
        }
        while inflight.len() >= WINDOW {
            let (id, mut confirm) = inflight.pop_front().unwrap();
            tokio::select! {
                res = tokio::time::timeout(WAIT, &mut confirm) => match res {
                    Ok(Ok(c)) => record_confirmation(&log, &id, transient_id(&id), c.is_ack()),
                    _ => break 'publish,
                },
                _ = stop.changed() => {
                    inflight.push_front((id, confirm));
                    break 'publish;
                }
            }
        }
    }
    // The broker is gone. Confirms it sent before dying may already be in: collect them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    for (id, confirm) in inflight {
        if let Ok(Ok(c)) = tokio::time::timeout_at(deadline, confirm).await {
            record_confirmation(&log, &id, transient_id(&id), c.is_ack());
        }
    }
    drop(conn);
}

fn transient_id(id: &str) -> bool {
    id.rsplit('-').next().is_some_and(|n| n.starts_with('t'))
}

fn record_confirmation(log: &SharedLog, id: &str, transient: bool, ack: bool) {
    let mut l = lock(log);
    if !ack {
        l.nacked += 1;
    } else if !transient {
        l.confirmed.insert(id.to_string());
    }
}

/// A manual-ack consumer for one broker life: acks about `ack_percent`% of its deliveries and
/// leaves the rest unacked, until the broker is gone.
async fn consumer(client: Client, seed: u64, ack_percent: u64) {
    let Client {
        uri,
        queue,
        life,
        log,
        ready,
        mut stop,
    } = client;
    let mut rng = Rng::new(seed);
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect("consumer connects");
    let ch = conn.create_channel().await.expect("consumer channel");
    ch.basic_qos(500, BasicQosOptions::default())
        .await
        .expect("basic.qos");
    let mut deliveries = ch
        .basic_consume(
            queue.as_str().into(),
            "crash-consumer".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("basic.consume");
    ready.send(()).await.expect("report ready");
    drop(ready);
    loop {
        let d = tokio::select! {
            d = deliveries.next() => match d {
                Some(Ok(d)) => d,
                _ => break,
            },
            _ = stop.changed() => break,
        };
        let id = body_id(&d.data);
        let ack = rng.chance(ack_percent);
        {
            let mut l = lock(&log);
            l.deliveries.push(Seen {
                id: id.clone(),
                redelivered: d.redelivered,
                life,
            });
            if ack {
                l.acked.insert(id);
            }
        }
        if ack {
            // An ack is not confirmed: this resolves once lapin has sent it (or failed to).
            let acked = tokio::select! {
                r = d.ack(BasicAckOptions::default()) => r.is_ok(),
                _ = stop.changed() => false,
            };
            if !acked {
                break;
            }
        }
    }
    drop(conn);
}

fn cycles() -> usize {
    std::env::var("WARREN_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

/// Messages a second per publisher (`WARREN_CRASH_RATE`, default 2000; 0 = as fast as it goes).
fn rate() -> u64 {
    std::env::var("WARREN_CRASH_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
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
fn kill_during_startup(dir: &std::path::Path, after: Duration) -> u128 {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
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
    let res = ch
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    let n = match res {
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
            declare_durable_queue(&ch, &queue, FieldTable::default()).await;
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
            ready: ready_tx,
            stop: stop_rx,
        };
        let mut handles = Vec::new();
        if with_consumer {
            let task = tokio::spawn(consumer(client.clone(), rng.next(), rng.range(70, 98)));
            handles.push(("consumer", task));
        }
        for p in 0..publishers {
            let task = tokio::spawn(publisher(client.clone(), format!("l{life}p{p}")));
            handles.push(("publisher", task));
        }
        drop(client);
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
    let broker = TestBroker::spawn_in(dir.path(), &[]);
    let depth = queue_depth(&broker, &queue, final_life).await;
    let (conn, ch) = broker.channel().await;
    ch.basic_qos(1000, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.as_str().into(),
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
    let extra = try_next(&mut consumer, Duration::from_millis(300)).await;
    assert!(
        extra.is_none(),
        "a delivery beyond the {depth} messages the queue reported"
    );
    sync(&ch).await;
    let _ = conn.close(200, "bye".into()).await;

    let (mut violations, summary) = check(&mut lock(&log), drained, final_life);
    println!("{summary}, {:.1} s", started.elapsed().as_secs_f64());

    // The drain's acks are durable across a clean stop.
    let mut node_broker = broker;
    let status = node_broker.signal_and_wait("TERM");
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
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

/// The end-of-test checks over everything the clients saw and the final drain; returns the
/// violations and a summary line.
fn check(l: &mut Log, drained: Vec<Seen>, final_life: usize) -> (Vec<String>, String) {
    let mut violations: Vec<String> = Vec::new();

    // 1. Confirmed and never acked: present.
    let depth = drained.len();
    let present: HashSet<&str> = drained.iter().map(|s| s.id.as_str()).collect();
    let mut lost: Vec<&String> = l
        .confirmed
        .iter()
        .filter(|id| !l.acked.contains(*id) && !present.contains(id.as_str()))
        .collect();
    lost.sort();
    if !lost.is_empty() {
        violations.push(format!(
            "{} confirmed (and never acked) messages lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(10)]
        ));
    }

    // 2. Nothing unknown; no transient message from an earlier life.
    let all: Vec<Seen> = l.deliveries.drain(..).chain(drained).collect();
    for s in &all {
        if l.sent.contains(&s.id) {
            continue;
        }
        match l.sent_transient.get(&s.id) {
            Some(&sent_life) if sent_life == s.life => {}
            Some(&sent_life) => violations.push(format!(
                "transient message {} published to life {sent_life} delivered by life {}",
                s.id, s.life
            )),
            None => violations.push(format!(
                "life {}: delivered {:?}, which was never published",
                s.life, s.id
            )),
        }
    }

    // 3. Seen before: only again with redelivered, and never twice in one life.
    let mut seen_in: HashMap<&str, usize> = HashMap::new();
    for s in &all {
        if let Some(&prev) = seen_in.get(s.id.as_str()) {
            if prev == s.life {
                violations.push(format!(
                    "life {}: {} delivered twice by the same broker (nothing was requeued)",
                    s.life, s.id
                ));
            } else if !s.redelivered {
                violations.push(format!(
                    "life {}: {} delivered before (life {prev}) but redelivered = false",
                    s.life, s.id
                ));
            }
        }
        seen_in.insert(&s.id, s.life);
    }

    // 4. What is left is in publish order: older lives first; per publisher, increasing n.
    let final_ids: Vec<&str> = all
        .iter()
        .filter(|s| s.life == final_life)
        .map(|s| s.id.as_str())
        .collect();
    let mut last_life = 0usize;
    let mut last_n: HashMap<&str, u64> = HashMap::new();
    for id in &final_ids {
        let Some((tag, n)) = id.rsplit_once('-') else {
            continue;
        };
        let Ok(n) = n.trim_start_matches('t').parse::<u64>() else {
            continue;
        };
        let life: usize = tag
            .trim_start_matches('l')
            .split('p')
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        if life < last_life {
            violations.push(format!(
                "order: {id} (life {life}) comes after a message published in life {last_life}"
            ));
        }
        last_life = last_life.max(life);
        if let Some(&prev) = last_n.get(tag)
            && n <= prev
        {
            violations.push(format!("order: {id} comes after {tag}-{prev}"));
        }
        last_n.insert(tag, n);
    }

    let acked_back = final_ids.iter().filter(|id| l.acked.contains(**id)).count();
    let summary = format!(
        "final: {depth} messages left and consumed, {} sent in all, {} confirmed, {} acked ({} \
         of those came back), {} nacks",
        l.sent.len() + l.sent_transient.len(),
        l.confirmed.len(),
        l.acked.len(),
        acked_back,
        l.nacked,
    );
    (violations, summary)
}
