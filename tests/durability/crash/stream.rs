//! The crash test against a stream: publishers with confirms append to it (persistent and
//! transient messages alike: a stream stores everything) until the broker is killed with SIGKILL
//! at a random moment, and again on the restarted broker, cycle after cycle. In most lives after
//! the first a reader consumes too, from an offset an earlier read saw (or from `first`, `last`,
//! `next`, a timestamp), and every read must find at each offset what earlier reads found there
//! (stream_reads.rs).
//!
//! After each restart the stream holds at least every confirmed message, and still holds every
//! offset a consumer was given before. At the end, a read from `first` gets exactly as many
//! entries as the queue's message count says, at offsets 0, 1, 2 …; every confirmed message is
//! there exactly once, each publisher's in the order it sent them, nothing unknown
//! (stream_check.rs; a message never confirmed may be there or not). Then after a clean restart
//! the count is the same and a read from an offset in the middle finds the same entries again.
//!
//! The stream's segments are small (`x-stream-max-segment-size-bytes`), so that many close and
//! recovery reads both the closed-segment table and the open segment.

use std::sync::Arc;
use std::time::Instant;

use crate::common::*;
use crate::support::*;

use super::Kind;
use super::clients::{Client, Rng, SharedLog, epoch_ms, lock as lock_log, publisher};
use super::lives::{Clients, Lives, cycles, describe_stuck, queue_depth, seed};
use super::stream_check::check_stream;
use super::stream_reads::{SharedOffsets, Start, lock, read_exactly, reader};

/// Segment size: about 150 to 300 of the publishers' messages.
const SEGMENT_BYTES: i64 = 100_000;
/// How many entries the read after the final clean restart checks again.
const REREAD: u64 = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stream_offsets_and_entries_survive_repeated_kill9() {
    let cycles = cycles();
    let seed = seed();
    println!("crash test (Stream): {cycles} cycles, WARREN_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);
    let dir = DataDir::new();
    let mut lives = Lives::new(dir.path(), None);
    let stream = unique("crash-s");
    let log: SharedLog = Arc::default();
    let offsets: SharedOffsets = Arc::default();
    let started = Instant::now();
    // Readers from a timestamp pick a whole second from here on.
    let since = epoch_ms() / 1000;

    for life in 0..cycles {
        let mut this = lives.start(life, &mut rng);
        let broker = &mut this.broker;
        let depth = if life == 0 {
            let (conn, ch) = broker.channel().await;
            let mut args = Kind::Stream.arguments();
            args.insert(
                "x-stream-max-segment-size-bytes".into(),
                amq_protocol::types::AMQPValue::LongLongInt(SEGMENT_BYTES),
            );
            declare_durable_queue_with(&ch, &stream, args).await;
            let _ = conn.close(200, "bye".into()).await;
            0
        } else {
            u64::from(queue_depth(broker, &stream, life).await)
        };
        let confirmed = lock_log(&log).confirmed.len() as u64;
        assert!(
            depth >= confirmed,
            "life {life}: after kill -9 the stream holds {depth} entries, but {confirmed} \
             confirmed messages must be there (seed {seed})"
        );
        gone_since_read(&offsets, life, depth);

        let (before_sent, before_confirmed) = {
            let l = lock_log(&log);
            (l.sent.len() + l.sent_transient.len(), l.confirmed.len())
        };
        let publishers = rng.range(2, 4) as usize;
        let start =
            (life > 0 && rng.chance(70)).then(|| Start::pick(&mut rng, &lock(&offsets), since));
        let mut clients = Clients::new();
        let client = Client {
            kind: Kind::Stream,
            uri: broker.uri(),
            queue: stream.clone(),
            life,
            log: log.clone(),
            stop: clients.stop_signal(),
        };
        if let Some(start) = start {
            let (c, o) = (client.clone(), offsets.clone());
            clients.spawn("reader", move |ready| reader(c, o, start, depth, ready));
        }
        for p in 0..publishers {
            let (c, tag) = (client.clone(), format!("l{life}p{p}"));
            clients.spawn("publisher", move |ready| publisher(c, ready, tag));
        }
        let (delay, stuck) = clients.run_until_kill(broker, life, &mut rng).await;

        let l = lock_log(&log);
        let o = lock(&offsets);
        println!(
            "cycle {}/{cycles}: {}, {depth} entries, {publishers} publishers{}, killed after {} \
             ms: published {}, confirmed {}{}",
            life + 1,
            this.describe_start(),
            match start {
                Some(_) => format!(" + reader ({})", o.read_of(life)),
                None => String::new(),
            },
            delay.as_millis(),
            l.sent.len() + l.sent_transient.len() - before_sent,
            l.confirmed.len() - before_confirmed,
            describe_stuck(&stuck),
        );
    }

    // Final life: everything from the first offset.
    let final_life = cycles;
    let mut broker = lives.spawn();
    let depth = u64::from(queue_depth(&broker, &stream, final_life).await);
    gone_since_read(&offsets, final_life, depth);
    let read = read_exactly(
        &broker,
        &stream,
        &offsets,
        final_life,
        Start::First,
        depth,
        true,
    )
    .await;
    if read.len() as u64 != depth {
        lock(&offsets).violations.push(format!(
            "the stream's message count is {depth}, but a read from first got {} entries",
            read.len()
        ));
    }
    let (mut violations, summary) =
        check_stream(&lock_log(&log), &read, &lock(&offsets).from_timestamps);

    // A clean restart changes nothing: the same count, the same entries at the same offsets.
    broker.terminate();
    let broker = lives.spawn();
    let after = u64::from(queue_depth(&broker, &stream, final_life + 1).await);
    if after != read.len() as u64 {
        violations.push(format!(
            "after a clean restart the stream's message count is {after}, but a read from first \
             got {} entries before it",
            read.len()
        ));
    }
    let from = lock(&offsets).sample(&mut rng).unwrap_or(0).min(after);
    let n = (after - from).min(REREAD);
    let to_the_end = from + n == after;
    let reread = read_exactly(
        &broker,
        &stream,
        &offsets,
        final_life + 1,
        Start::Offset(from),
        n,
        to_the_end,
    )
    .await;
    drop(broker);

    let mut o = lock(&offsets);
    println!(
        "{summary}; {} offsets read in all, re-read {} from {from}; {:.1} s",
        o.len(),
        reread.len(),
        started.elapsed().as_secs_f64()
    );
    violations.append(&mut o.take_violations());
    if !violations.is_empty() {
        let n = violations.len();
        violations.truncate(30);
        panic!(
            "Stream: {n} violations (seed {seed}):\n  {}",
            violations.join("\n  ")
        );
    }
}

/// After a restart the stream holds `depth` entries: an offset at or past that which a consumer
/// was given before is gone (the next appends will reuse it), which is a violation.
fn gone_since_read(offsets: &SharedOffsets, life: usize, depth: u64) {
    let mut o = lock(offsets);
    let gone = o.at_or_beyond(depth);
    if let Some((offset, id, read_in)) = gone.first() {
        let v = format!(
            "life {life}: the stream restarted with {depth} entries, but {} offsets from there on \
             had been delivered before, e.g. {offset} ({id:?}, read in life {read_in})",
            gone.len()
        );
        o.violations.push(v);
    }
}
