"""Priority queues (x-max-priority), as RabbitMQ 3.10."""
import pika
import pytest

import helpers


def _publish_all(ch, q, msgs):
    for body, prio in msgs:
        ch.basic_publish("", q, body, pika.BasicProperties(priority=prio))
    assert helpers.counts_eventually(ch, q, (len(msgs), 0)) == (len(msgs), 0)


def _bodies(ch, q):
    return [b for _, _, b in helpers.get_all(ch, q)]


def _prio_queue(ch, name, max_priority):
    return helpers.declare_queue(ch, name("pq"), exclusive=True,
                                 arguments={"x-max-priority": max_priority})


def test_higher_priority_delivered_first(ch, name):
    q = _prio_queue(ch, name, 10)
    _publish_all(ch, q, [(b"p1", 1), (b"p5", 5), (b"p3", 3), (b"p10", 10)])
    assert _bodies(ch, q) == [b"p10", b"p5", b"p3", b"p1"]


def test_consumer_gets_priority_order(conn, ch, name):
    q = _prio_queue(ch, name, 10)
    _publish_all(ch, q, [(b"p2", 2), (b"p9", 9), (b"p0", 0), (b"p4", 4)])
    col = helpers.Collector()
    ch.basic_consume(q, col, auto_ack=True)
    col.wait(conn, 4)
    assert col.bodies == [b"p9", b"p4", b"p2", b"p0"]


def test_fifo_within_a_priority(ch, name):
    q = _prio_queue(ch, name, 5)
    _publish_all(ch, q, [(b"a1", 1), (b"b3", 3), (b"a2", 1), (b"b4", 3), (b"a3", 1), (b"b5", 3)])
    assert _bodies(ch, q) == [b"b3", b"b4", b"b5", b"a1", b"a2", b"a3"]


def test_priority_above_max_counts_as_max(ch, name):
    q = _prio_queue(ch, name, 5)
    _publish_all(ch, q, [(b"four", 4), (b"nine", 9), (b"five", 5), (b"seven", 7)])
    assert _bodies(ch, q) == [b"nine", b"five", b"seven", b"four"]


def test_no_priority_counts_as_zero(ch, name):
    q = _prio_queue(ch, name, 5)
    _publish_all(ch, q, [(b"none1", None), (b"zero", 0), (b"one", 1), (b"none2", None)])
    assert _bodies(ch, q) == [b"one", b"none1", b"zero", b"none2"]


def test_max_priority_0_is_accepted_and_fifo(ch, name):
    q = _prio_queue(ch, name, 0)
    _publish_all(ch, q, [(b"zero", 0), (b"five", 5), (b"one", 1)])
    assert _bodies(ch, q) == [b"zero", b"five", b"one"]


@pytest.mark.parametrize("value,reason", [
    (256, "{max_value_exceeded,256}"),
    (-1, "{value_negative,-1}"),
    ("10", "\"expected integer, got longstr\""),
])
def test_invalid_max_priority_is_406(ch, name, vhost, value, reason):
    q = name("pq")
    code, text = helpers.expect_channel_error(
        ch.queue_declare, q, arguments={"x-max-priority": value})
    assert code == 406
    assert text == ("PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue '%s' in "
                    "vhost '%s': %s" % (q, vhost, reason))
