"""Half messages (x-half, a warren extension), through pika, and the worked example in
examples/half_messages (an order service on SQLite, killed between its two steps). RabbitMQ
has no half messages: skipped there."""
import os
import sys
import tempfile

import pika
import pytest

import helpers

pytestmark = pytest.mark.skipif(os.environ.get("BROKER_KIND") == "rabbitmq",
                                reason="half messages are warren's")

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "half_messages")


def _half(msg_id, **headers):
    return pika.BasicProperties(message_id=msg_id, headers={"x-half": True, **headers})


def _settle(ch, msg_id, key):
    ch.basic_publish("", "", b"", pika.BasicProperties(message_id=msg_id, headers={key: True}))


def test_commit_routes_and_rollback_drops(ch, name):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.confirm_delivery()
    committed, rolled_back = name("c"), name("r")
    ch.basic_publish("", q, b"committed", _half(committed))
    ch.basic_publish("", q, b"rolled back", _half(rolled_back))
    assert helpers.queue_counts(ch, q) == (0, 0)
    _settle(ch, committed, "x-half-commit")
    _settle(ch, rolled_back, "x-half-rollback")
    assert helpers.counts_eventually(ch, q, (1, 0), timeout=2) == (1, 0)
    assert [b for _, _, b in helpers.get_all(ch, q)] == [b"committed"]


def test_check_back_then_commit(ch, name):
    q = ch.queue_declare("", exclusive=True).method.queue
    checks = ch.queue_declare("", exclusive=True).method.queue
    msg_id = name("order")
    ch.confirm_delivery()
    ch.basic_publish("", q, b"payload", pika.BasicProperties(
        message_id=msg_id, reply_to=checks,
        headers={"x-half": True, "x-half-check-after": 300}))
    assert helpers.counts_eventually(ch, checks, (1, 0), timeout=3) == (1, 0)
    method, props, body = ch.basic_get(checks, auto_ack=True)
    assert (props.message_id, props.headers["x-half-check"], body) == (msg_id, 1, b"payload")
    _settle(ch, msg_id, "x-half-commit")
    assert helpers.counts_eventually(ch, q, (1, 0), timeout=2) == (1, 0)


def test_the_order_service_example(amqp_url, monkeypatch):
    monkeypatch.syspath_prepend(EXAMPLE)
    monkeypatch.setenv("AMQP_URL", amqp_url)
    monkeypatch.setenv("CHECK_AFTER_MS", "500")
    sys.modules.pop("demo", None)
    import demo  # noqa: E402  (the example, as a user runs it)
    with tempfile.TemporaryDirectory() as tmp:
        assert demo.run(os.path.join(tmp, "orders.db"))
