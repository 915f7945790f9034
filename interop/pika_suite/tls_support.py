"""TLS helpers for test_tls.py and the tenant broker's TLS listener (tenancy.py).

interop/run gives the broker under test a TLS listener and passes its port as AMQPS_PORT and
the throwaway certificates it made (suites/lib/tls-certs.sh) as TLS_CERTS_DIR:
ca_certificate.pem, the server's certificate and key, and client_certificate.pem /
client_key.pem, which the CA signed (subject /O=client/CN=interop-client). That listener uses
verify_peer with fail_if_no_peer_cert = true.
"""
import os
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pika

import helpers

SKIP_REASON = ("AMQPS_PORT and TLS_CERTS_DIR are not set: the broker has no TLS listener "
               "(run the suite through interop/run, which gives it one)")

# What the server certificate is issued for (tls-certs.sh: DNS:localhost, IP:127.0.0.1).
SERVER_HOSTNAME = "localhost"

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


class TlsEnv(object):
    def __init__(self, port, certs):
        self.port = port
        self.certs = Path(certs)

    def path(self, name):
        return str(self.certs / name)

    def client_dn(self):
        """The client certificate's subject as RabbitMQ formats it for ssl_cert_login_from =
        distinguished_name (RDNs last to first, RFC 4514): what openssl prints with
        -nameopt RFC2253, e.g. CN=interop-client,O=client."""
        out = subprocess.run(
            ["openssl", "x509", "-in", self.path("client_certificate.pem"), "-noout",
             "-subject", "-nameopt", "RFC2253"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, timeout=30,
        ).stdout.decode().strip()
        prefix = "subject="
        assert out.startswith(prefix), out
        return out[len(prefix):].strip()


def environment():
    """The broker's TLS listener and certificates, or None without AMQPS_PORT/TLS_CERTS_DIR."""
    port = os.environ.get("AMQPS_PORT")
    certs = os.environ.get("TLS_CERTS_DIR")
    if not port or not certs:
        return None
    return TlsEnv(int(port), certs)


ENV = environment()

VERSIONS = {
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def context(env, client_cert=True, version=None):
    """A client SSLContext trusting the run's CA; presenting the client certificate unless
    client_cert is false; limited to one TLS version ("TLSv1.2", "TLSv1.3") if given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(env.path("ca_certificate.pem"))
    if client_cert:
        ctx.load_cert_chain(env.path("client_certificate.pem"), env.path("client_key.pem"))
    if version is not None:
        ctx.minimum_version = VERSIONS[version]
        ctx.maximum_version = VERSIONS[version]
    return ctx


def ssl_options(env, client_cert=True, version=None):
    return pika.SSLOptions(context(env, client_cert, version), SERVER_HOSTNAME)


def params(host, port, credentials, vhost="/", tls=None, **overrides):
    """pika.ConnectionParameters with the suite's timeouts; tls is a pika.SSLOptions or None."""
    p = pika.ConnectionParameters(host=host, port=port, virtual_host=vhost,
                                  credentials=credentials, ssl_options=tls)
    return helpers.with_suite_timeouts(p, **overrides)


def negotiated_version(conn):
    """The TLS version of a pika BlockingConnection's socket ("TLSv1.2", "TLSv1.3")."""
    return conn._impl._transport._sock.version()


def refused_by_tls_alert(error):
    """Whether a failed connection attempt ended in a TLS alert from the server (as opposed to
    an AMQP refusal): pika raises the ssl.SSLError itself when the handshake fails, or (TLS
    1.3, where the client finishes the handshake first) reports the stream lost to it while
    waiting for connection.start."""
    text = repr(error)
    return "SSL" in text and "alert" in text.lower() and "ConnectionClosedByBroker" not in text


def client_hello():
    """The first flight of a TLS client: a ClientHello, as bytes."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=SERVER_HOSTNAME)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def exchange_until_closed(host, port, data, timeout=10.0):
    """Sends data on a fresh TCP connection and reads until the server closes it (EOF or
    reset). Returns (received bytes, seconds until closed); the seconds are None if the server
    had not closed it within timeout."""
    s = socket.create_connection((host, port), timeout=timeout)
    buf = b""
    started = time.monotonic()
    try:
        s.sendall(data)
        while True:
            try:
                chunk = s.recv(4096)
            except (ConnectionResetError, BrokenPipeError):
                return buf, time.monotonic() - started
            except socket.timeout:
                return buf, None
            if not chunk:
                return buf, time.monotonic() - started
            buf += chunk
    finally:
        s.close()


def is_fatal_tls_alert(data):
    """data is one TLS record: a fatal alert (content type 21, level 2)."""
    return len(data) == 7 and data[0] == 0x15 and data[1] == 0x03 and data[5] == 2


def free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()
