//! One producer: its own connection, publishing stamped messages in batches (many publishes
//! encoded into one buffer, one `write_all`), with an optional rate limit and an optional
//! publisher-confirm window. A reader task on the other half of the socket handles confirms and
//! server closes, and records confirm latency from each message's send stamp. Messages carry
//! the producer's id and their number in the body (see [`crate::wire`]), and optionally a
//! cycling `priority`, an `expiration`, and a delay (cycling through its targets, see
//! [`crate::delay`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amq_protocol::protocol::{AMQPClass, confirm};
use tokio::sync::{Notify, watch};

use crate::Error;
use crate::client::{CHANNEL, Conn, Reader, close_error};
use crate::config::Uri;
use crate::delay::Target;
use crate::stats::{LocalHist, Stats};
use crate::wire::{Inbound, MessageSpec, PublishTemplate, now_ns};

pub struct ProducerSpec {
    pub id: usize,
    pub uri: Uri,
    /// Where message number k goes: `targets[k mod n]` (one target without --delays).
    pub targets: Vec<Target>,
    /// Delivery mode, size, priorities, expiration (its `producer` is this producer's id).
    pub message: MessageSpec,
    /// Confirm window (0 = no confirms).
    pub confirm: u32,
    pub rate: f64,
    /// Messages to send (0 = unlimited).
    pub messages: u64,
}

/// Bytes per socket write when publishing flat out.
const BATCH_BYTES: usize = 128 * 1024;
const MAX_BATCH: u64 = 2000;

/// Unconfirmed messages by delivery tag: slot `i` is tag `base + i`, holding its send stamp
/// (0 once confirmed out of order).
#[derive(Default)]
struct Window {
    base: u64,
    slots: VecDeque<u64>,
    outstanding: u64,
}

impl Window {
    /// Settles `tag` (and everything before it when `multiple`); calls `each` with the send
    /// stamp of every newly settled message. Unknown tags are ignored.
    fn settle(&mut self, tag: u64, multiple: bool, mut each: impl FnMut(u64)) -> u64 {
        let mut n = 0;
        if tag < self.base {
            return 0;
        }
        let idx = (tag - self.base) as usize;
        if multiple {
            let upto = (idx + 1).min(self.slots.len());
            for stamp in self.slots.drain(..upto) {
                if stamp != 0 {
                    each(stamp);
                    n += 1;
                }
            }
            self.base += upto as u64;
        } else if let Some(slot) = self.slots.get_mut(idx)
            && *slot != 0
        {
            each(*slot);
            *slot = 0;
            n = 1;
        }
        while self.slots.front() == Some(&0) {
            self.slots.pop_front();
            self.base += 1;
        }
        self.outstanding -= n;
        n
    }
}

struct Confirms {
    window: Mutex<Window>,
    changed: Notify,
    failed: AtomicBool,
}

fn lock(m: &Mutex<Window>) -> std::sync::MutexGuard<'_, Window> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub async fn run(
    spec: ProducerSpec,
    stats: Arc<Stats>,
    stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    let mut conn = Conn::open_counting(&spec.uri, stats.blocking.clone()).await?;
    if spec.confirm > 0 {
        let select = AMQPClass::Confirm(confirm::AMQPMethod::Select(confirm::Select {
            nowait: false,
        }));
        match conn.call(select, CHANNEL).await? {
            AMQPClass::Confirm(confirm::AMQPMethod::SelectOk(_)) => {}
            other => return Err(Error(format!("expected confirm.select-ok, got {other:?}"))),
        }
    }
    let mut template =
        PublishTemplate::with_targets(CHANNEL, &spec.targets, &spec.message, conn.frame_max())?;
    let Conn { reader, mut writer } = conn;
    let confirms = Arc::new(Confirms {
        window: Mutex::new(Window {
            base: 1,
            ..Window::default()
        }),
        changed: Notify::new(),
        failed: AtomicBool::new(false),
    });
    let reader_task = tokio::spawn(read_loop(
        reader,
        confirms.clone(),
        stats.clone(),
        stop.clone(),
    ));

    let batch_max = ((BATCH_BYTES / template.wire_len().max(1)) as u64).clamp(1, MAX_BATCH);
    let start = Instant::now();
    let mut sent = 0u64;
    let mut stop_rx = stop.clone();
    let result: Result<(), Error> = async {
        loop {
            if *stop_rx.borrow() || confirms.failed.load(Ordering::Relaxed) {
                break;
            }
            if spec.messages > 0 && sent >= spec.messages {
                break;
            }
            let mut n = batch_max;
            if spec.messages > 0 {
                n = n.min(spec.messages - sent);
            }
            if spec.rate > 0.0 {
                let due = (start.elapsed().as_secs_f64() * spec.rate) as u64 + 1;
                if due <= sent {
                    let next = start + Duration::from_secs_f64(sent as f64 / spec.rate);
                    tokio::select! {
                        _ = tokio::time::sleep_until(next.into()) => {}
                        _ = stop_rx.changed() => {}
                    }
                    writer.heartbeat_if_idle().await?;
                    continue;
                }
                n = n.min(due - sent);
            }
            if spec.confirm > 0 {
                let free = (spec.confirm as u64).saturating_sub(lock(&confirms.window).outstanding);
                if free == 0 {
                    tokio::select! {
                        _ = confirms.changed.notified() => {}
                        _ = stop_rx.changed() => {}
                        _ = tokio::time::sleep(writer.heartbeat_check_interval()) => {}
                    }
                    writer.heartbeat_if_idle().await?;
                    continue;
                }
                n = n.min(free);
            }
            // One stamp per batch: the batch leaves in one write, so its messages are sent
            // together (building a batch takes microseconds).
            let stamp = now_ns().max(1);
            if spec.confirm > 0 {
                let mut w = lock(&confirms.window);
                w.outstanding += n;
                w.slots.extend(std::iter::repeat_n(stamp, n as usize));
            }
            for i in 0..n {
                template.put(&mut writer.buf, stamp, sent + i);
            }
            writer.flush().await?;
            sent += n;
            stats.published.fetch_add(n, Ordering::Relaxed);
        }
        // Wait for the last confirms unless the run is being stopped.
        while spec.confirm > 0 && !*stop_rx.borrow() && !confirms.failed.load(Ordering::Relaxed) {
            if lock(&confirms.window).outstanding == 0 {
                break;
            }
            tokio::select! {
                _ = confirms.changed.notified() => {}
                _ = stop_rx.changed() => {}
                _ = tokio::time::sleep(writer.heartbeat_check_interval()) => {}
            }
            writer.heartbeat_if_idle().await?;
        }
        Ok(())
    }
    .await;
    reader_task.abort();
    let read_result = match reader_task.await {
        Ok(r) => r,
        Err(_) => Ok(()), // aborted: nothing went wrong on the read side
    };
    result.and(read_result)
}

/// Handles everything the server sends a producer: confirms, heartbeats, closes.
async fn read_loop(
    mut reader: Reader,
    confirms: Arc<Confirms>,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    let mut hist = LocalHist::new(&stats.confirm_latency);
    let result = async {
        loop {
            let now = now_ns();
            let (mut acked, mut nacked) = (0, 0);
            while let Some((_, frame)) = reader.frame()? {
                match frame {
                    Inbound::Ack { tag, multiple } => {
                        acked += lock(&confirms.window)
                            .settle(tag, multiple, |s| hist.record(now.saturating_sub(s)));
                    }
                    Inbound::Nack { tag, multiple } => {
                        nacked += lock(&confirms.window).settle(tag, multiple, |_| {});
                    }
                    Inbound::Method(m) => {
                        if let Some(e) = close_error(&m) {
                            return Err(e);
                        }
                    }
                    // Heartbeats; returned messages (basic.return + content) are not counted.
                    _ => {}
                }
            }
            if acked + nacked > 0 {
                stats.confirmed.fetch_add(acked, Ordering::Relaxed);
                stats.nacked.fetch_add(nacked, Ordering::Relaxed);
                confirms.changed.notify_one();
            }
            hist.maybe_flush();
            tokio::select! {
                r = reader.fill() => r?,
                _ = stop.changed() => return Ok(()),
            }
        }
    }
    .await;
    if result.is_err() {
        confirms.failed.store(true, Ordering::Relaxed);
        confirms.changed.notify_one();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_settles_single_multiple_and_out_of_order() {
        let mut w = Window {
            base: 1,
            ..Window::default()
        };
        w.slots.extend([10, 11, 12, 13, 14]);
        w.outstanding = 5;
        let mut seen = vec![];
        assert_eq!(w.settle(3, false, |s| seen.push(s)), 1);
        assert_eq!(w.settle(3, false, |s| seen.push(s)), 0);
        assert_eq!(w.settle(4, true, |s| seen.push(s)), 3);
        assert_eq!(seen, [12, 10, 11, 13]);
        assert_eq!((w.base, w.slots.len(), w.outstanding), (5, 1, 1));
        assert_eq!(w.settle(99, true, |_| {}), 1);
        assert_eq!((w.outstanding, w.settle(2, true, |_| {})), (0, 0));
    }
}
