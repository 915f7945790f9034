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

SASL EXTERNAL (test_tls.py), when the suite runs with a TLS listener
(AMQPS_PORT and TLS_CERTS_DIR, see tls_support.py): the tenant broker also gets
a TLS listener of its own, with verify_peer but not fail_if_no_peer_cert (so
that clients with and without a certificate get through the TLS handshake),
offers EXTERNAL (auth_mechanisms PLAIN, AMQPLAIN, EXTERNAL;
ssl_cert_login_from = distinguished_name), and has a passwordless user named
as the client certificate's subject (read from the certificate, RabbitMQ's
format: CN=interop-client,O=client) with all permissions on vhost tn-ext.
Against warren, all of that is the second warren's config and a merged copy of
tenancy_definitions.json. Against RabbitMQ, on the suite's node:
rabbitmq_auth_mechanism_ssl is enabled, auth_mechanisms set, a second TLS
listener started with those ssl_options (the node's own TLS listener keeps
fail_if_no_peer_cert = true, which test_tls.py checks), and the user made with
rabbitmqctl. This is done at run time, not in interop/run's node config:
py-amqp picks EXTERNAL whenever a broker offers it, and its TLS tests (which
share that config) would then log in as a user that does not exist there.
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
import tls_support

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


# The vhost the EXTERNAL (client certificate) user may use.
EXTERNAL_VHOST = "tn-ext"


class TenantBroker(object):
    def __init__(self, kind, host, port, tls_port=None, external_user=None):
        self.kind = kind
        self.host = host
        self.port = port
        # The TLS listener offering EXTERNAL (None without a TLS setup), and the user the
        # client certificate logs in as there.
        self.tls_port = tls_port
        self.external_user = external_user

    def tls_params(self, credentials, vhost, client_cert=True, version=None, **overrides):
        """pika.ConnectionParameters for the TLS listener (trusting the run's CA, presenting
        the client certificate unless client_cert is false)."""
        return tls_support.params(
            self.host, self.tls_port, credentials, vhost,
            tls=tls_support.ssl_options(tls_support.ENV, client_cert, version), **overrides)

    def params(self, user, vhost, password=None, **overrides):
        """pika.ConnectionParameters for user (its password unless given) on vhost."""
        p = pika.ConnectionParameters(
            host=self.host, port=self.port, virtual_host=vhost,
            credentials=pika.PlainCredentials(
                user, PASSWORDS[user] if password is None else password))
        return helpers.with_suite_timeouts(p, **overrides)


def _rabbitmq_ctl(port, what, script, *args):
    """Runs a bash script with the suite's RabbitMQ node's environment (rabbitmqctl works);
    its arguments are $1..."""
    rmq_dir = os.environ.get("RABBITMQ_DIR")
    tool = os.environ.get("RABBITMQ_TOOL")
    if not rmq_dir or not tool:
        raise RuntimeError("BROKER_KIND=rabbitmq needs RABBITMQ_DIR and RABBITMQ_TOOL "
                           "(run through interop/run --against rabbitmq)")
    setup = 'eval "$(bash "$1" env "$2" "$3")" && shift 3 && '
    r = subprocess.run(["bash", "-c", setup + script, what, tool, rmq_dir, str(port)]
                       + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180)
    if r.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (what, r.stdout.decode(errors="replace")))


def _rabbitmq(port):
    _rabbitmq_ctl(port, "rabbitmqctl import_definitions",
                  'rabbitmqctl import_definitions "$1"', DEFINITIONS)


def _erlang_string(text):
    # The JSON encoding of a plain path is a valid Erlang string literal.
    return json.dumps(text)


def _rabbitmq_external(port, tls, user):
    """EXTERNAL on the suite's RabbitMQ node (see the module docstring); the TLS port."""
    tls_port = tls_support.free_port()
    ssl_options = ", ".join([
        "{cacertfile, %s}" % _erlang_string(tls.path("ca_certificate.pem")),
        "{certfile, %s}" % _erlang_string(tls.path("server_certificate.pem")),
        "{keyfile, %s}" % _erlang_string(tls.path("server_key.pem")),
        "{verify, verify_peer}",
        "{fail_if_no_peer_cert, false}",
    ])
    listener = ('ok = rabbit_networking:start_ssl_listener({"127.0.0.1", %d}, '
                'rabbit_ssl_options:fix([%s]), 1).' % (tls_port, ssl_options))
    mechanisms = ("ok = application:set_env(rabbit, auth_mechanisms, "
                  "['PLAIN', 'AMQPLAIN', 'EXTERNAL']), "
                  "ok = application:set_env(rabbit, ssl_cert_login_from, distinguished_name).")
    script = " && ".join([
        "rabbitmq-plugins enable rabbitmq_auth_mechanism_ssl >/dev/null",
        'rabbitmqctl eval "$1" >/dev/null',
        'rabbitmqctl eval "$2" >/dev/null',
        'rabbitmqctl add_vhost "$3" >/dev/null',
        # add_user needs a password: a random one, cleared at once.
        'rabbitmqctl add_user "$4" "$(head -c 18 /dev/urandom | base64)" >/dev/null',
        'rabbitmqctl clear_password "$4" >/dev/null',
        'rabbitmqctl set_permissions -p "$3" "$4" ".*" ".*" ".*" >/dev/null',
    ])
    _rabbitmq_ctl(port, "enabling EXTERNAL on RabbitMQ", script,
                  mechanisms, listener, EXTERNAL_VHOST, user)
    return tls_port


def _definitions_with_external_user(directory, user):
    """A copy of DEFINITIONS in directory, plus vhost EXTERNAL_VHOST and the passwordless user
    (all permissions there); its path."""
    definitions = json.loads(DEFINITIONS.read_text())
    definitions["vhosts"].append({"name": EXTERNAL_VHOST})
    definitions["users"].append({
        "name": user,
        "password_hash": "",
        "hashing_algorithm": "rabbit_password_hashing_sha256",
        "tags": "",
    })
    definitions["permissions"].append({
        "user": user, "vhost": EXTERNAL_VHOST,
        "configure": ".*", "write": ".*", "read": ".*",
    })
    path = Path(directory) / "tenancy_definitions_external.json"
    path.write_text(json.dumps(definitions, indent=2))
    return path


class _Warren(object):
    """A second warren with load_definitions pointing at DEFINITIONS; with tls (a
    tls_support.TlsEnv), also a TLS listener offering EXTERNAL and the certificate's user
    (external_user) in a merged copy of DEFINITIONS."""

    def __init__(self, tls=None, external_user=None):
        binary = REPO_ROOT / "target" / "release" / "warren"
        if not os.access(str(binary), os.X_OK):
            raise RuntimeError("%s not found: build it (cargo build --release) or run "
                               "through interop/run, which does" % binary)
        self.dir = tempfile.mkdtemp(prefix="warren-tenancy.")
        self.tls_port = None
        config = Path(self.dir) / "warren.toml"
        definitions = DEFINITIONS
        if tls is not None:
            definitions = _definitions_with_external_user(self.dir, external_user)
        # TOML basic strings: the JSON encoding of a path is a valid one.
        lines = ["load_definitions = %s" % json.dumps(str(definitions))]
        if tls is not None:
            lines += [
                'listen_tls = ["127.0.0.1:0"]',
                'auth_mechanisms = ["PLAIN", "AMQPLAIN", "EXTERNAL"]',
                'ssl_cert_login_from = "distinguished_name"',
                "[ssl_options]",
                "cacertfile = %s" % json.dumps(tls.path("ca_certificate.pem")),
                "certfile = %s" % json.dumps(tls.path("server_certificate.pem")),
                "keyfile = %s" % json.dumps(tls.path("server_key.pem")),
                'verify = "verify_peer"',
                "fail_if_no_peer_cert = false",
            ]
        config.write_text("\n".join(lines) + "\n")
        self.log_path = Path(self.dir) / "warren.log"
        self.log = open(str(self.log_path), "wb")
        self.proc = subprocess.Popen(
            [str(binary), "--listen", "127.0.0.1:0", "--management-listen", "127.0.0.1:0",
             "--prometheus-listen", "127.0.0.1:0",
             "--data-dir",
             str(Path(self.dir) / "data"), "--config", str(config)],
            stdout=subprocess.PIPE, stderr=self.log)
        try:
            self.host, self.port, tls_port = self._read_address(timeout=60,
                                                                tls=tls is not None)
            if tls is not None:
                self.tls_port = tls_port
        except Exception:
            self.stop()
            raise

    def _read_address(self, timeout, tls):
        """(host, port, TLS port or None) from warren's "listening" lines."""
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
                plain = secure = None
                # Complete lines only: a chunk may end in the middle of a port number.
                for line in buf.decode(errors="replace").split("\n")[:-1]:
                    for prefix in ("warren: listening on ", "warren: listening for TLS on "):
                        if line.startswith(prefix):
                            host, _, port = line[len(prefix):].strip().rpartition(":")
                            if prefix.endswith("TLS on "):
                                secure = secure or (host, int(port))
                            else:
                                plain = plain or (host, int(port))
                if plain and (secure or not tls):
                    return plain[0], plain[1], secure and secure[1]
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
    tls = tls_support.ENV
    external_user = tls.client_dn() if tls is not None else None
    if kind == "rabbitmq":
        host, port = helpers.host_port(amqp_url)
        _rabbitmq(port)
        tls_port = _rabbitmq_external(port, tls, external_user) if tls is not None else None
        return TenantBroker(kind, host, port, tls_port, external_user), lambda: None
    warren = _Warren(tls, external_user)
    return (TenantBroker(kind, warren.host, warren.port, warren.tls_port, external_user),
            warren.stop)


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
