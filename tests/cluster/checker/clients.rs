//! The checker's clients: publishers with confirms and consumers with manual acks, each
//! reconnecting (to the URIs in turn) when its connection dies, and the drain's basic.get sweep.

use std::collections::VecDeque;
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::FieldTable;
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, PublisherConfirm,
};
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

use super::load::Ctx;
use super::{Fate, Uris};

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one method round trip (channel.open, basic.qos, queue.declare, ...) may take.
pub(super) const RPC_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a publisher waits for the oldest confirm when its window is full before it gives
/// up on the connection.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause between two failed connection attempts.
pub(super) const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Connection attempts one client makes (across all URIs) before it gives up for good.
const MAX_ATTEMPTS: usize = 400;

/// One connection attempt, to the `attempt`-th of the URIs (round robin).
pub(super) async fn connect(uris: &Uris, attempt: usize) -> Result<Connection, String> {
    let uri = {
        let list = uris.lock();
        if list.is_empty() {
            return Err("no URI to connect to".into());
        }
        list[attempt % list.len()].clone()
    };
    match timeout(
        CONNECT_TIMEOUT,
        Connection::connect(&uri, ConnectionProperties::default()),
    )
    .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("{uri}: {e}")),
        Err(_) => Err(format!("{uri}: connection timed out")),
    }
}

/// Connects to one of the URIs, trying them in turn with short pauses, until it works, `stop`
/// is cancelled, `until` has passed or [`MAX_ATTEMPTS`] attempts failed. `attempt` carries
/// the round robin across calls.
async fn reconnect(
    ctx: &Ctx,
    stop: &CancellationToken,
    until: Instant,
    attempt: &mut usize,
) -> Option<Connection> {
    for _ in 0..MAX_ATTEMPTS {
        if stop.is_cancelled() || Instant::now() >= until {
            return None;
        }
        let tried = *attempt;
        *attempt += 1;
        match connect(&ctx.uris, tried).await {
            Ok(conn) => return Some(conn),
            Err(_) => ctx.history.lock().failed_connects += 1,
        }
        tokio::select! {
            _ = sleep(RETRY_PAUSE) => {}
            _ = stop.cancelled() => return None,
        }
    }
    None
}

/// Closes `conn` politely if it is still up (bounded; a dead one is just dropped).
pub(super) async fn close(conn: Connection) {
    if conn.status().connected() {
        let _ = timeout(
            Duration::from_secs(2),
            conn.close(200, "checker done".into()),
        )
        .await;
    }
}

/// A channel on `conn` (None: the connection is gone or too slow).
pub(super) async fn open_channel(conn: &Connection) -> Option<Channel> {
    timeout(RPC_TIMEOUT, conn.create_channel()).await.ok()?.ok()
}

fn body_for(id: &str, padding: usize) -> Vec<u8> {
    let mut body = format!("{id}|").into_bytes();
    body.resize(body.len() + padding, b'.');
    body
}

/// The id a delivery carries: its message-id, or else its body up to the first '|'.
fn id_of(properties: &BasicProperties, data: &[u8]) -> String {
    if let Some(id) = properties.message_id() {
        return id.to_string();
    }
    let text = String::from_utf8_lossy(data);
    text.split('|').next().unwrap_or_default().to_string()
}

/// Publisher `index`: publishes `p{index}-{seq}` (seq going on across connections) until
/// stopped, with confirms, reconnecting when its connection dies.
pub(super) async fn publisher(index: usize, ctx: Ctx, stop: CancellationToken) {
    let mut seq = 0u64;
    let mut attempt = index;
    while let Some(conn) = reconnect(&ctx, &stop, ctx.publish_until, &mut attempt).await {
        ctx.history.lock().publisher_sessions += 1;
        publish_on(index, &mut seq, &conn, &ctx, &stop).await;
        close(conn).await;
    }
}

/// What a confirm said, recorded; false if it failed (the connection is gone).
fn record_confirm(
    ctx: &Ctx,
    id: &str,
    result: Result<lapin::Result<Confirmation>, tokio::time::error::Elapsed>,
) -> bool {
    let fate = match result {
        Ok(Ok(Confirmation::Ack(None))) => Fate::Confirmed,
        Ok(Ok(Confirmation::Ack(Some(_)))) => Fate::Returned,
        Ok(Ok(Confirmation::Nack(_))) => Fate::Nacked,
        // Confirms are on: this would be a lapin oddity; the fate stays unknown.
        Ok(Ok(Confirmation::NotRequested)) => return true,
        Ok(Err(_)) | Err(_) => return false,
    };
    ctx.history.lock().settle(id, fate);
    true
}

/// One publisher connection's life.
async fn publish_on(
    index: usize,
    seq: &mut u64,
    conn: &Connection,
    ctx: &Ctx,
    stop: &CancellationToken,
) {
    let Some(ch) = open_channel(conn).await else {
        return;
    };
    let selected = timeout(
        RPC_TIMEOUT,
        ch.confirm_select(ConfirmSelectOptions::default()),
    )
    .await;
    if !matches!(selected, Ok(Ok(()))) {
        return;
    }
    let load = &ctx.load;
    let mut inflight: VecDeque<(String, PublisherConfirm)> = VecDeque::new();
    // The rate is kept per connection: no burst to catch up after an outage.
    let started = Instant::now();
    let mut sent = 0u32;
    'publishing: while !stop.is_cancelled() && Instant::now() < ctx.publish_until {
        if load.rate > 0 {
            let due = started + Duration::from_secs_f64(f64::from(sent) / f64::from(load.rate));
            sent += 1;
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = stop.cancelled() => break 'publishing,
            }
        }
        let id = format!("p{index}-{seq}");
        *seq += 1;
        ctx.history.lock().attempt(&id);
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(id.as_str().into());
        let options = BasicPublishOptions {
            mandatory: true,
            ..Default::default()
        };
        let body = body_for(&id, load.padding);
        let published = ch.basic_publish(
            "".into(),
            load.queue.as_str().into(),
            options,
            &body,
            properties,
        );
        match timeout(RPC_TIMEOUT, published).await {
            Ok(Ok(confirm)) => inflight.push_back((id, confirm)),
            _ => break 'publishing,
        }
        // Confirms already in.
        while let Some((_, confirm)) = inflight.front_mut() {
            let Some(result) = futures_lite::future::poll_once(confirm).await else {
                break;
            };
            let Some((id, _)) = inflight.pop_front() else {
                break;
            };
            if !record_confirm(ctx, &id, Ok(result)) {
                break 'publishing;
            }
        }
        // A full window: wait for the oldest.
        while inflight.len() >= load.window {
            let Some((id, confirm)) = inflight.pop_front() else {
                break;
            };
            if !record_confirm(ctx, &id, timeout(CONFIRM_TIMEOUT, confirm).await) {
                break 'publishing;
            }
        }
    }
    // Stopped, or the connection failed: collect the confirms still due (on a dead
    // connection they fail at once and those publishes stay unknown).
    let until = (Instant::now() + CONFIRM_TIMEOUT).min(ctx.hard_deadline);
    for (id, confirm) in inflight {
        record_confirm(ctx, &id, timeout_at(until, confirm).await);
    }
}

/// Consumer `index`: consumes with manual acks until stopped, reconnecting when its
/// connection dies.
pub(super) async fn consumer(index: usize, ctx: Ctx, stop: CancellationToken) {
    let mut attempt = index;
    while let Some(conn) = reconnect(&ctx, &stop, ctx.hard_deadline, &mut attempt).await {
        ctx.history.lock().consumer_sessions += 1;
        consume_on(index, &conn, &ctx, &stop).await;
        close(conn).await;
    }
}

/// One consumer connection's life: records each delivery, then acks it.
async fn consume_on(index: usize, conn: &Connection, ctx: &Ctx, stop: &CancellationToken) {
    let Some(ch) = open_channel(conn).await else {
        return;
    };
    let qos = timeout(
        RPC_TIMEOUT,
        ch.basic_qos(ctx.load.prefetch, BasicQosOptions::default()),
    )
    .await;
    if !matches!(qos, Ok(Ok(()))) {
        return;
    }
    let consume = ch.basic_consume(
        ctx.load.queue.as_str().into(),
        format!("checker-c{index}").as_str().into(),
        BasicConsumeOptions::default(),
        FieldTable::default(),
    );
    let Ok(Ok(mut deliveries)) = timeout(RPC_TIMEOUT, consume).await else {
        return;
    };
    loop {
        let next = tokio::select! {
            next = deliveries.next() => next,
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(ctx.hard_deadline) => return,
        };
        let Some(Ok(delivery)) = next else {
            return;
        };
        let id = id_of(&delivery.properties, &delivery.data);
        ctx.history.lock().deliver(&id, delivery.redelivered);
        let acked = timeout(RPC_TIMEOUT, delivery.ack(BasicAckOptions::default())).await;
        if !matches!(acked, Ok(Ok(true))) {
            return;
        }
    }
}

/// The last of the drain, once the consumers are gone: basic.get (recording and acking) until
/// the queue says it is empty, reconnecting if need be, until the hard deadline.
pub(super) async fn sweep(ctx: &Ctx) {
    let never = CancellationToken::new();
    let mut attempt = 0;
    while let Some(conn) = reconnect(ctx, &never, ctx.hard_deadline, &mut attempt).await {
        let emptied = sweep_on(&conn, ctx).await;
        close(conn).await;
        if emptied {
            return;
        }
    }
}

/// True once basic.get found the queue empty; false if the connection failed first.
async fn sweep_on(conn: &Connection, ctx: &Ctx) -> bool {
    let Some(ch) = open_channel(conn).await else {
        return false;
    };
    while Instant::now() < ctx.hard_deadline {
        let got = timeout(
            RPC_TIMEOUT,
            ch.basic_get(ctx.load.queue.as_str().into(), BasicGetOptions::default()),
        )
        .await;
        let message = match got {
            Ok(Ok(Some(message))) => message,
            Ok(Ok(None)) => return true,
            _ => return false,
        };
        let delivery = message.delivery;
        let id = id_of(&delivery.properties, &delivery.data);
        ctx.history.lock().deliver(&id, delivery.redelivered);
        let acked = timeout(RPC_TIMEOUT, delivery.ack(BasicAckOptions::default())).await;
        if !matches!(acked, Ok(Ok(true))) {
            return false;
        }
    }
    false
}
