"""Consumer (delivery acknowledgement) timeout via the x-consumer-timeout
queue argument (ms).

RabbitMQ 3.10 IGNORES x-consumer-timeout; it only has the global
consumer_timeout, checked every channel_tick_interval (60 s by default). To
run these against RabbitMQ 3.10, set consumer_timeout = 1000 (= TIMEOUT_MS)
and channel_tick_interval = 500 in advanced.config, or
`rabbitmqctl eval 'application:set_env(rabbit, consumer_timeout, 1000).'`."""
import time

import helpers

TIMEOUT_MS = 1000


def _queue(ch, name):
    return helpers.declare_queue(ch, name("ctimeout"), exclusive=True,
                                 arguments={"x-consumer-timeout": TIMEOUT_MS})


def _watch_close(ch):
    closed = []
    ch._impl.add_on_close_callback(lambda _ch, reason: closed.append((time.monotonic(), reason)))
    return closed


def test_unacked_delivery_past_timeout_closes_channel(conn, ch, name):
    q = _queue(ch, name)
    ch.basic_publish("", q, b"held")
    cch = conn.channel()
    closed = _watch_close(cch)
    col = helpers.Collector()
    cch.basic_consume(q, col)
    col.wait(conn, 1)
    started = time.monotonic()
    assert helpers.wait_until(lambda: closed, conn=conn, timeout=10), "channel not closed"
    at, reason = closed[0]
    assert at - started >= TIMEOUT_MS / 1000.0 - 0.1
    assert reason.reply_code == 406
    assert reason.reply_text == (
        "PRECONDITION_FAILED - delivery acknowledgement on channel %d timed out. "
        "Timeout value used: %d ms. This timeout value can be configured, see consumers "
        "doc guide to learn more" % (cch.channel_number, TIMEOUT_MS))
    # connection and other channels unaffected; the delivery is requeued
    m, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"held" and m.redelivered


def test_promptly_acked_deliveries_do_not_time_out(conn, ch, name):
    q = _queue(ch, name)
    cch = conn.channel()
    closed = _watch_close(cch)
    col = helpers.Collector()
    cch.basic_consume(q, col)
    for i in range(6):
        ch.basic_publish("", q, b"m%d" % i)
        col.wait(conn, i + 1)
        cch.basic_ack(col.tags[-1])
        helpers.settle(conn, 0.5)
    assert closed == [] and cch.is_open


def test_no_ack_consumer_never_times_out(conn, ch, name):
    q = _queue(ch, name)
    ch.basic_publish("", q, b"m")
    cch = conn.channel()
    closed = _watch_close(cch)
    col = helpers.Collector()
    cch.basic_consume(q, col, auto_ack=True)
    col.wait(conn, 1)
    helpers.settle(conn, 3.0)
    assert closed == [] and cch.is_open
