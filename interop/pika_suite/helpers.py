"""Helpers shared by the pika interop tests (imported by conftest and tests)."""
import socket
import struct
import time
import uuid

import pika
import pika.data
import pika.spec
import pytest
from pika import exceptions as exc


def unique(prefix="x"):
    return "interop-%s-%s" % (prefix, uuid.uuid4().hex[:12])


def with_suite_timeouts(p, **overrides):
    """pika parameters p with the suite's timeouts (one attempt, 5 s socket, 10 s
    stack), then any overrides."""
    p.connection_attempts = 1
    p.retry_delay = 0
    p.socket_timeout = 5
    p.stack_timeout = 10
    p.blocked_connection_timeout = None
    for k, v in overrides.items():
        setattr(p, k, v)
    return p


def make_params(url, **overrides):
    return with_suite_timeouts(pika.URLParameters(url), **overrides)


def host_port(url):
    p = make_params(url)
    return p.host, p.port


def sync(ch):
    """Force a synchronous round trip on ch so that an asynchronous channel
    error (e.g. after basic.publish / basic.ack) is surfaced as an exception."""
    ch.exchange_declare("amq.direct", passive=True)


def expect_channel_error(fn, *args, **kwargs):
    """Run fn and expect the broker to close the channel.
    Returns (reply_code, reply_text)."""
    with pytest.raises(exc.ChannelClosedByBroker) as ei:
        fn(*args, **kwargs)
    return ei.value.reply_code, ei.value.reply_text


def expect_connection_error(fn, *args, **kwargs):
    """Run fn and expect the broker to close the connection.
    Returns (reply_code, reply_text)."""
    with pytest.raises(exc.ConnectionClosedByBroker) as ei:
        fn(*args, **kwargs)
    return ei.value.reply_code, ei.value.reply_text


def get_all(ch, queue, auto_ack=True, limit=100000):
    """basic.get until get-empty; returns list of (method, props, body)."""
    out = []
    while len(out) < limit:
        m, p, b = ch.basic_get(queue, auto_ack=auto_ack)
        if m is None:
            break
        out.append((m, p, b))
    return out


class Collector(object):
    """basic_consume callback that records (method, properties, body)."""

    def __init__(self):
        self.items = []

    def __call__(self, ch, method, props, body):
        self.items.append((method, props, body))

    def __len__(self):
        return len(self.items)

    @property
    def bodies(self):
        return [b for _, _, b in self.items]

    @property
    def tags(self):
        return [m.delivery_tag for m, _, _ in self.items]

    def wait(self, conn, n, timeout=3.0):
        """Process events until at least n deliveries arrived (or timeout)."""
        wait_until(lambda: len(self.items) >= n, conn=conn, timeout=timeout)
        return len(self.items)


def settle(conn, seconds=0.3):
    """Process connection events for a short while (to let deliveries that
    should NOT happen show up)."""
    conn.process_data_events(time_limit=seconds)


def declare_queue(ch, name=None, **kw):
    """Declare a queue and return its name."""
    return ch.queue_declare(queue=name or unique("q"), **kw).method.queue


def queue_counts(ch, queue):
    ok = ch.queue_declare(queue=queue, passive=True).method
    return ok.message_count, ok.consumer_count


def wait_until(pred, conn=None, timeout=3.0, step=0.05):
    """Poll pred() (processing connection events in between) until it is
    truthy or timeout elapses; returns the last value of pred()."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        if conn is not None:
            conn.process_data_events(time_limit=step)
        else:
            time.sleep(step)


def queue_exists(params_factory, queue):
    """Passive-declare the queue on a fresh connection (so a 404 does not
    disturb the caller's channels)."""
    c = pika.BlockingConnection(params_factory())
    try:
        ch = c.channel()
        try:
            ch.queue_declare(queue=queue, passive=True)
            return True
        except exc.ChannelClosedByBroker as e:
            # 405: exists but is exclusive to another connection
            assert e.reply_code in (404, 405), (e.reply_code, e.reply_text)
            return e.reply_code == 405
    finally:
        if c.is_open:
            c.close()


def exchange_exists(params_factory, exchange):
    c = pika.BlockingConnection(params_factory())
    try:
        ch = c.channel()
        try:
            ch.exchange_declare(exchange=exchange, passive=True)
            return True
        except exc.ChannelClosedByBroker as e:
            assert e.reply_code == 404, (e.reply_code, e.reply_text)
            return False
    finally:
        if c.is_open:
            c.close()


def raw_publish(ch, exchange, routing_key, body, properties=None,
                mandatory=False, immediate=False):
    """basic.publish bypassing pika's BlockingChannel API (needed for
    immediate=true, which pika 1.x does not expose)."""
    ch._impl._send_method(
        pika.spec.Basic.Publish(exchange=exchange, routing_key=routing_key,
                                mandatory=mandatory, immediate=immediate),
        (properties or pika.BasicProperties(), body))


def raw_exchange(host, port, data, timeout=5.0):
    """Send raw bytes on a fresh TCP connection and read until the server
    closes the socket. Returns (received_bytes, closed_by_server)."""
    s = socket.create_connection((host, port), timeout=timeout)
    buf = b""
    closed = False
    try:
        s.sendall(data)
        while True:
            try:
                d = s.recv(4096)
            except ConnectionResetError:
                closed = True
                break
            except socket.timeout:
                break
            if not d:
                closed = True
                break
            buf += d
    finally:
        s.close()
    return buf, closed


# ---------------------------------------------------------------------------
# Field-table values of an exact wire type. pika only emits S, x, t, I, l/L, D,
# T, F, A, V; RawField lets a test put any AMQP 0-9-1 field type on the wire.
class RawField(object):
    def __init__(self, tag, fmt, value):
        self.tag = tag
        self.encoded = tag + struct.pack(">" + fmt, value) if fmt else tag
        self.value = value


_orig_encode_value = pika.data.encode_value


def _encode_value(pieces, value):
    if isinstance(value, RawField):
        pieces.append(value.encoded)
        return len(value.encoded)
    if isinstance(value, list):
        # mirror pika's list encoding but recurse through this function
        list_pieces = []
        for v in value:
            _encode_value(list_pieces, v)
        piece = b"".join(list_pieces)
        pieces.append(struct.pack(">cI", b"A", len(piece)))
        pieces.append(piece)
        return 5 + len(piece)
    if isinstance(value, dict):
        pieces.append(b"F")
        return 1 + pika.data.encode_table(pieces, value)
    return _orig_encode_value(pieces, value)


pika.data.encode_value = _encode_value


def encode_properties(props):
    """Wire encoding of the property list (flags + values) of props."""
    return b"".join(props.encode())


# Capture the raw property bytes of every content header pika decodes, so a
# test can compare what the broker delivered byte for byte.
LAST_RAW_PROPERTIES = []
_orig_props_decode = pika.spec.BasicProperties.decode


def _props_decode(self, encoded, offset=0):
    LAST_RAW_PROPERTIES.append(bytes(encoded[offset:]))
    del LAST_RAW_PROPERTIES[:-16]
    return _orig_props_decode(self, encoded, offset)


pika.spec.BasicProperties.decode = _props_decode


def counts_eventually(ch, queue, expected, timeout=2.0):
    """queue.declare-ok counts are not ordered with preceding publishes or
    acks (RabbitMQ answers the stat out of band), so poll until they equal
    expected; returns the last (message_count, consumer_count) seen."""
    last = [None]

    def check():
        last[0] = queue_counts(ch, queue)
        return last[0] == expected

    wait_until(check, timeout=timeout)
    return last[0]
