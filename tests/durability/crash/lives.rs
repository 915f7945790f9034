//! One broker life of a crash test, whatever the queue type: a broker started on the data
//! directory (sometimes after one was crashed in the middle of its recovery), with the test's
//! configuration if it has one, clients that get ready, a SIGKILL at a random moment, and the
//! clients collected afterwards. Also the knobs every
//! variant reads from the environment (`WARREN_CRASH_CYCLES`, `WARREN_CRASH_SEED`).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::common::*;

use super::clients::{Ready, Rng};

/// How many kill/restart cycles (`WARREN_CRASH_CYCLES`, default 5).
pub(super) fn cycles() -> usize {
    std::env::var("WARREN_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

/// The seed of the random choices (`WARREN_CRASH_SEED`, else the clock).
pub(super) fn seed() -> u64 {
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

/// Starts the brokers of one test on its data directory, one life after another.
pub(super) struct Lives<'a> {
    dir: &'a Path,
    /// The configuration file every broker of the test reads (`--config`), removed on drop.
    config: Option<PathBuf>,
    last_startup: Duration,
}

/// One broker life.
pub(super) struct Life {
    pub(super) broker: TestBroker,
    /// How long the broker took to listen (its recovery, after a crash).
    pub(super) startup: Duration,
    /// A broker crashed this many ms into its start-up before this one started.
    pub(super) recovery_kill: Option<u128>,
}

impl<'a> Lives<'a> {
    /// Brokers on `dir`, each started with the configuration `config` (TOML) if there is one.
    pub(super) fn new(dir: &'a Path, config: Option<&str>) -> Lives<'a> {
        let config = config.map(|toml| {
            let path = std::env::temp_dir().join(format!("{}.toml", unique("warren-crash")));
            std::fs::write(&path, toml).expect("write the crash test's config file");
            path
        });
        Lives {
            dir,
            config,
            last_startup: Duration::from_millis(20),
        }
    }

    /// The arguments every broker of the test gets after `--data-dir`.
    fn args(&self) -> Vec<&str> {
        match &self.config {
            Some(path) => vec!["--config", path.to_str().expect("utf-8 temp path")],
            None => Vec::new(),
        }
    }

    /// A broker on the data directory, outside the killed lives (the final drain, the clean
    /// restart after it).
    pub(super) fn spawn(&self) -> TestBroker {
        TestBroker::spawn_in(self.dir, &self.args())
    }

    /// The broker of life `life` (0 = the first). In a later life, sometimes crashes a broker
    /// while it is still recovering, before the real one starts.
    pub(super) fn start(&mut self, life: usize, rng: &mut Rng) -> Life {
        let recovery_kill = (life > 0 && rng.chance(25)).then(|| {
            let ms = rng.range(0, self.last_startup.as_millis() as u64 + 5);
            kill_during_startup(self.dir, &self.args(), Duration::from_millis(ms))
        });
        let t0 = Instant::now();
        let broker = self.spawn();
        let startup = t0.elapsed();
        self.last_startup = startup;
        Life {
            broker,
            startup,
            recovery_kill,
        }
    }
}

impl Drop for Lives<'_> {
    fn drop(&mut self) {
        if let Some(path) = &self.config {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Life {
    /// "start N ms", after "(a broker killed M ms into its start-up)" when there was one.
    pub(super) fn describe_start(&self) -> String {
        let killed = match self.recovery_kill {
            Some(ms) => format!("(a broker killed {ms} ms into its start-up) "),
            None => String::new(),
        };
        format!("{killed}start {} ms", self.startup.as_millis())
    }
}

/// Starts a broker on `dir` (with `args`) and SIGKILLs it after `after` (whether or not it is
/// listening yet, so possibly in the middle of recovery). Returns the delay in ms.
fn kill_during_startup(dir: &Path, args: &[&str], after: Duration) -> u128 {
    let mut child = warren_command(dir, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn warren");
    std::thread::sleep(after);
    let _ = child.kill();
    let _ = child.wait();
    after.as_millis()
}

/// Ready messages in the queue (a stream's entries), by passive declare on a fresh connection;
/// panics if the queue is gone.
pub(super) async fn queue_depth(broker: &TestBroker, queue: &str, life: usize) -> u32 {
    let (conn, ch) = broker.channel().await;
    let n = match declare_queue_passive(&ch, queue).await {
        Ok(q) => q.message_count(),
        Err(e) => panic!("life {life}: durable queue {queue} not recovered after kill -9: {e:?}"),
    };
    let _ = conn.close(200, "bye".into()).await;
    n
}

/// The client tasks of one life: each reports once it is set up, and watches a stop signal that
/// turns true right after the broker was killed.
pub(super) struct Clients {
    ready_tx: Ready,
    ready_rx: mpsc::Receiver<()>,
    stop_tx: watch::Sender<bool>,
    handles: Vec<(&'static str, JoinHandle<()>)>,
}

impl Clients {
    pub(super) fn new() -> Clients {
        let (ready_tx, ready_rx) = mpsc::channel(8);
        let (stop_tx, _) = watch::channel(false);
        Clients {
            ready_tx,
            ready_rx,
            stop_tx,
            handles: Vec::new(),
        }
    }

    /// What a client watches to learn that its broker is gone.
    pub(super) fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop_tx.subscribe()
    }

    /// Spawns a client: `task` gets the sender it reports ready on.
    pub(super) fn spawn<F>(&mut self, what: &'static str, task: impl FnOnce(Ready) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task(self.ready_tx.clone()));
        self.handles.push((what, handle));
    }

    /// Waits until every client is ready, lets them run for a random 100 to 700 ms, kills the
    /// broker with SIGKILL, tells the clients, and collects them. Returns how long they ran and
    /// which were aborted (see [`join_all`]).
    pub(super) async fn run_until_kill(
        self,
        broker: &mut TestBroker,
        life: usize,
        rng: &mut Rng,
    ) -> (Duration, Vec<&'static str>) {
        let Clients {
            ready_tx,
            mut ready_rx,
            stop_tx,
            handles,
        } = self;
        // The clients hold the only senders now: one that fails before it is ready ends the
        // wait.
        drop(ready_tx);
        for _ in 0..handles.len() {
            tokio::time::timeout(Duration::from_secs(10), ready_rx.recv())
                .await
                .unwrap_or_else(|_| panic!("life {life}: clients not ready within 10 s"))
                .unwrap_or_else(|| panic!("life {life}: a client failed to set up"));
        }
        let delay = Duration::from_millis(rng.range(100, 700));
        tokio::time::sleep(delay).await;
        broker.kill9();
        let _ = stop_tx.send(true);
        (delay, join_all(handles).await)
    }
}

/// Waits for the clients of one life to finish (they were told to stop; their broker is dead);
/// aborts any still running after 10 s. A client panic fails the test. Returns which were
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

/// " (aborted, still running 10 s after the kill: [...])", or nothing.
pub(super) fn describe_stuck(stuck: &[&str]) -> String {
    if stuck.is_empty() {
        String::new()
    } else {
        format!(" (aborted, still running 10 s after the kill: {stuck:?})")
    }
}
