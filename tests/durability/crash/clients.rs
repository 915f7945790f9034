//! The clients of one broker life in the crash test: publishers with confirms (with varied
//! priorities for a priority queue) and a consumer that acks most of what it gets (and, for a
//! dead-lettering queue, rejects some), run until their broker is killed, and the [`Log`] of what
//! each sent, had confirmed, received, acked and rejected, shared by the clients of every life.
//! The publishers serve the stream variant too (stream.rs has its own readers).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amq_protocol::types::{AMQPValue, FieldTable};
use futures_lite::StreamExt;
use lapin::{
    Channel, Connection, ConnectionProperties, PublisherConfirm,
    options::{
        BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions,
        ConfirmSelectOptions,
    },
};

use super::Kind;
use super::paged::priority_for;
use crate::common::*;

/// Unconfirmed publishes one publisher keeps in flight.
const WINDOW: usize = 64;

/// xorshift64*.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(super) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in lo..=hi.
    pub(super) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub(super) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One delivery a consumer (or the final drain) saw.
pub(super) struct Seen {
    pub(super) id: String,
    pub(super) redelivered: bool,
    /// Which broker process delivered it (0 = the first).
    pub(super) life: usize,
    /// Its `x-delivery-count` header, if it had one (`Err`: a value that is not an integer).
    pub(super) delivery_count: Option<Result<i64, String>>,
    /// Its `priority` property.
    pub(super) priority: Option<u8>,
    /// A dead letter's `x-first-death-reason` and `x-first-death-queue` headers ("?" for one
    /// missing), `None` without either.
    pub(super) first_death: Option<(String, String)>,
}

impl Seen {
    /// What `life`'s broker delivered in `d`.
    pub(super) fn of(d: &lapin::message::Delivery, life: usize) -> Seen {
        let reason = header_str(d, "x-first-death-reason");
        let queue = header_str(d, "x-first-death-queue");
        let first_death = (reason.is_some() || queue.is_some()).then(|| {
            let or_missing = |s: Option<String>| s.unwrap_or_else(|| "?".into());
            (or_missing(reason), or_missing(queue))
        });
        Seen {
            id: body_id(&d.data),
            redelivered: d.redelivered,
            life,
            delivery_count: delivery_count(d),
            priority: *d.properties.priority(),
            first_death,
        }
    }
}

/// Everything the clients did, shared by the tasks of all cycles.
#[derive(Default)]
pub(super) struct Log {
    /// Persistent publishes attempted (basic.publish called), whatever came of them.
    pub(super) sent: HashSet<String>,
    /// Transient publishes attempted, with the broker life they were sent to.
    pub(super) sent_transient: HashMap<String, usize>,
    /// Publishes the broker confirmed with basic.ack that must survive it: persistent ones, and
    /// transient ones too where every message is stored (quorum queues, streams).
    pub(super) confirmed: HashSet<String>,
    pub(super) nacked: usize,
    /// Ids whose basic.ack the consumer sent (or tried to).
    pub(super) acked: HashSet<String>,
    /// Ids whose basic.reject (requeue = false) the consumer sent (or tried to), with how many
    /// times (a reject lost in a crash leaves the message to be delivered and rejected again).
    pub(super) rejected: HashMap<String, usize>,
    /// Rejected ids the broker is known to have handled: a round trip on the consumer's channel
    /// came back after the reject. The life, and when it came back (ms since the epoch).
    pub(super) rejects_handled: HashMap<String, (usize, u64)>,
    /// The `priority` property each message was published with (priority queues only).
    pub(super) priorities: HashMap<String, Option<u8>>,
    /// Every delivery, in the order received.
    pub(super) deliveries: Vec<Seen>,
    /// The wall-clock time (ms since the epoch) just before basic.publish was called, and when
    /// its basic.ack came: a stream entry's append time lies between the two; a confirmed
    /// publish sent after a reject was handled makes that reject's dead letter durable too
    /// (paged.rs).
    pub(super) times: HashMap<String, (u64, Option<u64>)>,
}

pub(super) type SharedLog = Arc<Mutex<Log>>;

pub(super) fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|e| e.into_inner())
}

/// The id a body carries: everything before the first '|'.
pub(super) fn body_id(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(data);
    s.split('|').next().unwrap_or("").to_string()
}

/// What a publisher's id says: `l{life}p{publisher}-{n}` (`-t{n}` for a transient message).
pub(super) struct PublishedId<'a> {
    /// `l{life}p{publisher}`: the publisher.
    pub(super) tag: &'a str,
    /// The broker life it was published to.
    pub(super) life: usize,
    /// The publisher's message number.
    pub(super) n: u64,
}

impl PublishedId<'_> {
    pub(super) fn parse(id: &str) -> Option<PublishedId<'_>> {
        let (tag, n) = id.rsplit_once('-')?;
        let n = n.trim_start_matches('t').parse().ok()?;
        let life = tag
            .trim_start_matches('l')
            .split('p')
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        Some(PublishedId { tag, life, n })
    }
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
pub(super) struct Client {
    pub(super) kind: Kind,
    pub(super) uri: String,
    pub(super) queue: String,
    /// Which broker process this is (0 = the first).
    pub(super) life: usize,
    pub(super) log: SharedLog,
    /// Becomes true right after the broker was killed.
    pub(super) stop: tokio::sync::watch::Receiver<bool>,
}

impl Client {
    /// A connection to this life's broker and a channel on it; `who` names the client in a
    /// failure.
    async fn connect(&self, who: &str) -> (Connection, Channel) {
        let conn = Connection::connect(&self.uri, ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| panic!("{who} connects: {e:?}"));
        let ch = conn
            .create_channel()
            .await
            .unwrap_or_else(|e| panic!("{who} channel: {e:?}"));
        (conn, ch)
    }
}

/// Each client sends one () on it once it is set up, and then lets go of it.
pub(super) type Ready = tokio::sync::mpsc::Sender<()>;

async fn report_ready(ready: Ready) {
    ready.send(()).await.expect("report ready");
}

/// One publisher for one broker life: publishes until the broker is gone, with up to WINDOW
/// confirms outstanding. Every 10th message is transient. To a priority queue, messages carry
/// varied priorities ([`priority_for`]).
pub(super) async fn publisher(mut client: Client, ready: Ready, tag: String) {
    let (conn, ch) = client.connect("publisher").await;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    report_ready(ready).await;
    let mut inflight: VecDeque<(String, PublisherConfirm)> = VecDeque::new();
    let mut n: u64 = 0;
    let rate = rate();
    let started = tokio::time::Instant::now();
    'publish: loop {
        if *client.stop.borrow() {
            break;
        }
        if rate > 0 && n.is_multiple_of(16) {
            // Keep to `rate` messages a second, so that the queue does not grow without bound
            // over many cycles.
            let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = client.stop.changed() => break 'publish,
            }
        }
        let is_transient = n % 10 == 9;
        let id = if is_transient {
            format!("{tag}-t{n}")
        } else {
            format!("{tag}-{n}")
        };
        let mut props = if is_transient {
            transient()
        } else {
            persistent()
        };
        let priority = (client.kind == Kind::Priority).then(|| priority_for(n));
        if let Some(Some(p)) = priority {
            props = props.with_priority(p);
        }
        {
            let mut l = lock(&client.log);
            if is_transient {
                l.sent_transient.insert(id.clone(), client.life);
            } else {
                l.sent.insert(id.clone());
            }
            if let Some(priority) = priority {
                l.priorities.insert(id.clone(), priority);
            }
            l.times.insert(id.clone(), (epoch_ms(), None));
        }
        let body = body_for(&id, n);
        n += 1;
        let res = tokio::time::timeout(
            WAIT,
            ch.basic_publish(
                "".into(),
                client.queue.as_str().into(),
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
        // Confirms already in are recorded now, so that their times are close to when they
        // came (the stream test checks timestamp offsets against them).
        while let Some((_, confirm)) = inflight.front_mut() {
            let polled = futures_lite::future::poll_once(confirm).await;
            match polled {
                None => break,
                Some(Ok(c)) => {
                    if let Some((id, _)) = inflight.pop_front() {
                        record_confirmation(&client, &id, c.is_ack());
                    }
                }
                Some(Err(_)) => break 'publish,
            }
        }
        while inflight.len() >= WINDOW {
            let (id, mut confirm) = inflight.pop_front().unwrap();
            tokio::select! {
                res = tokio::time::timeout(WAIT, &mut confirm) => match res {
                    Ok(Ok(c)) => record_confirmation(&client, &id, c.is_ack()),
                    _ => break 'publish,
                },
                _ = client.stop.changed() => {
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
            record_confirmation(&client, &id, c.is_ack());
        }
    }
    drop(conn);
}

fn transient_id(id: &str) -> bool {
    id.rsplit('-').next().is_some_and(|n| n.starts_with('t'))
}

/// Counts a nack; records an ack of a message that must survive (see [`Log::confirmed`]) as
/// confirmed.
fn record_confirmation(client: &Client, id: &str, ack: bool) {
    let mut l = lock(&client.log);
    if !ack {
        l.nacked += 1;
    } else if client.kind.stores_transient() || !transient_id(id) {
        l.confirmed.insert(id.to_string());
    }
    if ack && let Some((_, confirmed)) = l.times.get_mut(id) {
        *confirmed = Some(epoch_ms());
    }
}

/// Now, in ms since the Unix epoch (the clock warren stamps stream entries with).
pub(super) fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A delivery's string header `name`, if it has one.
fn header_str(d: &lapin::message::Delivery, name: &str) -> Option<String> {
    let headers = d.properties.headers().as_ref()?;
    match headers.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        other => Some(format!("{other:?}")),
    }
}

/// A delivery's `x-delivery-count` header: `None` without one, `Err` (its value) if it is not
/// an integer.
pub(super) fn delivery_count(d: &lapin::message::Delivery) -> Option<Result<i64, String>> {
    let headers = d.properties.headers().as_ref()?;
    let value = headers.inner().get("x-delivery-count")?;
    Some(match value {
        AMQPValue::LongLongInt(n) => Ok(*n),
        AMQPValue::LongInt(n) => Ok(i64::from(*n)),
        AMQPValue::ShortInt(n) => Ok(i64::from(*n)),
        AMQPValue::ShortShortInt(n) => Ok(i64::from(*n)),
        other => Err(format!("{other:?}")),
    })
}

/// What a consumer does with each delivery: acks about `ack_percent`% of them, and first
/// rejects (requeue = false) about `reject_percent`% (0 for a queue that does not dead-letter).
#[derive(Clone, Copy)]
pub(super) struct Settling {
    pub(super) seed: u64,
    pub(super) ack_percent: u64,
    pub(super) reject_percent: u64,
}

/// Rejects sent before a round trip on the consumer's channel records them as handled.
const REJECTS_PER_ROUND_TRIP: usize = 16;

/// A manual-ack consumer for one broker life: settles its deliveries as `settling` says (the
/// rest stay unacked) until the broker is gone.
pub(super) async fn consumer(mut client: Client, ready: Ready, settling: Settling) {
    let mut rng = Rng::new(settling.seed);
    let (conn, ch) = client.connect("consumer").await;
    ch.basic_qos(500, BasicQosOptions::default())
        .await
        .expect("basic.qos");
    let mut deliveries = ch
        .basic_consume(
            client.queue.as_str().into(),
            "crash-consumer".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("basic.consume");
    report_ready(ready).await;
    let mut unconfirmed_rejects = Vec::new();
    loop {
        let d = tokio::select! {
            d = deliveries.next() => match d {
                Some(Ok(d)) => d,
                _ => break,
            },
            _ = client.stop.changed() => break,
        };
        let seen = Seen::of(&d, client.life);
        let id = seen.id.clone();
        let reject = settling.reject_percent > 0 && rng.chance(settling.reject_percent);
        let ack = !reject && rng.chance(settling.ack_percent);
        {
            let mut l = lock(&client.log);
            l.deliveries.push(seen);
            if ack {
                l.acked.insert(id.clone());
            }
            if reject {
                *l.rejected.entry(id.clone()).or_default() += 1;
            }
        }
        // Neither is confirmed: this resolves once lapin has sent it (or failed to).
        let sent = if ack {
            tokio::select! {
                r = d.ack(BasicAckOptions::default()) => r.is_ok(),
                _ = client.stop.changed() => false,
            }
        } else if reject {
            tokio::select! {
                r = d.reject(BasicRejectOptions { requeue: false }) => r.is_ok(),
                _ = client.stop.changed() => false,
            }
        } else {
            true
        };
        if !sent {
            break;
        }
        if reject {
            unconfirmed_rejects.push(id);
        }
        if unconfirmed_rejects.len() >= REJECTS_PER_ROUND_TRIP {
            // The broker handles a channel's methods in order: once basic.qos-ok is back, it has
            // handled the rejects sent before (and routed their dead letters).
            let round_trip = tokio::select! {
                r = ch.basic_qos(500, BasicQosOptions::default()) => r.is_ok(),
                _ = client.stop.changed() => false,
            };
            if !round_trip {
                break;
            }
            let now = epoch_ms();
            let mut l = lock(&client.log);
            for id in unconfirmed_rejects.drain(..) {
                l.rejects_handled.insert(id, (client.life, now));
            }
        }
    }
    drop(conn);
}

/// Messages a second per publisher (`WARREN_CRASH_RATE`, default 2000; 0 = as fast as it goes).
fn rate() -> u64 {
    std::env::var("WARREN_CRASH_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}
