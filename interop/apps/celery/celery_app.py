"""A small Celery application, written as any Celery user would write it against RabbitMQ.

Two Celery apps share the same tasks:

* ``rpc_app``  -- result backend ``rpc://``: results travel back over AMQP too (a per-client
  reply queue on the ``c.rep`` direct exchange).  Most scenarios use it.
* ``file_app`` -- result backend ``file://`` (Celery's FilesystemBackend).  ``rpc://`` cannot do
  chords, and the filesystem backend needs no extra server or package; chords on it are
  completed by Celery's ``celery.chord_unlock`` task, which polls with ``self.retry(countdown=1)``
  -- more AMQP traffic (re-published messages with an ETA) for the broker.

Each app uses its own default queue so that a worker of one app never takes the other's tasks.
Broker: ``$AMQP_URL`` (``amqp://`` = py-amqp through kombu).
"""
import os
import pathlib
import socket
import time

from celery import Celery
from kombu import Queue

BROKER_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
STATE_DIR = pathlib.Path(os.environ.get("CELERY_APP_STATE", "/tmp/celery-app-state"))
RESULTS_DIR = pathlib.Path(os.environ.get("CELERY_APP_RESULTS", str(STATE_DIR / "results")))


def _common_conf(app, queue):
    app.conf.update(
        task_default_queue=queue,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=10,
        result_expires=None,
        worker_redirect_stdouts=True,
        timezone="UTC",
        # workers get a short heartbeat from the test harness (DEMO_BROKER_HEARTBEAT) so that
        # AMQP heartbeats flow both ways during the run; clients keep Celery's default (120 s)
        broker_heartbeat=int(os.environ.get("DEMO_BROKER_HEARTBEAT", "120")),
    )


def _record(token):
    """Append one line per execution of a task for ``token``; return how many there were."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    path = STATE_DIR / f"{token}.runs"
    with open(path, "a") as f:
        f.write(f"{os.getpid()} {socket.gethostname()} {time.time()}\n")
    with open(path) as f:
        return sum(1 for _ in f)


def order(token):
    path = STATE_DIR / f"{token}.order"
    return path.read_text().split() if path.exists() else []


def runs(token):
    path = STATE_DIR / f"{token}.runs"
    if not path.exists():
        return 0
    with open(path) as f:
        return sum(1 for _ in f)


def register_tasks(app):
    @app.task(name="demo.add", shared=False)
    def add(x, y):
        return x + y

    @app.task(name="demo.tsum", shared=False)
    def tsum(values):
        return sum(values)

    @app.task(name="demo.collect", shared=False)
    def collect(values):
        return values

    @app.task(name="demo.record", shared=False)
    def record(token, label):
        """Appends ``label`` to the execution log of ``token`` (for ordering checks)."""
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with open(STATE_DIR / f"{token}.order", "a") as f:
            f.write(f"{label}\n")
        return label

    @app.task(name="demo.now", shared=False)
    def now():
        """Returns when it ran (for countdown/ETA checks)."""
        return time.time()

    @app.task(name="demo.fail", shared=False)
    def fail(msg):
        raise ValueError(msg)

    @app.task(name="demo.flaky", shared=False, bind=True, max_retries=5)
    def flaky(self, token, failures=2):
        """Fails ``failures`` times, retried each time via self.retry(countdown=1), then succeeds."""
        n = _record(token)
        if self.request.retries < failures:
            raise self.retry(exc=RuntimeError(f"transient failure {n}"), countdown=1)
        return {"retries": self.request.retries, "executions": n}

    @app.task(name="demo.late", shared=False, bind=True, acks_late=True)
    def late(self, x):
        info = self.request.delivery_info or {}
        return {"x": x, "redelivered": bool(info.get("redelivered")),
                "hostname": self.request.hostname}

    @app.task(name="demo.block_once", shared=False, bind=True, acks_late=True)
    def block_once(self, token, block_seconds=300):
        """acks_late: the first execution blocks (its worker gets killed); a redelivery returns."""
        n = _record(token)
        if n == 1:
            deadline = time.time() + block_seconds
            while time.time() < deadline:
                time.sleep(0.2)
            raise RuntimeError("first execution was not killed")
        info = self.request.delivery_info or {}
        return {"executions": n, "redelivered": bool(info.get("redelivered")),
                "hostname": self.request.hostname}

    return app


rpc_app = register_tasks(Celery("rpc_demo", broker=BROKER_URL, backend="rpc://"))
_common_conf(rpc_app, "demo_rpc")

file_app = register_tasks(Celery("file_demo", broker=BROKER_URL,
                                 backend="file://" + str(RESULTS_DIR)))
_common_conf(file_app, "demo_file")
file_app.conf.task_queues = [
    Queue("demo_file"),
    Queue("demo_kill"),
    # a priority queue, as Celery's docs set one up for RabbitMQ
    Queue("demo_prio", queue_arguments={"x-max-priority": 10}),
]
