"""Retry with back-off (x-retry-delays, a warren extension), through pika. RabbitMQ ignores the
argument, so only the last test (plain requeue) runs against it."""
import os
import time

import pika
import pytest

import helpers

warren_only = pytest.mark.skipif(os.environ.get("BROKER_KIND") == "rabbitmq",
                                 reason="x-retry-delays is warren's")


def _get(ch, q, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        method, props, body = ch.basic_get(q)
        if method is not None:
            return method, props, body
        time.sleep(0.01)
    return None, None, None


@warren_only
def test_a_nacked_message_waits_each_delay_then_is_dead_lettered(ch, name):
    dlx = name("retry-dlx")
    ch.exchange_declare(dlx, "fanout", auto_delete=True)
    dead = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(dead, dlx)
    q = ch.queue_declare(name("retry"), exclusive=True, arguments={
        "x-retry-delays": [200, 400], "x-dead-letter-exchange": dlx}).method.queue
    ch.basic_publish("", q, b"job")
    counts = []
    for expected_wait in (None, 0.19, 0.39):
        start = time.monotonic()
        method, props, body = _get(ch, q)
        assert body == b"job"
        if expected_wait is not None:
            assert time.monotonic() - start >= expected_wait - 0.05
        counts.append((props.headers or {}).get("x-delivery-count"))
        ch.basic_nack(method.delivery_tag, requeue=True)
    assert counts == [None, 1, 2]
    method, props, body = _get(ch, dead)
    assert body == b"job"
    assert props.headers["x-death"][0]["reason"] == "rejected"


def test_without_the_argument_a_nack_requeues_at_once(ch, name):
    q = ch.queue_declare(name("no-retry"), exclusive=True).method.queue
    ch.basic_publish("", q, b"job")
    method, _, _ = _get(ch, q)
    ch.basic_nack(method.delivery_tag, requeue=True)
    method, props, body = _get(ch, q, timeout=0.5)
    assert body == b"job" and method.redelivered
