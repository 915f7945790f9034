"""Helpers for the stream tests (test_streams.py, test_streams_consume.py): the `streams`
fixture, publishing, and Reader, a stream consumer that acks every delivery."""
import os

import pytest

import helpers

STREAM = {"x-queue-type": "stream"}
# The reference broker (interop/run --against rabbitmq): where RabbitMQ 3.10 crashes (541
# INTERNAL_ERROR) on a bad value, warren refuses it with a 406 instead.
ON_RABBITMQ = os.environ.get("BROKER_KIND") == "rabbitmq"
UNSET = object()


@pytest.fixture
def streams(connect):
    """Factory: declare a stream (extra arguments merged in) on a connection of its own;
    every stream made is deleted at teardown."""
    admin = connect().channel()
    made = []

    def make(name, **arguments):
        q = helpers.declare_queue(admin, name, durable=True, arguments=dict(STREAM, **arguments))
        made.append(q)
        return q

    yield make
    for q in made:
        try:
            if admin.is_open:
                admin.queue_delete(q)
        except Exception:
            pass


def publish(conn, q, bodies, properties=None, confirm=True):
    """Publish bodies to q on a channel of their own; with confirm, one at a time, each
    waiting for its confirm (so each is a chunk of its own in RabbitMQ's log)."""
    ch = conn.channel()
    if confirm:
        ch.confirm_delivery()
    for body in bodies:
        ch.basic_publish("", q, body if isinstance(body, bytes) else body.encode(), properties)
    helpers.sync(ch)
    ch.close()


def numbered(n, start=0):
    return ["m%d" % i for i in range(start, start + n)]


class Reader(object):
    """A stream consumer on a channel of its own (prefetch set), acking every delivery."""

    def __init__(self, conn, q, offset=UNSET, prefetch=100):
        self.conn = conn
        self.ch = conn.channel()
        self.ch.basic_qos(prefetch_count=prefetch)
        self.items = []
        args = {} if offset is UNSET else {"x-stream-offset": offset}
        self.tag = self.ch.basic_consume(q, self._on_delivery, arguments=args)

    def _on_delivery(self, ch, method, props, body):
        self.items.append((method, props, body))
        ch.basic_ack(method.delivery_tag)

    @property
    def got(self):
        """(x-stream-offset, body) of every delivery so far."""
        return [((p.headers or {}).get("x-stream-offset"), b.decode()) for _, p, b in self.items]

    @property
    def bodies(self):
        return [b.decode() for _, _, b in self.items]

    def wait(self, n, timeout=5.0, settle=0.3):
        """Wait for at least n deliveries, then a little longer for any that should not
        come; returns got."""
        helpers.wait_until(lambda: len(self.items) >= n, conn=self.conn, timeout=timeout)
        helpers.settle(self.conn, settle)
        return self.got


def offsets(n, start=0):
    return [(i, "m%d" % i) for i in range(start, start + n)]


def fill(connect, streams, name, n=10):
    q = streams(name("stream"))
    publish(connect(), q, numbered(n))
    return q
