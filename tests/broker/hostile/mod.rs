//! Hostile peers: floods, stalls, deep nesting and limits. Every test keeps the abuse going
//! while it checks that the broker process stays up and that a second, well-behaved client can
//! connect, declare, publish and get within 5 s ([`assert_served_within_5s`]).
//!
//! Abusers are tasks bounded in time (they stop when told to, or after [`ABUSE_MAX`]); they
//! reconnect when the broker closes them, so the abuse really goes on while the probe runs.

mod depth;
mod floods;
mod limits;
mod nesting;
mod stalls;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::common::*;

/// No abuser runs longer than this, whatever happens to the test.
pub const ABUSE_MAX: Duration = Duration::from_secs(60);

/// A set of abusing tasks sharing one stop flag.
pub struct Abuse {
    stop: Arc<AtomicBool>,
    started: Instant,
    tasks: Vec<JoinHandle<()>>,
}

impl Abuse {
    pub fn new() -> Abuse {
        Abuse {
            stop: Arc::new(AtomicBool::new(false)),
            started: Instant::now(),
            tasks: Vec::new(),
        }
    }

    /// Starts `abuser(going_on)`; it should loop while `going_on()` is true.
    pub fn spawn<F, Fut>(&mut self, abuser: F)
    where
        F: FnOnce(GoingOn) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let going_on = GoingOn {
            stop: self.stop.clone(),
            until: self.started + ABUSE_MAX,
        };
        self.tasks.push(tokio::spawn(abuser(going_on)));
    }

    /// Tells every abuser to stop and waits (briefly) for them.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            // A task blocked writing to a socket the broker no longer reads is just dropped.
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

/// An abuser's licence to go on.
#[derive(Clone)]
pub struct GoingOn {
    stop: Arc<AtomicBool>,
    until: Instant,
}

impl GoingOn {
    pub fn yes(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && Instant::now() < self.until
    }
}

/// A well-behaved client connects, declares a queue, publishes to it and gets the message
/// back, all within 5 s.
pub async fn assert_served_within_5s(broker: &TestBroker) {
    let started = Instant::now();
    let served = tokio::time::timeout(Duration::from_secs(5), async {
        let (conn, ch) = broker.channel().await;
        let queue = unique("probe");
        declare_queue(&ch, &queue).await;
        publish(&ch, "", &queue, b"probe").await;
        let body = get_body(&ch, &queue).await;
        delete_queue(&ch, &queue).await;
        let _ = conn.close(200, "bye".into()).await;
        body
    })
    .await;
    match served {
        Ok(body) => assert_eq!(
            body.as_deref(),
            Some(&b"probe"[..]),
            "probe got its message"
        ),
        Err(_) => panic!(
            "a well-behaved client was not served within 5 s (gave up after {:?})",
            started.elapsed()
        ),
    }
}

/// Probes `times` times, a little apart, while abuse goes on; then checks the process is up.
pub async fn assert_served_during_abuse(broker: &mut TestBroker, times: usize) {
    for _ in 0..times {
        assert_served_within_5s(broker).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(broker.is_running(), "broker process died");
}
