"""Quorum queues (issue #14) with the queue features RabbitMQ 3.10 supports for them, through
pika: message TTL, x-expires, x-max-length with drop-head, single active consumer and
consumer priorities. They share warren's classic-queue code; these check that a quorum queue
keeps them, against warren and the reference broker alike."""
import time

import pika

import helpers
from test_queue_types import QUORUM, quorum_queues  # noqa: F401


def _publish(ch, q, bodies, **properties):
    for body in bodies:
        ch.basic_publish("", q, body, pika.BasicProperties(**properties))
    helpers.sync(ch)


def test_message_ttl_expires_quorum_messages(ch, conn, name, quorum_queues):
    q = quorum_queues(name("qq-ttl"), **{"x-message-ttl": 200})
    _publish(ch, q, [b"old"])
    time.sleep(0.5)
    _publish(ch, q, [b"new"], expiration="60000")
    got = helpers.wait_until(lambda: ch.basic_get(q, auto_ack=True)[2], conn=conn)
    assert got == b"new"
    assert ch.basic_get(q, auto_ack=True)[0] is None


def test_an_unused_quorum_queue_expires(ch, name, params):
    q = helpers.declare_queue(ch, name("qq-expires"), durable=True,
                              arguments=dict(QUORUM, **{"x-expires": 500}))
    # Looked at once, well after the expiry: a passive declare is a use that renews it, and
    # RabbitMQ's quorum queues check their expiry on a timer of a few seconds.
    time.sleep(7)
    assert not helpers.queue_exists(params, q)


def test_max_length_drops_the_head_of_a_quorum_queue(ch, conn, name, quorum_queues):
    q = quorum_queues(name("qq-maxlen"), **{"x-max-length": 2})
    _publish(ch, q, [b"1", b"2", b"3"])
    assert helpers.wait_until(lambda: helpers.queue_counts(ch, q)[0] == 2, conn=conn)
    assert [ch.basic_get(q, auto_ack=True)[2] for _ in range(2)] == [b"2", b"3"]


def test_a_single_active_consumer_gets_everything(connect, ch, name, quorum_queues):
    q = quorum_queues(name("qq-sac"), **{"x-single-active-consumer": True})
    conn = connect()
    consumer_ch = conn.channel()
    got = {"first": [], "second": []}
    for tag in ("first", "second"):
        consumer_ch.basic_consume(q, lambda c, m, p, b, t=tag: got[t].append(b),
                                  auto_ack=True, consumer_tag=tag)
    _publish(ch, q, [b"a", b"b", b"c"])
    helpers.wait_until(lambda: len(got["first"]) + len(got["second"]) == 3, conn=conn)
    assert got == {"first": [b"a", b"b", b"c"], "second": []}


def test_the_higher_priority_consumer_is_served_first(connect, ch, name, quorum_queues):
    q = quorum_queues(name("qq-prio"))
    conn = connect()
    consumer_ch = conn.channel()
    got = {"low": [], "high": []}
    consumer_ch.basic_consume(q, lambda c, m, p, b: got["low"].append(b), auto_ack=True,
                              arguments={"x-priority": 1})
    consumer_ch.basic_consume(q, lambda c, m, p, b: got["high"].append(b), auto_ack=True,
                              arguments={"x-priority": 10})
    _publish(ch, q, [b"a", b"b", b"c"])
    helpers.wait_until(lambda: len(got["low"]) + len(got["high"]) == 3, conn=conn)
    assert got == {"low": [], "high": [b"a", b"b", b"c"]}
