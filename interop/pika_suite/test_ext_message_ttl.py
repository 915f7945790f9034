"""Message TTL (x-message-ttl, expiration property), as RabbitMQ 3.10."""
import time

import pika
import pytest

import helpers


def _ttl_queue(ch, name, ttl=None):
    args = {} if ttl is None else {"x-message-ttl": ttl}
    return helpers.declare_queue(ch, name("ttl"), exclusive=True, arguments=args)


def test_queue_ttl_expired_message_not_returned_by_get(ch, name):
    q = _ttl_queue(ch, name, 200)
    ch.basic_publish("", q, b"old")
    helpers.sync(ch)
    time.sleep(0.5)
    assert ch.basic_get(q, auto_ack=True)[0] is None


def test_queue_ttl_expires_messages_at_rest(ch, name):
    q = _ttl_queue(ch, name, 300)
    for _ in range(3):
        ch.basic_publish("", q, b"m")
    assert helpers.counts_eventually(ch, q, (3, 0), timeout=0.25) == (3, 0)
    assert helpers.counts_eventually(ch, q, (0, 0), timeout=3) == (0, 0)


def test_per_message_expiration(ch, name):
    q = _ttl_queue(ch, name)
    ch.basic_publish("", q, b"short", pika.BasicProperties(expiration="200"))
    ch.basic_publish("", q, b"forever")
    helpers.sync(ch)
    time.sleep(0.5)
    assert [b for _, _, b in helpers.get_all(ch, q)] == [b"forever"]


@pytest.mark.parametrize("queue_ttl,expiration", [(60000, "200"), (200, "60000")])
def test_lower_ttl_wins(ch, name, queue_ttl, expiration):
    q = _ttl_queue(ch, name, queue_ttl)
    ch.basic_publish("", q, b"m", pika.BasicProperties(expiration=expiration))
    helpers.sync(ch)
    time.sleep(0.5)
    assert ch.basic_get(q, auto_ack=True)[0] is None


def test_expired_message_behind_live_head_counted_but_never_delivered(ch, name):
    q = _ttl_queue(ch, name)
    ch.basic_publish("", q, b"long", pika.BasicProperties(expiration="60000"))
    ch.basic_publish("", q, b"short", pika.BasicProperties(expiration="100"))
    helpers.sync(ch)
    time.sleep(0.4)
    assert helpers.queue_counts(ch, q) == (2, 0)
    assert [b for _, _, b in helpers.get_all(ch, q)] == [b"long"]


@pytest.mark.parametrize("queue_ttl,expiration", [(0, None), (None, "0")])
def test_ttl_zero_without_consumer_drops(ch, name, queue_ttl, expiration):
    q = _ttl_queue(ch, name, queue_ttl)
    ch.basic_publish("", q, b"gone", pika.BasicProperties(expiration=expiration))
    helpers.sync(ch)
    assert ch.basic_get(q, auto_ack=True)[0] is None
    assert helpers.queue_counts(ch, q) == (0, 0)


@pytest.mark.parametrize("queue_ttl,expiration", [(0, None), (None, "0")])
def test_ttl_zero_delivers_to_waiting_consumer(conn, ch, name, queue_ttl, expiration):
    q = _ttl_queue(ch, name, queue_ttl)
    col = helpers.Collector()
    conn.channel().basic_consume(q, col, auto_ack=True)
    ch.basic_publish("", q, b"now", pika.BasicProperties(expiration=expiration))
    col.wait(conn, 1)
    assert col.bodies == [b"now"]


@pytest.mark.parametrize("expiration,reason", [
    ("abc", "no_integer"),
    ("-1", "{value_negative,-1}"),
    ("1.5", "{leftover_string,\".5\"}"),
])
def test_invalid_expiration_is_406(ch, name, expiration, reason):
    q = _ttl_queue(ch, name)
    ch.basic_publish("", q, b"x", pika.BasicProperties(expiration=expiration))
    code, text = helpers.expect_channel_error(helpers.sync, ch)
    assert code == 406
    assert text == "PRECONDITION_FAILED - invalid expiration '%s': %s" % (expiration, reason)


def test_negative_x_message_ttl_is_406(ch, name, vhost):
    q = name("ttl")
    code, text = helpers.expect_channel_error(
        ch.queue_declare, q, arguments={"x-message-ttl": -1})
    assert code == 406
    assert text == ("PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue '%s' in "
                    "vhost '%s': {value_negative,-1}" % (q, vhost))
