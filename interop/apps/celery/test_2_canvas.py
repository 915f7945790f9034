"""Canvas primitives through a prefork worker, results in the file:// backend (rpc:// has no chords)."""
import uuid

import pytest
from celery import chain, chord, group

from celery_app import file_app as app

WORKER = dict(app_attr="file_app", pool="prefork", concurrency=2, label="canvas")
T = 90


@pytest.fixture(autouse=True)
def _worker(module_worker):
    return module_worker


def sig(name, *args):
    return app.signature(f"demo.{name}", args=args)


def test_group():
    res = group(sig("add", i, i) for i in range(10)).apply_async()
    assert res.get(timeout=T) == [2 * i for i in range(10)]


def test_chain():
    res = chain(sig("add", 1, 1), sig("add", 2), sig("add", 3)).apply_async()
    assert res.get(timeout=T) == 7


def test_chord():
    res = chord(sig("add", i, i) for i in range(8))(sig("tsum"))
    assert res.get(timeout=T) == sum(2 * i for i in range(8))


def test_chord_with_retrying_header():
    token = f"chord-{uuid.uuid4().hex}"
    res = chord([sig("add", 1, 2), sig("flaky", token, 2)])(sig("collect"))
    assert res.get(timeout=T) == [3, {"retries": 2, "executions": 3}]


def test_zz_worker_connection_stayed_up(module_worker):
    assert module_worker.connection_trouble() == []
