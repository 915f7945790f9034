"""A broker with the tenancy test fixtures (users, vhosts, permissions, topic
permissions, limits) of tenancy_definitions.json loaded, for test_tenancy_*.py.

Against the reference RabbitMQ (BROKER_KIND=rabbitmq) the file is imported into
the running node with `rabbitmqctl import_definitions`, and the suite's own
host and port are used. Against warren (BROKER_KIND=warren or unset) a second
warren is started from target/release/warren with `load_definitions` set to the
file, on a port of its own, and stopped at the end of the session: that is how
warren loads definitions (at boot), and a broker booted with load_definitions
has neither the guest user nor the "/" vhost (RabbitMQ 3.10 alike), which the
rest of the suite needs. So no test here relies on "/" or guest being there
or not. (A RabbitMQ booted with load_definitions pointing at the same file
passes these tests as well.)

The users' passwords are below; the file holds only their RabbitMQ salted
hashes (salt + SHA-256(salt + password), base64; SHA-512 for tn-bob and
tn-chan2), computed offline; tn-nopass has none.
"""
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pika
import pytest
from pika import exceptions

import helpers

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFINITIONS = HERE / "tenancy_definitions.json"

PASSWORDS = {
    "tn-alice": "alice-secret",
    "tn-bob": "bob-secret",
    "tn-perm": "perm-secret",
    "tn-admin": "admin-secret",
    "tn-impersonator": "impersonator-secret",
    "tn-empty": "empty-secret",
    "tn-conn2": "conn2-secret",
    "tn-conn0": "conn0-secret",
    "tn-chan2": "chan2-secret",
    "tn-lookahead": "lookahead-secret",
}

# RabbitMQ counts connections and channels for limits from events that it
# handles asynchronously after connection.open-ok / channel.open-ok: give it a
# moment between opening one and counting on it (warren counts synchronously;
# a short pause there costs little). Set by start().
TRACKING_DELAY = 1.0


class TenantBroker(object):
    def __init__(self, kind, host, port):
        self.kind = kind
        self.host = host
        self.port = port

    def params(self, user, vhost, password=None, **overrides):
        """pika.ConnectionParameters for user (its password unless given) on vhost."""
        p = pika.ConnectionParameters(
            host=self.host, port=self.port, virtual_host=vhost,
            credentials=pika.PlainCredentials(
                user, PASSWORDS[user] if password is None else password))
        p.connection_attempts = 1
        p.retry_delay = 0
        p.socket_timeout = 5
        p.stack_timeout = 10
        p.blocked_connection_timeout = None
        for k, v in overrides.items():
            setattr(p, k, v)
        return p


def _rabbitmq(port):
    rmq_dir = os.environ.get("RABBITMQ_DIR")
    tool = os.environ.get("RABBITMQ_TOOL")
    if not rmq_dir or not tool:
        raise RuntimeError("BROKER_KIND=rabbitmq needs RABBITMQ_DIR and RABBITMQ_TOOL "
                           "(run through interop/run --against rabbitmq)")
    script = ('eval "$(bash "$1" env "$2" "$3")" && '
              'rabbitmqctl import_definitions "$4"')
    r = subprocess.run(["bash", "-c", script, "import", tool, rmq_dir, str(port),
                        str(DEFINITIONS)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("rabbitmqctl import_definitions failed:\n%s"
                           % r.stdout.decode(errors="replace"))


class _Warren(object):
    """A second warren with load_definitions pointing at DEFINITIONS."""

    def __init__(self):
        binary = REPO_ROOT / "target" / "release" / "warren"
        if not os.access(str(binary), os.X_OK):
            raise RuntimeError("%s not found: build it (cargo build --release) or run "
                               "through interop/run, which does" % binary)
        self.dir = tempfile.mkdtemp(prefix="warren-tenancy.")
        config = Path(self.dir) / "warren.toml"
        # A TOML basic string: the JSON encoding of the path is a valid one.
        config.write_text("load_definitions = %s\n" % json.dumps(str(DEFINITIONS)))
        self.log_path = Path(self.dir) / "warren.log"
        self.log = open(str(self.log_path), "wb")
        self.proc = subprocess.Popen(
            [str(binary), "--listen", "127.0.0.1:0", "--data-dir",
             str(Path(self.dir) / "data"), "--config", str(config)],
            stdout=subprocess.PIPE, stderr=self.log)
        try:
            self.host, self.port = self._read_address(timeout=60)
        except Exception:
            self.stop()
            raise

    def _read_address(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
                for line in buf.decode(errors="replace").splitlines():
                    prefix = "warren: listening on "
                    if line.startswith(prefix):
                        host, _, port = line[len(prefix):].strip().rpartition(":")
                        return host, int(port)
            elif self.proc.poll() is not None:
                break
        raise RuntimeError("warren with load_definitions did not report its address "
                           "(exit status %s); log:\n%s"
                           % (self.proc.poll(), self._log_tail()))

    def _log_tail(self):
        try:
            self.log.flush()
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def start(amqp_url):
    """For the session fixture: returns (TenantBroker, stop)."""
    global TRACKING_DELAY
    kind = os.environ.get("BROKER_KIND") or "warren"
    TRACKING_DELAY = 1.0 if kind == "rabbitmq" else 0.1
    if kind == "rabbitmq":
        host, port = helpers.host_port(amqp_url)
        _rabbitmq(port)
        return TenantBroker(kind, host, port), lambda: None
    warren = _Warren()
    return TenantBroker(kind, warren.host, warren.port), warren.stop


def refused(kind, name, vhost, user):
    """RabbitMQ's 403 text for a refused check on a queue or exchange (kind)."""
    return "ACCESS_REFUSED - access to %s '%s' in vhost '%s' refused for user '%s'" % (
        kind, name, vhost, user)


def topic_refused(routing_key, exchange, vhost, user):
    return ("ACCESS_REFUSED - access to topic '%s' in exchange '%s' in vhost '%s' "
            "refused for user '%s'" % (routing_key, exchange, vhost, user))


def open_refused(tconnect, user, vhost, password=None):
    """Open a connection that the broker must refuse at connection.open; return
    pika's message, which embeds the reply code and the repr of the text."""
    with pytest.raises(exceptions.ProbableAccessDeniedError) as ei:
        tconnect(user, vhost, password)
    return str(ei.value)


def closed_with(code, text):
    """How pika's message for a connection closed during opening spells a
    connection.close of code and text (exact: the text is repr'd)."""
    return "(%d) %r" % (code, text)


def wait_tracked():
    """Let RabbitMQ's connection/channel tracking catch up (see TRACKING_DELAY)."""
    time.sleep(TRACKING_DELAY)


def eventually_connect(tconnect, user, vhost, timeout=5.0):
    """Connect, retrying refusals for a while: RabbitMQ forgets a closed
    connection in its limit counts asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return tconnect(user, vhost)
        except exceptions.ProbableAccessDeniedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
