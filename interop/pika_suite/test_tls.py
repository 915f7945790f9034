"""TLS (amqps) and SASL EXTERNAL with pika's SSLOptions and ExternalCredentials.

The broker's own TLS listener (AMQPS_PORT, see interop/run) uses verify_peer and
fail_if_no_peer_cert = true, with the certificates in TLS_CERTS_DIR (tls_support.py). SASL
EXTERNAL runs against the tenant broker (tenancy.py), whose TLS listener offers EXTERNAL,
asks for a certificate without requiring one, and knows a passwordless user named as the client
certificate's subject (CN=interop-client,O=client), with permissions on vhost tn-ext only.
"""
import ssl
import time

import pika
import pika.connection
import pytest
from pika import exceptions as exc

import helpers
import tenancy
import tls_support

pytestmark = pytest.mark.skipif(tls_support.ENV is None, reason=tls_support.SKIP_REASON)

VERSIONS = ["TLSv1.2", "TLSv1.3"]


@pytest.fixture
def tls_env():
    return tls_support.ENV


@pytest.fixture
def host(amqp_url):
    return helpers.host_port(amqp_url)[0]


@pytest.fixture
def tls_params(tls_env, host):
    """Factory: parameters for the broker's TLS listener as guest (PLAIN) on "/"."""

    def make(client_cert=True, version=None, **overrides):
        return tls_support.params(
            host, tls_env.port, pika.PlainCredentials("guest", "guest"), "/",
            tls=tls_support.ssl_options(tls_env, client_cert, version), **overrides)

    return make


@pytest.fixture
def opened():
    """Factory: opens a BlockingConnection from parameters (closed again at teardown)."""
    conns = []

    def make(p):
        c = pika.BlockingConnection(p)
        conns.append(c)
        return c

    yield make
    for c in conns:
        try:
            if c.is_open:
                c.close()
        except Exception:
            pass


@pytest.fixture
def offered(monkeypatch):
    """The mechanisms of every connection.start pika receives, as sorted lists of names
    (RabbitMQ lists them in an order of its own, not the same on every node)."""
    seen = []
    orig = pika.connection.Connection._on_connection_start

    def spy(self, method_frame):
        mechs = method_frame.method.mechanisms
        mechs = mechs.decode() if isinstance(mechs, bytes) else mechs
        seen.append(sorted(mechs.split()))
        return orig(self, method_frame)

    monkeypatch.setattr(pika.connection.Connection, "_on_connection_start", spy)
    return seen


def publish_and_get(conn, name, body):
    ch = conn.channel()
    q = ch.queue_declare(name("tls"), exclusive=True).method.queue
    ch.confirm_delivery()
    ch.basic_publish("", q, body)
    method, _, got = ch.basic_get(q, auto_ack=True)
    assert method is not None and got == body
    return ch


def assert_serving_tls(opened, tls_params, name):
    """A new TLS connection with the client certificate works (the broker kept serving)."""
    publish_and_get(opened(tls_params()), name, b"still serving")


# ------------------------------------------------------ the broker's listener ----
def test_publish_and_consume_over_tls_with_a_client_certificate(opened, tls_params, name):
    conn = opened(tls_params())
    ch = conn.channel()
    q = ch.queue_declare(name("tls"), exclusive=True).method.queue
    got = helpers.Collector()
    ch.basic_consume(q, got, auto_ack=False)
    ch.confirm_delivery()
    bodies = [b"first", b"x" * 300000, b"third"]  # the large one spans many TLS records
    for i, body in enumerate(bodies):
        ch.basic_publish("", q, body, pika.BasicProperties(
            content_type="text/plain", headers={"i": i}, delivery_mode=2))
    assert got.wait(conn, 3) == 3
    assert got.bodies == bodies
    assert [p.headers["i"] for _, p, _ in got.items] == [0, 1, 2]
    assert all(p.content_type == "text/plain" for _, p, _ in got.items)
    ch.basic_ack(got.tags[-1], multiple=True)
    assert helpers.queue_counts(ch, q) == (0, 1)


@pytest.mark.parametrize("version", VERSIONS)
def test_tls_version_forced_by_the_client_is_negotiated(opened, tls_params, name, version):
    conn = opened(tls_params(version=version))
    assert tls_support.negotiated_version(conn) == version
    publish_and_get(conn, name, version.encode())


@pytest.mark.parametrize("version", VERSIONS)
def test_client_without_a_certificate_is_refused_at_the_tls_handshake(
        opened, tls_params, name, version):
    with pytest.raises((ssl.SSLError, exc.AMQPConnectionError)) as ei:
        opened(tls_params(client_cert=False, version=version))
    assert tls_support.refused_by_tls_alert(ei.value), repr(ei.value)
    assert_serving_tls(opened, tls_params, name)


def test_plain_amqp_on_the_tls_port_fails_cleanly_and_the_broker_keeps_serving(
        opened, tls_params, tls_env, host, params, name):
    # The AMQP header is no ClientHello: a fatal TLS alert, if anything, and the socket closed
    # at once; never an AMQP answer.
    data, closed_after = tls_support.exchange_until_closed(
        host, tls_env.port, tls_support.AMQP_HEADER)
    assert closed_after is not None and closed_after < 5, closed_after
    assert data == b"" or tls_support.is_fatal_tls_alert(data), data
    # pika without TLS on the TLS port: no connection.start ever comes.
    with pytest.raises(exc.IncompatibleProtocolError):
        opened(params(port=tls_env.port))
    assert_serving_tls(opened, tls_params, name)


def test_tls_client_hello_on_the_plain_port_fails_cleanly_and_the_broker_keeps_serving(
        opened, tls_params, tls_env, host, params, name, amqp_url):
    plain_port = helpers.host_port(amqp_url)[1]
    # A ClientHello is a bad protocol header: answered with the AMQP one, then closed.
    data, closed_after = tls_support.exchange_until_closed(
        host, plain_port, tls_support.client_hello())
    assert data == tls_support.AMQP_HEADER, data
    assert closed_after is not None and closed_after < 5, closed_after
    # pika with TLS on the plain port: its TLS handshake fails on those bytes.
    with pytest.raises(ssl.SSLError):
        opened(params(ssl_options=tls_support.ssl_options(tls_env)))
    publish_and_get(opened(params()), name, b"plain still serving")
    assert_serving_tls(opened, tls_params, name)


# ------------------------------------------------------------- SASL EXTERNAL ----
@pytest.fixture
def tenant_tls(tenant_broker):
    if tenant_broker.tls_port is None:
        pytest.skip("the tenant broker has no TLS listener")
    return tenant_broker


def external(tenant, vhost=tenancy.EXTERNAL_VHOST, client_cert=True, **overrides):
    return tenant.tls_params(pika.credentials.ExternalCredentials(), vhost,
                             client_cert=client_cert, **overrides)


class _ForcedExternal(pika.credentials.ExternalCredentials):
    """EXTERNAL whatever the broker offers (pika's own refuses to send a mechanism that is not
    offered), so that the broker's answer to it can be seen."""

    def response_for(self, start):
        return "EXTERNAL", b""


def test_external_login_with_the_client_certificate_publishes_and_gets(
        tenant_tls, opened, offered, name):
    conn = opened(external(tenant_tls))
    assert offered == [["AMQPLAIN", "EXTERNAL", "PLAIN"]]
    user = tenant_tls.external_user
    ch = publish_and_get(conn, name, b"as the certificate")
    # The connection's user is the certificate's subject: user_id must name it.
    q = ch.queue_declare(name("ext"), exclusive=True).method.queue
    ch.basic_publish("", q, b"mine", pika.BasicProperties(user_id=user))
    method, props, body = ch.basic_get(q, auto_ack=True)
    assert (body, props.user_id) == (b"mine", user)
    code, text = helpers.expect_channel_error(
        ch.basic_publish, "", q, b"not mine", pika.BasicProperties(user_id="tn-alice"))
    assert (code, text) == (406, "PRECONDITION_FAILED - user_id property set to 'tn-alice' "
                                 "but authenticated user was '%s'" % user)


def test_external_user_has_only_its_own_permissions(tenant_tls):
    user = tenant_tls.external_user
    with pytest.raises(exc.ProbableAccessDeniedError) as ei:
        pika.BlockingConnection(external(tenant_tls, vhost="tn-a"))
    assert tenancy.closed_with(
        530, "NOT_ALLOWED - access to vhost 'tn-a' refused for user '%s'" % user
    ) in str(ei.value)


def test_external_is_not_offered_on_the_plain_port(tenant_tls, offered):
    plain = tenant_tls.params("tn-alice", tenancy.EXTERNAL_VHOST,
                              credentials=pika.credentials.ExternalCredentials())
    # pika sees that EXTERNAL is not offered and gives up before start-ok.
    with pytest.raises(exc.AuthenticationError):
        pika.BlockingConnection(plain)
    assert offered == [["AMQPLAIN", "PLAIN"]]
    # Sent anyway, EXTERNAL is refused by the broker: RabbitMQ raises 503 ("invalid
    # authentication mechanism") before the connection has started, which it answers with
    # no connection.close, closing the socket after 3 s.
    plain.credentials = _ForcedExternal()
    started = time.monotonic()
    with pytest.raises(exc.ProbableAuthenticationError) as ei:
        pika.BlockingConnection(plain)
    after = time.monotonic() - started
    assert "StreamLostError" in str(ei.value), str(ei.value)
    assert "ConnectionClosedByBroker" not in str(ei.value), str(ei.value)
    assert 2.9 <= after < 10, after


def test_tls_client_without_a_certificate_cannot_use_external(tenant_tls, opened, offered,
                                                             name):
    # This listener lets clients without a certificate through the TLS handshake...
    alice = opened(tenant_tls.tls_params(
        pika.PlainCredentials("tn-alice", tenancy.PASSWORDS["tn-alice"]), "tn-a",
        client_cert=False))
    publish_and_get(alice, name, b"no certificate, PLAIN")
    # ... and offers them EXTERNAL too, but refuses it: nobody to log in as.
    with pytest.raises(exc.ProbableAuthenticationError) as ei:
        pika.BlockingConnection(external(tenant_tls, client_cert=False))
    assert offered == [["AMQPLAIN", "EXTERNAL", "PLAIN"]] * 2
    assert tenancy.closed_with(
        403, "ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL. "
             "For details see the broker logfile.") in str(ei.value)
