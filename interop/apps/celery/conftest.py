"""Fixtures: real ``celery worker`` processes started against $AMQP_URL, and outcome recording."""
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

HERE = pathlib.Path(__file__).resolve().parent
STATE = pathlib.Path(os.environ.setdefault("CELERY_APP_STATE", tempfile.mkdtemp(prefix="celery-app-")))
os.environ.setdefault("CELERY_APP_RESULTS", str(STATE / "results"))
STATE.mkdir(parents=True, exist_ok=True)
pathlib.Path(os.environ["CELERY_APP_RESULTS"]).mkdir(parents=True, exist_ok=True)
sys.path.insert(0, str(HERE))


class Worker:
    """One ``celery -A celery_app:<app> worker`` in its own process group."""

    def __init__(self, app_attr, pool="prefork", concurrency=2, queues=None, label=None,
                 extra_args=(), heartbeat=10):
        self.app_attr = app_attr
        self.pool = pool
        self.concurrency = concurrency
        self.queues = queues
        self.label = label or app_attr.replace("_", "-")
        self.extra_args = list(extra_args)
        self.heartbeat = heartbeat
        self.name = f"{self.label}-{uuid.uuid4().hex[:6]}"
        self.log = STATE / f"worker-{self.name}.log"
        self.proc = None

    @property
    def nodename(self):
        return f"{self.name}@{os.uname().nodename}"

    def start(self, timeout=90):
        cmd = [sys.executable, "-m", "celery", "-A", f"celery_app:{self.app_attr}", "worker",
               f"--pool={self.pool}", "-c", str(self.concurrency), "-n", self.nodename,
               "--loglevel=INFO"]
        if self.queues:
            cmd += ["-Q", ",".join(self.queues)]
        cmd += self.extra_args
        env = dict(os.environ, PYTHONPATH=str(HERE), PYTHONUNBUFFERED="1",
                   DEMO_BROKER_HEARTBEAT=str(self.heartbeat))
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, cwd=str(HERE), env=env, stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        logf.close()
        pidfile = os.environ.get("CELERY_WORKER_PIDFILE")
        if pidfile:  # the suite script's trap kills these process groups
            with open(pidfile, "a") as f:
                f.write(f"{self.proc.pid}\n")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            if b" ready." in self.log.read_bytes():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"worker {self.name} not ready after {timeout}s:\n{self.tail()}")

    def connection_trouble(self):
        """Worker log lines that show its broker connection failing."""
        bad = ("Connection to broker lost", "Cannot connect", "Unrecoverable error",
               "heartbeat", "ConnectionResetError", "Channel.close", "Connection.close")
        return [line for line in self.log.read_text(errors="replace").splitlines()
                if any(b.lower() in line.lower() for b in bad)]

    def tail(self, n=60):
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def _signal_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self):
        """SIGKILL the whole worker (main process and pool children): its connection just drops."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self, timeout=30):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)  # warm shutdown
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(signal.SIGKILL)  # stray pool children, if any
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


@pytest.fixture
def start_worker(request):
    """Factory: start_worker('rpc_app', ...) -> running Worker; all are stopped at teardown."""
    workers = []

    def _start(*args, **kwargs):
        w = Worker(*args, **kwargs)
        workers.append(w)
        return w.start()

    yield _start
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for w in workers:
        w.stop()
        if failed:
            print(f"----- worker {w.name} log (tail) -----\n{w.tail()}")


@pytest.fixture(scope="module")
def module_worker(request):
    params = getattr(request.module, "WORKER", {})
    w = Worker(**params)
    w.start()
    yield w
    w.stop()
    if getattr(request.module, "_any_failed", False):
        print(f"----- worker {w.name} log (tail) -----\n{w.tail()}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        item.module._any_failed = True


def pytest_runtest_logreport(report):
    path = os.environ.get("CELERY_OUTCOMES")
    if not path:
        return
    if report.when == "call" or report.outcome != "passed":
        with open(path, "a") as f:
            f.write(f"{report.nodeid} {report.outcome} {report.when}\n")
