"""Tasks through one prefork worker (-c 2), results back over AMQP with the rpc:// backend."""
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from celery.exceptions import TaskRevokedError

from celery_app import rpc_app as app, runs

WORKER = dict(app_attr="rpc_app", pool="prefork", concurrency=2, label="rpc",
              extra_args=["-E"])  # -E: the worker publishes task events
T = 60  # generous result timeout (seconds)


@pytest.fixture(autouse=True)
def _worker(module_worker):
    return module_worker


def task(name):
    return app.tasks[f"demo.{name}"]


def test_roundtrip():
    assert task("add").delay(2, 3).get(timeout=T) == 5


def test_many_tasks_in_flight():
    results = [task("add").delay(i, 1000) for i in range(100)]
    assert [r.get(timeout=T) for r in results] == [i + 1000 for i in range(100)]


def test_retry_fails_twice_then_succeeds():
    token = f"flaky-{uuid.uuid4().hex}"
    r = task("flaky").delay(token, 2)
    assert r.get(timeout=T) == {"retries": 2, "executions": 3}
    assert runs(token) == 3


def test_retry_exhausted_raises():
    token = f"flaky-{uuid.uuid4().hex}"
    r = task("flaky").delay(token, 10)  # max_retries=5: gives up after the 6th execution
    with pytest.raises(RuntimeError, match="transient failure 6"):
        r.get(timeout=T)
    assert runs(token) == 6


def test_countdown():
    t0 = time.time()
    ran_at = task("now").apply_async(countdown=2).get(timeout=T)
    assert ran_at >= t0 + 1.9, f"ran {ran_at - t0:.2f}s after submit, countdown was 2s"


def test_eta():
    eta = datetime.now(timezone.utc) + timedelta(seconds=2)
    ran_at = task("now").apply_async(eta=eta).get(timeout=T)
    assert ran_at >= eta.timestamp() - 0.1, f"ran {eta.timestamp() - ran_at:.2f}s before its ETA"


def test_acks_late():
    out = task("late").delay(7).get(timeout=T)
    assert out["x"] == 7 and out["redelivered"] is False


def test_failure_propagates():
    with pytest.raises(ValueError, match="kaboom"):
        task("fail").delay("kaboom").get(timeout=T)


def test_revoke_scheduled_task():
    r = task("add").apply_async((1, 1), countdown=3)
    r.revoke()
    with pytest.raises(TaskRevokedError):
        r.get(timeout=T)
    assert r.state == "REVOKED"


def test_control_ping(module_worker):
    replies = app.control.ping(destination=[module_worker.nodename], timeout=5)
    assert replies == [{module_worker.nodename: {"ok": "pong"}}]


def test_inspect_active_queues(module_worker):
    insp = app.control.inspect(destination=[module_worker.nodename], timeout=5)
    queues = insp.active_queues()
    assert queues and module_worker.nodename in queues, queues
    assert [q["name"] for q in queues[module_worker.nodename]] == ["demo_rpc"]


def test_task_events(module_worker):
    """An event receiver (celeryev topic exchange, queue with x-message-ttl/x-expires) sees the task."""
    seen_any = threading.Event()
    succeeded = {}
    got_it = threading.Event()

    def on_event(event):
        seen_any.set()
        if event.get("type") == "task-succeeded":
            succeeded[event["uuid"]] = event
            got_it.set()

    with app.connection_for_read() as conn:
        recv = app.events.Receiver(conn, handlers={"*": on_event})
        t = threading.Thread(target=recv.capture, kwargs=dict(limit=None, timeout=None, wakeup=True),
                             daemon=True)
        t.start()
        try:
            # the worker sends worker-heartbeat events every 2 s: once one arrives we are bound
            assert seen_any.wait(30), "no event from the worker within 30 s"
            r = task("add").delay(20, 22)
            assert r.get(timeout=T) == 42
            deadline = time.time() + 30
            while r.id not in succeeded and time.time() < deadline:
                got_it.wait(1)
                got_it.clear()
            assert r.id in succeeded, f"no task-succeeded event for {r.id}"
            assert succeeded[r.id]["result"] == "42"
        finally:
            recv.should_stop = True
            t.join(10)


def test_zz_worker_connection_stayed_up(module_worker):
    """No lost connection / missed heartbeats in the worker log (broker_heartbeat=10 s)."""
    assert module_worker.connection_trouble() == []
