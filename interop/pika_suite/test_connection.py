"""connection class: authentication, vhosts, tuning, protocol header, close."""
import pika
import pytest
from pika import exceptions as exc

import helpers

REQUIRED_CAPABILITIES = [
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "authentication_failure_close",
    "per_consumer_qos",
]


def _capture_tune(monkeypatch):
    """Record the connection.tune method the server sends."""
    seen = []
    orig = pika.connection.Connection._on_connection_tune

    def spy(self, method_frame):
        seen.append(method_frame.method)
        return orig(self, method_frame)

    monkeypatch.setattr(pika.connection.Connection, "_on_connection_tune", spy)
    return seen


def test_wrong_password_is_refused_with_403_access_refused(params):
    p = params(credentials=pika.PlainCredentials("guest", "definitely-wrong"))
    with pytest.raises(exc.ProbableAuthenticationError) as ei:
        pika.BlockingConnection(p)
    # authentication_failure_close: the server sends connection.close 403
    # before closing the socket, pika keeps it in the message.
    msg = str(ei.value)
    assert "(403)" in msg
    assert ("ACCESS_REFUSED - Login was refused using authentication "
            "mechanism PLAIN. For details see the broker logfile.") in msg


def test_unknown_user_is_refused_with_403_access_refused(params):
    p = params(credentials=pika.PlainCredentials("no-such-user-xyz", "pw"))
    with pytest.raises(exc.ProbableAuthenticationError) as ei:
        pika.BlockingConnection(p)
    msg = str(ei.value)
    assert "(403)" in msg
    assert "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN" in msg


def test_unknown_vhost_is_refused_with_530_not_allowed(params):
    p = params(virtual_host="no-such-vhost-xyz")
    with pytest.raises(exc.ProbableAccessDeniedError) as ei:
        pika.BlockingConnection(p)
    msg = str(ei.value)
    assert "(530)" in msg
    assert "NOT_ALLOWED - vhost no-such-vhost-xyz not found" in msg


def test_server_properties_have_product_and_capabilities(conn):
    sp = conn._impl.server_properties
    assert isinstance(sp.get("product"), (str, bytes)) and sp["product"]
    for key in ("version", "platform", "copyright", "information"):
        assert key in sp, key
    caps = sp["capabilities"]
    for cap in REQUIRED_CAPABILITIES:
        assert caps.get(cap) is True, cap


def test_server_offers_plain_mechanism_and_en_us_locale(monkeypatch, params):
    seen = []
    orig = pika.connection.Connection._on_connection_start

    def spy(self, method_frame):
        seen.append(method_frame.method)
        return orig(self, method_frame)

    monkeypatch.setattr(pika.connection.Connection, "_on_connection_start", spy)
    c = pika.BlockingConnection(params())
    try:
        start = seen[0]
        assert (start.version_major, start.version_minor) == (0, 9)
        mechs = start.mechanisms
        mechs = mechs.decode() if isinstance(mechs, bytes) else mechs
        assert "PLAIN" in mechs.split()
        assert "AMQPLAIN" in mechs.split()
        locales = start.locales
        locales = locales.decode() if isinstance(locales, bytes) else locales
        assert "en_US" in locales.split()
    finally:
        c.close()


def test_tune_proposes_frame_max_131072_channel_max_2047_heartbeat_60(monkeypatch, params):
    seen = _capture_tune(monkeypatch)
    c = pika.BlockingConnection(params())
    try:
        tune = seen[0]
        assert tune.frame_max == 131072
        assert tune.channel_max == 2047
        assert tune.heartbeat == 60
        # pika asks for channel_max 65535 and frame_max 131072: the
        # negotiated values are the server's limits.
        assert c._impl.params.frame_max == 131072
        assert c._impl.params.channel_max == 2047
    finally:
        c.close()


def test_client_smaller_heartbeat_wins_negotiation(monkeypatch, params):
    proposed = []

    def choose(_conn, server_value):
        proposed.append(server_value)
        return 5

    c = pika.BlockingConnection(params(heartbeat=choose))
    try:
        assert proposed == [60]
        assert c._impl.params.heartbeat == 5
        # the connection is usable with the negotiated heartbeat
        ch = c.channel()
        ch.queue_declare(queue="", exclusive=True)
    finally:
        c.close()


def test_client_smaller_channel_max_is_negotiated(params):
    c = pika.BlockingConnection(params(channel_max=10))
    try:
        assert c._impl.params.channel_max == 10
    finally:
        c.close()


def test_wrong_protocol_header_gets_amqp_0_9_1_header_and_close(amqp_url):
    host, port = helpers.host_port(amqp_url)
    data, closed = helpers.raw_exchange(host, port, b"AMQP\x00\x00\x09\x00")
    assert data == b"AMQP\x00\x00\x09\x01"
    assert closed


def test_http_request_gets_amqp_0_9_1_header_and_close(amqp_url):
    host, port = helpers.host_port(amqp_url)
    data, closed = helpers.raw_exchange(
        host, port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data == b"AMQP\x00\x00\x09\x01"
    assert closed


def test_correct_protocol_header_gets_connection_start(amqp_url):
    import socket
    import struct
    host, port = helpers.host_port(amqp_url)
    s = socket.create_connection((host, port), timeout=5)
    try:
        s.sendall(b"AMQP\x00\x00\x09\x01")
        head = b""
        while len(head) < 11:
            d = s.recv(11 - len(head))
            assert d, "server closed before connection.start"
            head += d
        ftype, chan, size = struct.unpack(">BHI", head[:7])
        cls, meth = struct.unpack(">HH", head[7:11])
        assert (ftype, chan) == (1, 0)
        assert (cls, meth) == (10, 10)  # connection.start
    finally:
        s.close()


def test_opening_more_channels_than_channel_max_closes_connection_530(connect):
    # RabbitMQ limits the number of *open* channels to the negotiated
    # channel_max; the next channel.open is a connection error 530.
    c = connect(channel_max=3)
    assert c._impl.params.channel_max == 3
    for n in (1, 2, 3):
        c.channel(channel_number=n)
    code, text = helpers.expect_connection_error(c.channel, channel_number=4)
    assert code == 530
    assert text == ("NOT_ALLOWED - number of channels opened (3) has reached "
                    "the negotiated channel_max (3)")
    assert c.is_closed


def test_channel_number_above_channel_max_is_accepted_below_count_limit(conn):
    # RabbitMQ enforces channel_max on the number of open channels, not on
    # the channel number: channel 2048 opens fine when channel_max is 2047.
    assert conn._impl.params.channel_max == 2047
    ch = conn.channel(channel_number=2048)
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.basic_publish("", q, b"x")
    assert ch.basic_get(q, auto_ack=True)[2] == b"x"


def test_channel_number_reuse_after_close(conn):
    ch = conn.channel(channel_number=7)
    ch.close()
    ch2 = conn.channel(channel_number=7)
    ch2.queue_declare(queue="", exclusive=True)
    assert ch2.is_open


def test_client_initiated_connection_close(params, name):
    c = pika.BlockingConnection(params())
    ch = c.channel()
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    c.close()
    assert c.is_closed
    # the close handshake completed: the exclusive queue is gone
    assert not helpers.queue_exists(params, q)


def test_server_initiated_connection_close_has_code_and_text(conn):
    ch = conn.channel()
    # immediate=true is a connection-level error in RabbitMQ (540)
    helpers.raw_publish(ch, "", "whatever", b"x", immediate=True)
    code, text = helpers.expect_connection_error(
        conn.process_data_events, time_limit=2)
    assert code == 540
    assert text == "NOT_IMPLEMENTED - immediate=true"
    assert conn.is_closed
