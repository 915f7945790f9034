//! The timer on its own, with stand-in targets: order, one registration per target, waking for
//! an earlier deadline, lazy rescheduling, dropped targets, shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::*;

/// A stand-in for a queue: `deadline` is when it really has work to do.
#[derive(Default)]
struct Target {
    name: &'static str,
    deadline: AtomicU64,
    registered: Registered,
}

impl Scheduled for Target {
    fn registered(&self) -> &Registered {
        &self.registered
    }
}

fn target(name: &'static str) -> Arc<Target> {
    Arc::new(Target {
        name,
        ..Default::default()
    })
}

fn names(targets: &[Arc<Target>]) -> Vec<&'static str> {
    targets.iter().map(|t| t.name).collect()
}

/// Runs `timer` on a task; what fires comes out of the receiver as (name, now). A target fired
/// before its `deadline` (a lazily moved one) registers that deadline again instead.
fn spawn_run(
    timer: &Arc<Deadlines<Target>>,
) -> (
    mpsc::UnboundedReceiver<(&'static str, u64)>,
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (fired_tx, fired) = mpsc::unbounded_channel();
    let (shutdown, shutdown_rx) = watch::channel(false);
    let run_timer = timer.clone();
    let task = tokio::spawn(async move {
        run_timer
            .run(shutdown_rx, |t, now| {
                let deadline = t.deadline.load(Ordering::Relaxed);
                if deadline > now {
                    run_timer.register(&t, deadline);
                } else {
                    let _ = fired_tx.send((t.name, now));
                }
            })
            .await;
    });
    (fired, shutdown, task)
}

async fn next_fired(
    fired: &mut mpsc::UnboundedReceiver<(&'static str, u64)>,
) -> (&'static str, u64) {
    tokio::time::timeout(Duration::from_secs(5), fired.recv())
        .await
        .expect("a deadline fired in time")
        .expect("the timer runs")
}

#[test]
fn due_targets_come_out_earliest_first() {
    let timer = Deadlines::default();
    let (a, b, c) = (target("a"), target("b"), target("c"));
    timer.register(&c, 300);
    timer.register(&a, 100);
    timer.register(&b, 200);
    assert!(timer.take_due(99, 10).is_empty());
    assert_eq!(names(&timer.take_due(250, 10)), ["a", "b"]);
    assert_eq!(timer.next_due(), Some(300));
    assert_eq!(names(&timer.take_due(1000, 10)), ["c"]);
    assert_eq!(timer.next_due(), None);
}

#[test]
fn take_due_stops_at_its_batch_size() {
    let timer = Deadlines::default();
    let targets: Vec<_> = (0..5).map(|_| target("t")).collect();
    for (i, t) in targets.iter().enumerate() {
        timer.register(t, 10 + i as u64);
    }
    assert_eq!(timer.take_due(100, 3).len(), 3);
    assert_eq!(timer.take_due(100, 3).len(), 2);
}

#[test]
fn a_target_is_registered_once_under_its_earliest_deadline() {
    let timer = Deadlines::default();
    let a = target("a");
    timer.register(&a, 500);
    timer.register(&a, 200);
    timer.register(&a, 300);
    timer.register(&a, 200);
    assert_eq!(timer.due.lock().len(), 1);
    assert_eq!(timer.next_due(), Some(200));
    assert!(a.registered.covers(200) && !a.registered.covers(199));
}

#[test]
fn a_fired_target_can_register_again() {
    let timer = Deadlines::default();
    let a = target("a");
    timer.register(&a, 100);
    assert_eq!(timer.take_due(100, 10).len(), 1);
    assert!(!a.registered.covers(u64::MAX - 1));
    timer.register(&a, 400);
    assert_eq!(timer.next_due(), Some(400));
}

#[test]
fn dropped_targets_are_skipped() {
    let timer = Deadlines::default();
    let (a, b) = (target("a"), target("b"));
    timer.register(&a, 100);
    timer.register(&b, 200);
    drop(a);
    assert_eq!(names(&timer.take_due(1000, 10)), ["b"]);
    assert!(timer.due.lock().is_empty());
}

#[test]
fn a_cancelled_target_does_not_fire() {
    let timer = Deadlines::default();
    let (a, b) = (target("a"), target("b"));
    timer.register(&a, 100);
    timer.register(&b, 200);
    timer.cancel(&a);
    timer.cancel(&a);
    assert_eq!(names(&timer.take_due(1000, 10)), ["b"]);
    // And it may register again later.
    timer.register(&a, 300);
    assert_eq!(names(&timer.take_due(1000, 10)), ["a"]);
}

#[tokio::test]
async fn deadlines_fire_in_order_once_due() {
    let timer = Arc::new(Deadlines::default());
    let (a, b) = (target("a"), target("b"));
    let now = clock::now_ms();
    timer.register(&b, now + 60);
    timer.register(&a, now + 30);
    let (mut fired, _shutdown, _task) = spawn_run(&timer);
    let (first, at) = next_fired(&mut fired).await;
    assert_eq!(first, "a");
    assert!(at >= now + 30);
    let (second, at) = next_fired(&mut fired).await;
    assert_eq!(second, "b");
    assert!(at >= now + 60);
}

#[tokio::test]
async fn an_earlier_deadline_wakes_the_sleeping_task() {
    let timer = Arc::new(Deadlines::default());
    let (late, early) = (target("late"), target("early"));
    timer.register(&late, clock::now_ms() + 600_000);
    let (mut fired, _shutdown, _task) = spawn_run(&timer);
    // Let the task go to sleep until the late deadline.
    tokio::time::sleep(Duration::from_millis(20)).await;
    timer.register(&early, clock::now_ms() + 10);
    assert_eq!(next_fired(&mut fired).await.0, "early");
}

#[tokio::test]
async fn a_deadline_moved_later_fires_at_its_new_time() {
    let timer = Arc::new(Deadlines::default());
    let a = target("a");
    let now = clock::now_ms();
    a.deadline.store(now + 30, Ordering::Relaxed);
    timer.register(&a, now + 30);
    // Moved later without registering (as `Queue::touch` does): the old entry stays.
    a.deadline.store(now + 120, Ordering::Relaxed);
    timer.register(&a, now + 120);
    assert_eq!(timer.next_due(), Some(now + 30));
    let (mut fired, _shutdown, _task) = spawn_run(&timer);
    let (name, at) = next_fired(&mut fired).await;
    assert_eq!(name, "a");
    assert!(at >= now + 120, "fired at {at}, due {}", now + 120);
}

#[tokio::test]
async fn run_returns_when_shutdown_turns_true() {
    let timer = Arc::new(Deadlines::default());
    let a = target("a");
    timer.register(&a, clock::now_ms() + 600_000);
    let (_fired, shutdown, task) = spawn_run(&timer);
    tokio::time::sleep(Duration::from_millis(10)).await;
    shutdown.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("run returned")
        .unwrap();
}
