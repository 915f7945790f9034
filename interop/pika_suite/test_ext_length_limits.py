"""Queue length limits (x-max-length, x-max-length-bytes, x-overflow), as RabbitMQ 3.10."""
import pika
import pytest
from pika import exceptions as exc

import helpers


def _bodies(ch, q):
    return [b for _, _, b in helpers.get_all(ch, q)]


def _confirmed(ch, q, body):
    """Publish on a confirm-mode channel; True if acked, False if nacked."""
    try:
        ch.basic_publish("", q, body)
        return True
    except exc.NackError:
        return False


def test_max_length_drops_oldest(ch, name):
    q = helpers.declare_queue(ch, name("ml"), exclusive=True, arguments={"x-max-length": 3})
    for i in range(5):
        ch.basic_publish("", q, b"m%d" % i)
    helpers.sync(ch)
    assert helpers.queue_counts(ch, q) == (3, 0)
    assert _bodies(ch, q) == [b"m2", b"m3", b"m4"]


def test_max_length_bytes_drops_oldest_by_body_size(ch, name):
    q = helpers.declare_queue(ch, name("mlb"), exclusive=True,
                              arguments={"x-max-length-bytes": 10})
    for b in (b"aaaa", b"bbbb", b"cccc"):
        ch.basic_publish("", q, b)
    helpers.sync(ch)
    assert _bodies(ch, q) == [b"bbbb", b"cccc"]


def test_max_length_bytes_counts_body_only(ch, name):
    q = helpers.declare_queue(ch, name("mlb"), exclusive=True,
                              arguments={"x-max-length-bytes": 10})
    props = pika.BasicProperties(headers={"padding": "p" * 500})
    ch.basic_publish("", q, b"aaaaa", props)
    ch.basic_publish("", q, b"bbbbb", props)
    helpers.sync(ch)
    assert _bodies(ch, q) == [b"aaaaa", b"bbbbb"]


def test_drop_head_acks_every_publish(ch, name):
    q = helpers.declare_queue(ch, name("ml"), exclusive=True,
                              arguments={"x-max-length": 2, "x-overflow": "drop-head"})
    ch.confirm_delivery()
    assert all(_confirmed(ch, q, b"m%d" % i) for i in range(4))
    assert _bodies(ch, q) == [b"m2", b"m3"]


@pytest.mark.parametrize("overflow", ["reject-publish", "reject-publish-dlx"])
def test_reject_publish_nacks_and_keeps_old(ch, name, overflow):
    q = helpers.declare_queue(ch, name("ml"), exclusive=True,
                              arguments={"x-max-length": 2, "x-overflow": overflow})
    ch.confirm_delivery()
    assert _confirmed(ch, q, b"m0")
    assert _confirmed(ch, q, b"m1")
    assert not _confirmed(ch, q, b"m2")
    assert helpers.queue_counts(ch, q) == (2, 0)
    assert _bodies(ch, q) == [b"m0", b"m1"]
    assert _confirmed(ch, q, b"m3")


def test_reject_publish_with_max_length_bytes(ch, name):
    q = helpers.declare_queue(ch, name("mlb"), exclusive=True,
                              arguments={"x-max-length-bytes": 8, "x-overflow": "reject-publish"})
    ch.confirm_delivery()
    assert _confirmed(ch, q, b"aaaa")
    assert _confirmed(ch, q, b"bbbb")
    assert not _confirmed(ch, q, b"c")
    assert _bodies(ch, q) == [b"aaaa", b"bbbb"]


def test_max_length_zero(conn, ch, name):
    q = helpers.declare_queue(ch, name("ml0"), exclusive=True, arguments={"x-max-length": 0})
    ch.confirm_delivery()
    assert _confirmed(ch, q, b"dropped")
    assert helpers.queue_counts(ch, q) == (0, 0)
    col = helpers.Collector()
    conn.channel().basic_consume(q, col, auto_ack=True)
    assert _confirmed(ch, q, b"delivered")
    col.wait(conn, 1)
    assert col.bodies == [b"delivered"]


def test_invalid_x_overflow_is_406(ch, name, vhost):
    q = name("ml")
    code, text = helpers.expect_channel_error(ch.queue_declare, q, arguments={"x-overflow": "bogus"})
    assert code == 406
    assert text == ("PRECONDITION_FAILED - invalid arg 'x-overflow' for queue '%s' in vhost '%s': "
                    "invalid_overflow" % (q, vhost))


@pytest.mark.parametrize("arg", ["x-max-length", "x-max-length-bytes"])
def test_negative_limit_is_406(ch, name, vhost, arg):
    q = name("ml")
    code, text = helpers.expect_channel_error(ch.queue_declare, q, arguments={arg: -1})
    assert code == 406
    assert text == ("PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in vhost '%s': "
                    "{value_negative,-1}" % (arg, q, vhost))
