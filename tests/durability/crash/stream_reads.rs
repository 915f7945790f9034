//! Reading the stream in the stream crash test, and the record of what every read saw at each
//! offset ([`Offsets`]), kept across the broker's lives: a read that finds something else at an
//! offset than an earlier read found there is a violation (offsets and contents are immutable).
//!
//! Every read is a basic.consume with a prefetch and manual acks (as streams require) and an
//! `x-stream-offset` ([`Start`]); each delivery must carry the `x-stream-offset` header (a
//! long-long), the first one at the offset asked for (or, for `last` / `next`, not before where
//! the stream ended when the read began), the next ones contiguous. Where a read from a
//! timestamp started is checked at the end, against the times the entries were published and
//! confirmed (stream_check.rs).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amq_protocol::types::{AMQPValue, FieldTable};
use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::{Channel, Connection, ConnectionProperties};

use super::clients::{Client, Ready, Rng, body_id, epoch_ms};
use crate::common::*;

/// Prefetch of every stream consumer (streams refuse a consumer without one).
const PREFETCH: u16 = 200;
/// A consumer acks (multiple) every this many deliveries: acks only give credit back.
const ACK_EVERY: u64 = 50;

/// Where a read starts: basic.consume's `x-stream-offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Start {
    First,
    Last,
    Next,
    Offset(u64),
    /// An AMQP timestamp: seconds since the epoch.
    Timestamp(u64),
}

impl Start {
    /// A start for a reader: mostly an offset some earlier read saw (anywhere between the
    /// lowest and the highest), else `first`, `last`, `next`, or a whole second since `since`
    /// (seconds since the epoch).
    pub(super) fn pick(rng: &mut Rng, offsets: &Offsets, since: u64) -> Start {
        let roll = rng.range(0, 99);
        match offsets.range() {
            Some((lo, hi)) if roll < 55 => Start::Offset(rng.range(lo, hi)),
            _ if roll < 65 => Start::First,
            _ if roll < 75 => Start::Last,
            _ if roll < 85 => Start::Next,
            _ => Start::Timestamp(rng.range(since, (epoch_ms() / 1000).max(since))),
        }
    }

    fn argument(self) -> AMQPValue {
        match self {
            Start::First => long_str("first"),
            Start::Last => long_str("last"),
            Start::Next => long_str("next"),
            Start::Offset(n) => AMQPValue::LongLongInt(n as i64),
            Start::Timestamp(seconds) => AMQPValue::Timestamp(seconds),
        }
    }

    /// The first offset a read must deliver (`true`: exactly; `false`: at least), when the
    /// stream held `depth` entries as it began (more may come while it subscribes).
    fn first_offset(self, depth: u64) -> (u64, bool) {
        match self {
            Start::First => (0, true),
            // A numeric offset at or past the end waits for exactly that offset.
            Start::Offset(n) => (n, true),
            Start::Last => (depth.saturating_sub(1), false),
            Start::Next => (depth, false),
            // Checked at the end, against the entries' times.
            Start::Timestamp(_) => (0, false),
        }
    }
}

/// What the reads of every life saw at each offset.
#[derive(Default)]
pub(super) struct Offsets {
    /// The body id the first read of each offset saw there, and in which life.
    at: BTreeMap<u64, (String, usize)>,
    /// Offsets where a read found another body than an earlier read had (the first such read).
    changed: BTreeMap<u64, String>,
    /// What else the reads (and the test) found wrong: a gap, a missing header, a count.
    pub(super) violations: Vec<String>,
    /// One line per read: where it started and what it got.
    pub(super) reads: Vec<String>,
    /// Reads from a timestamp: the life, the timestamp (seconds) and the first offset it got.
    pub(super) from_timestamps: Vec<(usize, u64, u64)>,
}

pub(super) type SharedOffsets = Arc<Mutex<Offsets>>;

pub(super) fn lock(offsets: &SharedOffsets) -> std::sync::MutexGuard<'_, Offsets> {
    offsets.lock().unwrap_or_else(|e| e.into_inner())
}

impl Offsets {
    /// Records that a read in life `life` found body `id` at `offset`; a violation if an earlier
    /// read found another one there.
    fn saw(&mut self, life: usize, offset: u64, id: &str) {
        match self.at.get(&offset) {
            None => {
                self.at.insert(offset, (id.to_string(), life));
            }
            Some((before, _)) if before == id => {}
            Some((before, before_life)) => {
                let v = format!(
                    "offset {offset}: life {life} read {id:?}, life {before_life} {before:?}"
                );
                self.changed.entry(offset).or_insert(v);
            }
        }
    }

    /// Every violation found, the changed offsets summed up in one.
    pub(super) fn take_violations(&mut self) -> Vec<String> {
        let mut all = std::mem::take(&mut self.violations);
        if !self.changed.is_empty() {
            let changed = std::mem::take(&mut self.changed);
            let e_g: Vec<String> = changed.values().take(5).cloned().collect();
            all.push(format!(
                "{} offsets held another entry than an earlier read had found there, e.g. {e_g:?}",
                changed.len(),
            ));
        }
        all
    }

    /// The lowest and highest offset read so far.
    fn range(&self) -> Option<(u64, u64)> {
        Some((*self.at.keys().next()?, *self.at.keys().next_back()?))
    }

    /// The summary of life `life`'s read ("no summary" if it was aborted).
    pub(super) fn read_of(&self, life: usize) -> &str {
        let prefix = format!("life {life}: ");
        self.reads
            .iter()
            .rev()
            .find(|line| line.starts_with(&prefix))
            .map_or("no summary", String::as_str)
    }

    /// Offsets read so far.
    pub(super) fn len(&self) -> usize {
        self.at.len()
    }

    /// What earlier reads saw at `end` or beyond: entries a consumer was given that a stream
    /// ending before `end` no longer has.
    pub(super) fn at_or_beyond(&self, end: u64) -> Vec<(u64, String, usize)> {
        self.at
            .range(end..)
            .map(|(offset, (id, life))| (*offset, id.clone(), *life))
            .collect()
    }

    /// An offset between the lowest and the highest some read saw, for a read that checks
    /// them again.
    pub(super) fn sample(&self, rng: &mut Rng) -> Option<u64> {
        let (lo, hi) = self.range()?;
        Some(rng.range(lo, hi))
    }
}

/// One read in progress: checks each delivery against the one before and records it.
struct Cursor {
    life: usize,
    start: Start,
    /// The offset the next delivery must have, and whether exactly (else: at least).
    expect: (u64, bool),
    count: u64,
    first: Option<u64>,
}

impl Cursor {
    fn new(life: usize, start: Start, depth: u64) -> Cursor {
        Cursor {
            life,
            start,
            expect: start.first_offset(depth),
            count: 0,
            first: None,
        }
    }

    /// Checks and records one delivery: its offset and body id, or why the read cannot go on.
    fn take(&mut self, d: &Delivery, offsets: &SharedOffsets) -> Result<(u64, String), String> {
        let offset = stream_offset(d).map_err(|e| {
            format!(
                "life {}: read from {:?}: delivery {} {e}",
                self.life, self.start, self.count
            )
        })?;
        let id = body_id(&d.data);
        let (want, exactly) = self.expect;
        if offset < want || (exactly && offset != want) {
            return Err(format!(
                "life {}: read from {:?}: delivery {} at offset {offset} ({id}), expected {}{want}",
                self.life,
                self.start,
                self.count,
                if exactly { "" } else { "at least " },
            ));
        }
        self.expect = (offset + 1, true);
        self.first.get_or_insert(offset);
        self.count += 1;
        lock(offsets).saw(self.life, offset, &id);
        Ok((offset, id))
    }

    fn summary(&self) -> String {
        match self.first {
            Some(first) => format!(
                "read from {:?}: offsets {first}..={} ({} entries)",
                self.start,
                self.expect.0 - 1,
                self.count
            ),
            None => format!("read from {:?}: nothing", self.start),
        }
    }
}

/// A delivery's `x-stream-offset` header, which must be a long-long.
fn stream_offset(d: &Delivery) -> Result<u64, String> {
    let headers = d.properties.headers().as_ref().ok_or("has no headers")?;
    match headers.inner().get("x-stream-offset") {
        Some(AMQPValue::LongLongInt(n)) if *n >= 0 => Ok(*n as u64),
        Some(other) => Err(format!(
            "has x-stream-offset {other:?}, not a long-long offset"
        )),
        None => Err("has no x-stream-offset header".to_string()),
    }
}

/// A consumer of the stream from `start` on a channel of its own.
async fn subscribe(ch: &Channel, queue: &str, tag: &str, start: Start) -> lapin::Consumer {
    ch.basic_qos(PREFETCH, BasicQosOptions::default())
        .await
        .expect("basic.qos");
    let mut args = FieldTable::default();
    args.insert("x-stream-offset".into(), start.argument());
    ch.basic_consume(
        queue.into(),
        tag.into(),
        BasicConsumeOptions::default(),
        args,
    )
    .await
    .unwrap_or_else(|e| panic!("basic.consume from {start:?}: {e:?}"))
}

/// A reader for one broker life: reads from `start` (the stream held `depth` entries as the
/// life began) and records what it sees until its broker is killed.
pub(super) async fn reader(
    mut client: Client,
    offsets: SharedOffsets,
    start: Start,
    depth: u64,
    ready: Ready,
) {
    let conn = Connection::connect(&client.uri, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("stream reader connects: {e:?}"));
    let ch = conn.create_channel().await.expect("stream reader channel");
    let mut deliveries = subscribe(&ch, &client.queue, "crash-reader", start).await;
    ready.send(()).await.expect("report ready");
    let mut cursor = Cursor::new(client.life, start, depth);
    loop {
        let d = tokio::select! {
            d = deliveries.next() => match d {
                Some(Ok(d)) => d,
                _ => break,
            },
            _ = client.stop.changed() => break,
        };
        if let Err(e) = cursor.take(&d, &offsets) {
            lock(&offsets).violations.push(e);
            break;
        }
        if cursor.count.is_multiple_of(ACK_EVERY) {
            let acked = tokio::select! {
                r = ch.basic_ack(d.delivery_tag, BasicAckOptions { multiple: true }) => r.is_ok(),
                _ = client.stop.changed() => false,
            };
            if !acked {
                break;
            }
        }
    }
    let line = format!("life {}: {}", client.life, cursor.summary());
    let mut o = lock(&offsets);
    o.reads.push(line);
    if let (Start::Timestamp(seconds), Some(first)) = (start, cursor.first) {
        o.from_timestamps.push((client.life, seconds, first));
    }
    drop(o);
    drop(conn);
}

/// Reads `n` entries from `start` (`first` or an offset) with nothing else going on (no
/// publishers), acking as it goes; then, if `to_the_end`, checks that no more come. Returns each
/// entry's offset and body id; a failed check is a violation recorded in `offsets`, and the read
/// stops there.
pub(super) async fn read_exactly(
    broker: &TestBroker,
    queue: &str,
    offsets: &SharedOffsets,
    life: usize,
    start: Start,
    n: u64,
    to_the_end: bool,
) -> Vec<(u64, String)> {
    let (conn, ch) = broker.channel().await;
    let mut deliveries = subscribe(&ch, queue, "crash-final", start).await;
    let mut cursor = Cursor::new(life, start, n);
    let mut read = Vec::with_capacity(n as usize);
    while cursor.count < n {
        let d = match tokio::time::timeout(WAIT, deliveries.next()).await {
            Ok(Some(Ok(d))) => d,
            other => {
                lock(offsets).violations.push(format!(
                    "life {life}: read from {start:?}: {} of {n} entries, then {}",
                    cursor.count,
                    match other {
                        Err(_) => format!("nothing for {WAIT:?}"),
                        Ok(end) => format!("{end:?}"),
                    }
                ));
                break;
            }
        };
        match cursor.take(&d, offsets) {
            Ok(entry) => read.push(entry),
            Err(e) => {
                lock(offsets).violations.push(e);
                break;
            }
        }
        if cursor.count.is_multiple_of(ACK_EVERY) || cursor.count == n {
            ch.basic_ack(d.delivery_tag, BasicAckOptions { multiple: true })
                .await
                .expect("basic.ack");
        }
    }
    if to_the_end
        && cursor.count == n
        && let Ok(Some(Ok(d))) =
            tokio::time::timeout(Duration::from_millis(300), deliveries.next()).await
    {
        lock(offsets).violations.push(format!(
            "life {life}: read from {start:?}: a delivery beyond the {n} entries expected: {:?} \
             at {:?}",
            body_id(&d.data),
            stream_offset(&d)
        ));
    }
    let line = format!("life {life}: {}", cursor.summary());
    lock(offsets).reads.push(line);
    let _ = conn.close(200, "bye".into()).await;
    read
}
