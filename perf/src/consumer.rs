//! One consumer: its own connection, basic.consume with its arguments (e.g. x-stream-offset), or
//! basic.get polling with `--get`, optional basic.qos, auto-ack or manual acks (multiple=true
//! every N). Each socket read is processed in full before the acks it produced go out in one
//! write; end-to-end latency comes from the send stamp in the first 8 body bytes, and the next 8
//! (producer and message number) with the `priority` property feed the order checks of
//! [`crate::order`]. A delayed message (a delay field in the next 8, see [`crate::delay`])
//! records its lateness instead of its latency, and is not order-checked (delays reorder). At the end the consumer reports its own count and rate (from consume-ok to
//! its last message).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use amq_protocol::protocol::{AMQPClass, basic};
use amq_protocol::types::FieldTable;
use tokio::sync::watch;
use warren_protocol::encode;

use crate::Error;
use crate::client::{CHANNEL, Conn};
use crate::config::{Uri, short_str};
use crate::order::OrderCheck;
use crate::stats::{ConsumerSummary, LocalHist, Stats};
use crate::wire::{Inbound, now_ns, put_ack};

pub struct ConsumerSpec {
    pub id: usize,
    pub uri: Uri,
    pub queue: String,
    pub auto_ack: bool,
    pub prefetch: u16,
    pub ack_every: u32,
    pub get: bool,
    /// basic.consume arguments.
    pub arguments: FieldTable,
    /// Messages to consume before stopping (0 = unlimited).
    pub messages: u64,
}

/// Where we are in the method + header + body sequence of one delivery.
enum Content {
    Idle,
    Header {
        tag: u64,
    },
    Body {
        tag: u64,
        remaining: u64,
        first: bool,
        priority: Option<u8>,
    },
}

/// Pause after basic.get-empty before polling again.
const GET_EMPTY_PAUSE: Duration = Duration::from_millis(1);

pub async fn run(
    spec: ConsumerSpec,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    let mut conn = Conn::open_counting(&spec.uri, stats.blocking.clone()).await?;
    if spec.prefetch > 0 {
        let qos = basic::Qos {
            prefetch_count: spec.prefetch,
            global: false,
        };
        match conn
            .call(AMQPClass::Basic(basic::AMQPMethod::Qos(qos)), CHANNEL)
            .await?
        {
            AMQPClass::Basic(basic::AMQPMethod::QosOk(_)) => {}
            other => return Err(Error(format!("expected basic.qos-ok, got {other:?}"))),
        }
    }
    let queue = short_str(&spec.queue)?;
    if !spec.get {
        let consume = basic::Consume {
            queue: queue.clone(),
            consumer_tag: short_str(&format!("warren-perf-{}", spec.id))?,
            no_local: false,
            no_ack: spec.auto_ack,
            exclusive: false,
            nowait: false,
            arguments: spec.arguments.clone(),
        };
        match conn
            .call(
                AMQPClass::Basic(basic::AMQPMethod::Consume(consume)),
                CHANNEL,
            )
            .await?
        {
            AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_)) => {}
            other => return Err(Error(format!("expected basic.consume-ok, got {other:?}"))),
        }
    }
    let get = AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
        queue,
        no_ack: spec.auto_ack,
    }));
    // With a prefetch smaller than the ack batch the broker would stop delivering first.
    let ack_every = if spec.prefetch > 0 {
        spec.ack_every.min(spec.prefetch as u32)
    } else {
        spec.ack_every
    } as u64;

    let mut hist = LocalHist::new(&stats.latency);
    let mut lateness = LocalHist::new(&stats.lateness);
    let mut order = OrderCheck::default();
    let mut state = Content::Idle;
    let started = Instant::now();
    let mut last_at = started;
    let (mut consumed, mut unacked, mut last_tag) = (0u64, 0u64, 0u64);
    let mut get_inflight = false;
    let mut heartbeat = tokio::time::interval(conn.writer.heartbeat_check_interval());
    let result: Result<(), Error> = async {
        loop {
            if spec.get && !get_inflight {
                encode::method(&mut conn.writer.buf, CHANNEL, &get);
                conn.writer.flush().await?;
                get_inflight = true;
            }
            // Frames already buffered first (deliveries can arrive with consume-ok), then wait.
            let mut batch = 0u64;
            let mut empty = false;
            let now = now_ns();
            while let Some((_, frame)) = conn.reader.frame()? {
                let done_tag = match (frame, &mut state) {
                    (
                        Inbound::Deliver { delivery_tag } | Inbound::GetOk { delivery_tag },
                        Content::Idle,
                    ) => {
                        state = Content::Header { tag: delivery_tag };
                        None
                    }
                    (
                        Inbound::Header {
                            body_size,
                            priority,
                        },
                        Content::Header { tag },
                    ) => {
                        let tag = *tag;
                        if body_size == 0 {
                            state = Content::Idle;
                            Some(tag)
                        } else {
                            state = Content::Body {
                                tag,
                                remaining: body_size,
                                first: true,
                                priority,
                            };
                            None
                        }
                    }
                    (
                        Inbound::Body {
                            len,
                            head,
                            seq,
                            delay,
                        },
                        Content::Body {
                            tag,
                            remaining,
                            first,
                            priority,
                        },
                    ) => {
                        if *first && let (Some(sent), Some(delay)) = (head, delay) {
                            let late = crate::delay::lateness_ns(now, sent, delay);
                            stats.record_lateness(&mut lateness, late);
                        } else if *first {
                            if let Some(sent) = head {
                                hist.record(now.saturating_sub(sent));
                            }
                            if let Some(seq) = seq {
                                let broken = order.observe(*priority, seq);
                                if broken.order {
                                    stats.order_violations.fetch_add(1, Ordering::Relaxed);
                                }
                                if broken.priority {
                                    stats.priority_inversions.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        *first = false;
                        *remaining = remaining.saturating_sub(len as u64);
                        if *remaining == 0 {
                            let tag = *tag;
                            state = Content::Idle;
                            Some(tag)
                        } else {
                            None
                        }
                    }
                    (Inbound::Heartbeat, _) => None,
                    (
                        Inbound::Method(AMQPClass::Basic(basic::AMQPMethod::GetEmpty(_))),
                        Content::Idle,
                    ) => {
                        get_inflight = false;
                        empty = true;
                        None
                    }
                    (Inbound::Method(AMQPClass::Basic(basic::AMQPMethod::Cancel(_))), _) => {
                        return Err(Error::msg("consumer cancelled by the server"));
                    }
                    (Inbound::Method(m), _) => {
                        if let Some(e) = crate::client::close_error(&m) {
                            return Err(e);
                        }
                        None
                    }
                    (other, _) => return Err(Error(format!("unexpected frame {other:?}"))),
                };
                let Some(tag) = done_tag else { continue };
                batch += 1;
                get_inflight = false;
                if !spec.auto_ack {
                    unacked += 1;
                    last_tag = tag;
                    if unacked >= ack_every {
                        put_ack(&mut conn.writer.buf, CHANNEL, last_tag, ack_every > 1);
                        unacked = 0;
                    }
                }
                if spec.messages > 0 && consumed + batch >= spec.messages {
                    break;
                }
                if spec.get {
                    // One basic.get in flight at a time.
                    break;
                }
            }
            consumed += batch;
            if batch > 0 {
                last_at = Instant::now();
            }
            stats.consumed.fetch_add(batch, Ordering::Relaxed);
            hist.maybe_flush();
            lateness.maybe_flush();
            if spec.messages > 0 && consumed >= spec.messages {
                if unacked > 0 {
                    put_ack(&mut conn.writer.buf, CHANNEL, last_tag, true);
                }
                conn.writer.flush().await?;
                return Ok(());
            }
            conn.writer.flush().await?;
            if empty {
                tokio::time::sleep(GET_EMPTY_PAUSE).await;
                continue;
            }
            if spec.get && !get_inflight {
                continue;
            }
            tokio::select! {
                r = conn.reader.fill() => r?,
                _ = stop.changed() => return Ok(()),
                _ = heartbeat.tick() => conn.writer.heartbeat_if_idle().await?,
            }
        }
    }
    .await;
    hist.flush();
    drop(hist);
    drop(lateness);
    stats.consumer_done(ConsumerSummary::new(
        spec.id,
        consumed,
        last_at.duration_since(started),
    ));
    if result.is_ok() {
        if unacked > 0 && !spec.auto_ack {
            put_ack(&mut conn.writer.buf, CHANNEL, last_tag, true);
            let _ = conn.writer.flush().await;
        }
        conn.close().await;
    }
    result
}
