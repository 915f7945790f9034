//! The load: a [`Checker`] runs the publishers and consumers of clients.rs on one queue, and
//! drains it when told to finish.

use std::sync::Arc;
use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use parking_lot::Mutex;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

use super::clients::{
    RETRY_PAUSE, RPC_TIMEOUT, close, connect, consumer, open_channel, publisher, sweep,
};
use super::{History, Report, Uris};

/// The time the drain keeps for its basic.get sweep before the hard deadline.
const SWEEP_RESERVE: Duration = Duration::from_secs(4);

/// The load the checker puts on one queue.
#[derive(Clone)]
pub struct Load {
    pub queue: String,
    pub publishers: usize,
    pub consumers: usize,
    /// Each consumer's basic.qos.
    pub prefetch: u16,
    /// Unconfirmed publishes one publisher keeps in flight.
    pub window: usize,
    /// Messages a second each publisher sends at most (0: as fast as confirms come).
    pub rate: u32,
    /// Bytes of padding after the id in each body.
    pub padding: usize,
    /// Publishers stop by themselves this long after the start.
    pub max_publish: Duration,
    /// Everything (consumers, the drain) ends this long after the start, whatever happens.
    pub max_total: Duration,
}

impl Load {
    pub fn new(queue: &str) -> Load {
        Load {
            queue: queue.to_string(),
            publishers: 3,
            consumers: 2,
            prefetch: 50,
            window: 32,
            rate: 0,
            padding: 100,
            max_publish: Duration::from_secs(20),
            max_total: Duration::from_secs(28),
        }
    }
}

/// What every client task shares.
#[derive(Clone)]
pub(super) struct Ctx {
    pub(super) load: Arc<Load>,
    pub(super) uris: Uris,
    pub(super) history: Arc<Mutex<History>>,
    /// Publishers stop at the earlier of this and `stop_publishing`.
    pub(super) publish_until: Instant,
    /// Nothing goes on past this.
    pub(super) hard_deadline: Instant,
}

/// A running load, and the drain and check once it is told to finish.
pub struct Checker {
    ctx: Ctx,
    stop_publishing: CancellationToken,
    stop_consuming: CancellationToken,
    publishers: Vec<JoinHandle<()>>,
    consumers: Vec<JoinHandle<()>>,
}

impl Checker {
    /// Starts `load.publishers` publishers and `load.consumers` consumers on `load.queue`
    /// (which must exist: see [`declare_queue`]).
    pub fn start(load: Load, uris: Uris) -> Checker {
        let now = Instant::now();
        let ctx = Ctx {
            publish_until: now + load.max_publish,
            hard_deadline: now + load.max_total,
            load: Arc::new(load),
            uris,
            history: Arc::default(),
        };
        let stop_publishing = CancellationToken::new();
        let stop_consuming = CancellationToken::new();
        let publishers = (0..ctx.load.publishers)
            .map(|i| tokio::spawn(publisher(i, ctx.clone(), stop_publishing.clone())))
            .collect();
        let consumers = (0..ctx.load.consumers)
            .map(|i| tokio::spawn(consumer(i, ctx.clone(), stop_consuming.clone())))
            .collect();
        Checker {
            ctx,
            stop_publishing,
            stop_consuming,
            publishers,
            consumers,
        }
    }

    /// Publishes confirmed so far.
    pub fn confirmed(&self) -> usize {
        self.ctx.history.lock().confirmed
    }

    /// Waits until at least `n` publishes are confirmed (true), or `within` has passed (false).
    pub async fn wait_for_confirmed(&self, n: usize, within: Duration) -> bool {
        let until = Instant::now() + within;
        loop {
            if self.confirmed() >= n {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the publishers and waits for them (each collects the confirms still due).
    pub async fn stop_publishers(&mut self) {
        self.stop_publishing.cancel();
        join_all(std::mem::take(&mut self.publishers), self.ctx.hard_deadline).await;
    }

    /// Stops the publishers, lets the consumers run until the queue is empty and nothing was
    /// delivered for `quiet`, stops them, reads what is left with basic.get, and checks.
    pub async fn finish(mut self, quiet: Duration) -> Report {
        self.stop_publishers().await;
        let ctx = &self.ctx;
        let drain_started = Instant::now();
        let mut probe = Prober::default();
        // The consumers drain until the queue is empty and nothing came for `quiet` (with no
        // consumer left, quiet is enough: the sweep reads the rest), leaving the sweep time.
        let until = ctx
            .hard_deadline
            .checked_sub(SWEEP_RESERVE)
            .unwrap_or(ctx.hard_deadline);
        while Instant::now() < until {
            let last = ctx.history.lock().last_delivery.unwrap_or(drain_started);
            let last = last.max(drain_started);
            if last.elapsed() >= quiet {
                let consuming = self.consumers.iter().any(|c| !c.is_finished());
                if !consuming || probe.depth(ctx).await == Some(0) {
                    break;
                }
            }
            sleep(Duration::from_millis(200)).await;
        }
        self.stop_consuming.cancel();
        join_all(std::mem::take(&mut self.consumers), ctx.hard_deadline).await;
        sweep(ctx).await;
        let left = probe.depth(ctx).await;
        let mut report = ctx.history.lock().report();
        report.left_in_queue = left;
        report
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stop_publishing.cancel();
        self.stop_consuming.cancel();
        for task in self.publishers.iter().chain(&self.consumers) {
            task.abort();
        }
    }
}

/// Waits for `tasks` until `deadline`, then aborts what is left.
async fn join_all(tasks: Vec<JoinHandle<()>>, deadline: Instant) {
    for mut task in tasks {
        if timeout_at(deadline, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// Declares `queue` durable with `arguments`, through any of `uris`, retrying until `within`.
pub async fn declare_queue(
    uris: &Uris,
    queue: &str,
    arguments: FieldTable,
    within: Duration,
) -> Result<(), String> {
    let until = Instant::now() + within;
    let mut last_error = String::from("no attempt");
    let mut attempt = 0;
    while Instant::now() < until {
        match connect(uris, attempt).await {
            Ok(conn) => {
                let declared = async {
                    let ch = conn.create_channel().await?;
                    let options = QueueDeclareOptions {
                        durable: true,
                        ..Default::default()
                    };
                    ch.queue_declare(queue.into(), options, arguments.clone())
                        .await
                        .map(|_| ())
                };
                match timeout(RPC_TIMEOUT, declared).await {
                    Ok(Ok(())) => {
                        close(conn).await;
                        return Ok(());
                    }
                    Ok(Err(e)) => last_error = e.to_string(),
                    Err(_) => last_error = "queue.declare timed out".into(),
                }
            }
            Err(e) => last_error = e,
        }
        attempt += 1;
        sleep(RETRY_PAUSE).await;
    }
    Err(last_error)
}

/// Asks a node how many messages are ready in the queue (a passive queue.declare), keeping
/// one connection for successive asks.
#[derive(Default)]
struct Prober {
    conn: Option<(Connection, Channel)>,
    attempt: usize,
}

impl Prober {
    async fn depth(&mut self, ctx: &Ctx) -> Option<u32> {
        for _ in 0..2 {
            if self.conn.is_none() {
                let conn = connect(&ctx.uris, self.attempt).await.ok();
                self.attempt += 1;
                let conn = conn?;
                let ch = open_channel(&conn).await?;
                self.conn = Some((conn, ch));
            }
            let (_, ch) = self.conn.as_ref()?;
            let options = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let declared = timeout(
                RPC_TIMEOUT,
                ch.queue_declare(
                    ctx.load.queue.as_str().into(),
                    options,
                    FieldTable::default(),
                ),
            )
            .await;
            match declared {
                Ok(Ok(queue)) => return Some(queue.message_count()),
                _ => self.conn = None,
            }
        }
        None
    }
}
