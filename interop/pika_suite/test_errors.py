"""Error handling: channel errors close only the channel, connection errors
close the connection, exact reply codes and texts."""
import pika
import pika.spec
import pytest
from pika import exceptions as exc

import helpers


def test_channel_error_closes_only_that_channel(conn, name):
    good = conn.channel()
    q = good.queue_declare(queue=name("q"), exclusive=True).method.queue
    bad = conn.channel()
    code, _ = helpers.expect_channel_error(bad.queue_declare, queue=name("missing"),
                                           passive=True)
    assert code == 404
    assert bad.is_closed
    assert conn.is_open
    assert good.is_open
    good.basic_publish("", q, b"still works")
    assert good.basic_get(q, auto_ack=True)[2] == b"still works"
    # and a new channel can be opened on the same connection
    fresh = conn.channel()
    fresh.queue_declare(queue=q, passive=True)


def test_channel_number_reusable_after_channel_error(conn, name):
    bad = conn.channel(channel_number=5)
    helpers.expect_channel_error(bad.exchange_declare, name("missing"), passive=True)
    again = conn.channel(channel_number=5)
    again.exchange_declare("amq.direct", passive=True)
    assert again.is_open


def test_publish_to_missing_exchange_closes_channel_404(conn, name, vhost):
    ch = conn.channel()
    other = conn.channel()
    ex = name("noex")
    ch.basic_publish(ex, "k", b"x")
    code, text = helpers.expect_channel_error(helpers.sync, ch)
    assert code == 404
    assert text == "NOT_FOUND - no exchange '%s' in vhost '%s'" % (ex, vhost)
    assert conn.is_open and other.is_open
    helpers.sync(other)


def test_channel_error_reports_class_and_method_ids(conn, name, monkeypatch):
    got = []
    orig = pika.channel.Channel._on_close_from_broker

    def spy(self, method_frame):
        got.append(method_frame.method)
        return orig(self, method_frame)

    monkeypatch.setattr(pika.channel.Channel, "_on_close_from_broker", spy)
    ch = conn.channel()  # registers the patched handler
    helpers.expect_channel_error(ch.queue_declare, queue=name("missing"), passive=True)
    assert len(got) == 1
    assert got[0].reply_code == 404
    assert (got[0].class_id, got[0].method_id) == (50, 10)  # queue.declare


def test_connection_error_closes_all_channels(conn, name):
    ch1, ch2 = conn.channel(), conn.channel()
    helpers.raw_publish(ch1, "", name("q"), b"x", immediate=True)
    code, text = helpers.expect_connection_error(conn.process_data_events, time_limit=2)
    assert (code, text) == (540, "NOT_IMPLEMENTED - immediate=true")
    assert conn.is_closed and ch1.is_closed and ch2.is_closed


def test_method_on_unopened_channel_is_504_channel_error(conn):
    conn._impl._send_method(99, pika.spec.Queue.Declare(queue="", exclusive=True))
    code, text = helpers.expect_connection_error(conn.process_data_events, time_limit=2)
    assert code == 504
    assert text == "CHANNEL_ERROR - expected 'channel.open'"


def test_queue_declare_with_invalid_x_argument_is_406(ch, name, vhost):
    q = name("q")
    code, text = helpers.expect_channel_error(ch.queue_declare, queue=q,
                                              arguments={"x-max-length": -1})
    assert code == 406
    assert text == ("PRECONDITION_FAILED - invalid arg 'x-max-length' for queue "
                    "'%s' in vhost '%s': {value_negative,-1}" % (q, vhost))


def test_publish_after_channel_error_on_new_channel_routes_normally(conn, name):
    ch = conn.channel()
    ch.basic_publish(name("noex"), "k", b"x")
    helpers.expect_channel_error(helpers.sync, ch)
    ch2 = conn.channel()
    q = ch2.queue_declare(queue="", exclusive=True).method.queue
    ch2.basic_publish("", q, b"ok")
    assert ch2.basic_get(q, auto_ack=True)[2] == b"ok"
