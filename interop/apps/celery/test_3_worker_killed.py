"""acks_late: a worker is SIGKILLed mid-task; the unacked task is redelivered to a new worker."""
import time
import uuid

from celery_app import file_app as app, runs

T = 90


def test_killed_worker_task_redelivered(start_worker):
    first = start_worker("file_app", pool="solo", concurrency=1, queues=["demo_kill"], label="doomed")
    token = f"kill-{uuid.uuid4().hex}"
    r = app.tasks["demo.block_once"].apply_async((token,), queue="demo_kill")

    deadline = time.time() + T
    while runs(token) < 1:  # wait until the first worker is inside the task
        assert time.time() < deadline, f"task never started on {first.name}:\n{first.tail()}"
        time.sleep(0.1)
    first.kill()
    assert not r.ready()

    second = start_worker("file_app", pool="solo", concurrency=1, queues=["demo_kill"], label="rescuer")
    out = r.get(timeout=T)
    assert out["executions"] == 2
    assert out["redelivered"] is True
    assert out["hostname"] == second.nodename
