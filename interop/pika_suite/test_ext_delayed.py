"""Delayed messages: the x-delayed-message exchange of RabbitMQ's delayed-message plugin, through
pika. Skipped on a broker without that exchange type (Debian's RabbitMQ 3.10 has no plugin)."""
import time

import pika
import pytest
from pika import exceptions as exc

import helpers


@pytest.fixture
def delayed(connect, name):
    """Factory: a delayed exchange routing as `kind` (skips the test if the broker has none)."""
    probe = connect()
    try:
        probe.channel().exchange_declare(
            name("delayed-probe"), "x-delayed-message",
            arguments={"x-delayed-type": "direct"}, auto_delete=True)
    except exc.ConnectionClosedByBroker as e:
        pytest.skip(f"no x-delayed-message exchange type here: {e.reply_text}")

    def make(ch, kind="direct", durable=False):
        x = name("delayed")
        ch.exchange_declare(x, "x-delayed-message", durable=durable,
                            arguments={"x-delayed-type": kind})
        return x

    return make


def _bound_queue(ch, x, key="k"):
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, x, key)
    return q


def _delay(ms, **props):
    return pika.BasicProperties(headers={"x-delay": ms}, **props)


def _bodies(ch, q):
    return [b for _, _, b in helpers.get_all(ch, q)]


def test_delivered_after_its_delay_with_its_headers_as_sent(ch, delayed):
    x = delayed(ch)
    q = _bound_queue(ch, x)
    sent = time.monotonic()
    ch.basic_publish(x, "k", b"later", _delay(400))
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((time.monotonic() - sent, p, b)),
                     auto_ack=True)
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        ch.connection.process_data_events(time_limit=0.05)
    assert got, "nothing delivered"
    waited, props, body = got[0]
    assert body == b"later"
    assert 0.39 <= waited < 3, waited
    # The plugin means to negate it, but RabbitMQ 3.10 sends the publisher's property bytes.
    assert props.headers["x-delay"] == 400


def test_due_order_and_publish_order_within_a_delay(ch, delayed):
    x = delayed(ch)
    q = _bound_queue(ch, x)
    for body, ms in [(b"c", 600), (b"a", 200), (b"b1", 400), (b"b2", 400)]:
        ch.basic_publish(x, "k", body, _delay(ms))
    assert helpers.counts_eventually(ch, q, (4, 0), timeout=3) == (4, 0)
    assert _bodies(ch, q) == [b"a", b"b1", b"b2", b"c"]


@pytest.mark.parametrize("headers", [None, {"x-delay": 0}, {"x-delay": -100}])
def test_no_positive_delay_routes_at_once(ch, delayed, headers):
    x = delayed(ch)
    q = _bound_queue(ch, x)
    ch.basic_publish(x, "k", b"now", pika.BasicProperties(headers=headers))
    assert helpers.counts_eventually(ch, q, (1, 0), timeout=0.5) == (1, 0)


def test_routed_against_the_bindings_at_the_due_time(ch, delayed):
    x = delayed(ch, kind="topic")
    early = _bound_queue(ch, x, "order.*")
    ch.basic_publish(x, "order.cancel", b"moved", _delay(500))
    helpers.sync(ch)
    ch.queue_unbind(early, x, "order.*")
    late = _bound_queue(ch, x, "order.#")
    assert helpers.counts_eventually(ch, late, (1, 0), timeout=3) == (1, 0)
    assert helpers.queue_counts(ch, early) == (0, 0)


def test_a_persistent_message_is_confirmed_before_it_is_due(ch, delayed, name):
    x = delayed(ch, durable=True)
    q = name("delayed-durable")
    ch.queue_declare(q, durable=True)
    try:
        ch.queue_bind(q, x, "k")
        ch.confirm_delivery()
        sent = time.monotonic()
        ch.basic_publish(x, "k", b"kept", _delay(1500, delivery_mode=2))
        assert time.monotonic() - sent < 1.2
        assert helpers.queue_counts(ch, q) == (0, 0)
        assert helpers.counts_eventually(ch, q, (1, 0), timeout=4) == (1, 0)
    finally:
        ch.queue_delete(q)
        ch.exchange_delete(x)


def test_missing_delayed_type_is_refused(ch, delayed, name):
    code, text = helpers.expect_channel_error(
        ch.exchange_declare, name("delayed-bad"), "x-delayed-message")
    assert code == 406
    assert text == ("PRECONDITION_FAILED - Invalid argument, "
                    "'x-delayed-type' must be an existing exchange type")
