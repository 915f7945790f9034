"""Priority queue (x-max-priority) as Celery's docs set it up: tasks queued before a worker with
prefetch 1 starts run highest priority first, FIFO within a priority."""
import uuid

from celery_app import file_app as app, order

T = 90


def test_priority_order(start_worker):
    token = f"prio-{uuid.uuid4().hex}"
    rec = app.tasks["demo.record"]
    results = []
    for i in range(4):
        for prio in (0, 5, 9):
            results.append(rec.apply_async((token, f"p{prio}-{i}"), queue="demo_prio", priority=prio))
    start_worker("file_app", pool="solo", concurrency=1, queues=["demo_prio"], label="prio",
                 extra_args=["--prefetch-multiplier", "1"])
    for r in results:
        r.get(timeout=T)
    assert order(token) == [f"p{p}-{i}" for p in (9, 5, 0) for i in range(4)]
