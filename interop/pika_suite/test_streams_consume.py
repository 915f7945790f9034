"""Streams (x-queue-type: stream, issue #14), consuming, as RabbitMQ 3.10.8 delivers over
AMQP 0-9-1, through pika: every x-stream-offset form (first, last, next, numbers of every
integer type, timestamps, intervals, and the refused ones), the x-stream-offset header on each
delivery, independent consumers, consumption that removes nothing, publishing with confirms,
tx and mandatory, retention by whole segments, the management API, and the cancel a consumer
gets when its stream is deleted. /work/stream-probe.txt (outside the repository) records what
was probed.

Every stream is deleted at the end of its test. The suite runs RabbitMQ with a 1 s consumer
timeout (interop/suites/pika.sh): consumers here ack each delivery as it comes (Reader), or
hold deliveries unacked only for a moment.
"""
import datetime
import os
import struct
import time

import pika
import pytest

import helpers
from helpers import RawField
from streams_support import (ON_RABBITMQ, STREAM, UNSET, Reader, fill, numbered,  # noqa: F401
                             offsets, publish, streams)


# ---------------------------------------------------------------- offsets ----
@pytest.mark.parametrize("offset,first", [
    ("first", 0), (0, 0), (5, 5), (9, 9), (-1, 0), (-5, 0), (b"first", 0),
    (RawField(b"b", "b", 3), 3), (RawField(b"s", "h", 3), 3), (RawField(b"B", "B", 3), 3),
    (RawField(b"u", "H", 3), 3), (RawField(b"I", "i", 3), 3), (RawField(b"i", "I", 3), 3),
    (RawField(b"l", "q", 3), 3), (RawField(b"T", "Q", 0), 0),
])
def test_a_consumer_starts_at_the_offset_it_names(connect, name, streams, offset, first):
    q = fill(connect, streams, name)
    reader = Reader(connect(), q, offset)
    assert reader.wait(10 - first) == offsets(10 - first, first)


@pytest.mark.parametrize("offset", [UNSET, "next", 10, "last-on-empty"])
def test_next_and_no_offset_deliver_only_what_comes_later(connect, name, streams, offset):
    if offset == "last-on-empty":
        q, offset, start = streams(name("stream")), "last", 0
    else:
        q, start = fill(connect, streams, name), 10
    conn = connect()
    reader = Reader(conn, q, offset)
    assert reader.wait(0) == []
    publish(connect(), q, numbered(2, start))
    assert reader.wait(2) == offsets(2, start)


def test_an_offset_past_the_end_starts_exactly_there_when_it_comes(connect, name, streams):
    q = fill(connect, streams, name)
    conn = connect()
    reader = Reader(conn, q, 11)
    far = Reader(conn, q, 2 ** 40)
    publish(connect(), q, numbered(3, 10))
    assert reader.wait(2) == offsets(2, 11)
    assert far.got == []


def test_last_starts_at_the_last_chunk(connect, name, streams):
    # Published one at a time, each confirmed: every message is a chunk of its own.
    q = fill(connect, streams, name)
    conn = connect()
    reader = Reader(conn, q, "last")
    assert reader.wait(1) == offsets(1, 9)
    publish(connect(), q, numbered(2, 10))
    assert reader.wait(3) == offsets(3, 9)
    # Published in a burst: chunks of several messages; "last" gives the whole last chunk,
    # which ends with the last message.
    burst = streams(name("stream-burst"))
    publish(connect(), burst, numbered(200), confirm=False)
    tail = Reader(conn, burst, "last", prefetch=1000)
    got = tail.wait(1)
    assert got and got == offsets(len(got), 200 - len(got))


def test_a_timestamp_offset_starts_at_the_first_chunk_published_at_or_after_it(connect, name,
                                                                             streams):
    q = fill(connect, streams, name, 3)
    # Past the next whole second, so that the timestamp (seconds) follows the first batch.
    time.sleep(1.1 - (time.time() % 1.0))
    since = int(time.time())
    publish(connect(), q, numbered(3, 3))
    conn = connect()
    at = Reader(conn, q, datetime.datetime.utcfromtimestamp(since))
    assert at.wait(3) == offsets(3, 3)
    before = Reader(conn, q, datetime.datetime(2000, 1, 1))
    assert before.wait(6) == offsets(6)
    after = Reader(conn, q, datetime.datetime.utcfromtimestamp(since + 3600))
    assert after.wait(0) == []
    publish(connect(), q, ["m6"])
    assert after.wait(1) == offsets(1, 6)


@pytest.mark.parametrize("interval", ["1h", "30m", "1D", "1Y", "1M", "100Y"])
def test_an_interval_offset_reaches_back_that_long(connect, name, streams, interval):
    q = fill(connect, streams, name, 4)
    reader = Reader(connect(), q, interval)
    assert reader.wait(4) == offsets(4)


@pytest.mark.parametrize("offset", ["0s", "10x"])
def test_a_malformed_interval_offset_is_refused_with_406(connect, name, streams, offset):
    q = streams(name("stream"))
    ch = connect().channel()
    ch.basic_qos(prefetch_count=1)
    code, text = helpers.expect_channel_error(ch.basic_consume, q, lambda *a: None,
                                              arguments={"x-stream-offset": offset})
    assert (code, text) == (406, "PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue "
                                 "'%s' in vhost '/': {invalid_stream_offset_arg,{longstr,<<\"%s\">>}}"
                                 % (q, offset))


@pytest.mark.parametrize("offset,shown", [
    ("abc", 'longstr,<<"abc">>'), ("FIRST", 'longstr,<<"FIRST">>'), ("", 'longstr,<<"">>'),
    (True, "bool,true"), (RawField(b"d", "d", 1.0), "double,1"),
    (RawField(b"V", None, None), "void,undefined")])
def test_offsets_rabbitmq_crashes_on_are_refused(connect, name, streams, offset, shown):
    # RabbitMQ 3.10 crashes on them (541 INTERNAL_ERROR, the connection closes); warren refuses
    # them as any other bad offset (406).
    q = streams(name("stream"))
    ch = connect().channel()
    ch.basic_qos(prefetch_count=1)
    arguments = {"x-stream-offset": offset}
    if ON_RABBITMQ:
        assert helpers.expect_connection_error(
            ch.basic_consume, q, lambda *a: None, arguments=arguments) == (541, "INTERNAL_ERROR")
    else:
        assert helpers.expect_channel_error(
            ch.basic_consume, q, lambda *a: None, arguments=arguments) == (
            406, "PRECONDITION_FAILED - invalid arg 'x-stream-offset' for queue '%s' in vhost "
                 "'/': {invalid_stream_offset_arg,{%s}}" % (q, shown))


# -------------------------------------------------------------- deliveries ----
def test_each_delivery_carries_its_offset_last_in_its_headers(connect, name, streams):
    q = streams(name("stream"))
    props = pika.BasicProperties(
        content_type="text/plain", content_encoding="gzip", headers={"h": "v"}, delivery_mode=1,
        priority=3, correlation_id="cid", reply_to="rt", expiration="60000", message_id="mid",
        timestamp=12345, type="t", user_id="guest", app_id="app")
    publish(connect(), q, [b"with"], props)
    publish(connect(), q, [b"without"])
    del helpers.LAST_RAW_PROPERTIES[:]
    reader = Reader(connect(), q, "first")
    reader.wait(2)
    raw_with, raw_without = helpers.LAST_RAW_PROPERTIES[-2:]
    offset_field = b"\x0fx-stream-offsetl" + struct.pack(">q", 0)
    # Type 'l' (signed 64 bits), appended after the message's own headers.
    assert b"\x01hS\x00\x00\x00\x01v" + offset_field in raw_with
    assert struct.pack(">I", 25) + b"\x0fx-stream-offsetl" + struct.pack(">q", 1) in raw_without
    (m1, p1, _), (m2, p2, _) = reader.items
    assert (m1.redelivered, m2.redelivered) == (False, False)
    assert p1.headers == {"h": "v", "x-stream-offset": 0}
    assert p2.headers == {"x-stream-offset": 1}
    for attr in ("content_type", "content_encoding", "delivery_mode", "priority",
                 "correlation_id", "reply_to", "expiration", "message_id", "timestamp", "type",
                 "user_id", "app_id"):
        assert getattr(p1, attr) == getattr(props, attr), attr


def test_two_consumers_on_one_channel_read_independently(connect, name, streams):
    q = fill(connect, streams, name, 5)
    conn = connect()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=10)
    seen = {"a": [], "b": []}

    def reader(key):
        def on_delivery(c, m, p, b):
            seen[key].append((p.headers["x-stream-offset"], m.delivery_tag))
            c.basic_ack(m.delivery_tag)
        return on_delivery

    ch.basic_consume(q, reader("a"), arguments={"x-stream-offset": "first"})
    ch.basic_consume(q, reader("b"), arguments={"x-stream-offset": 3})
    helpers.wait_until(lambda: len(seen["a"]) + len(seen["b"]) >= 7, conn=conn)
    helpers.settle(conn)
    assert [o for o, _ in seen["a"]] == [0, 1, 2, 3, 4]
    assert [o for o, _ in seen["b"]] == [3, 4]
    # Delivery tags are the channel's: one sequence across both consumers.
    assert sorted(t for _, t in seen["a"] + seen["b"]) == list(range(1, 8))


def test_consuming_removes_nothing(connect, name, streams):
    q = fill(connect, streams, name, 7)
    ch = connect().channel()
    # RabbitMQ's message count for a stream is a statistic: it gets there asynchronously.
    assert helpers.counts_eventually(ch, q, (7, 0), timeout=5.0) == (7, 0)
    conn = connect()
    reader = Reader(conn, q, "first")
    assert reader.wait(7) == offsets(7)
    # Acked, and still all there (a stream's consumer_count in declare-ok stays 0).
    assert helpers.queue_counts(ch, q) == (7, 0)
    again = Reader(conn, q, "first")
    assert again.wait(7) == offsets(7)
    assert [m.redelivered for m, _, _ in again.items] == [False] * 7


def test_consuming_again_after_a_cancel_starts_over_with_new_tags(connect, name, streams):
    q = fill(connect, streams, name, 5)
    conn = connect()
    reader = Reader(conn, q, 3)
    assert reader.wait(2) == offsets(2, 3)
    reader.ch.basic_cancel(reader.tag)
    reader.tag = reader.ch.basic_consume(q, reader._on_delivery,
                                         arguments={"x-stream-offset": 3})
    assert reader.wait(4) == offsets(2, 3) * 2
    assert [(m.delivery_tag, m.redelivered) for m, _, _ in reader.items] == \
        [(1, False), (2, False), (3, False), (4, False)]


def test_publishing_confirms_tx_and_mandatory(connect, name, streams):
    q = streams(name("stream"))
    conn = connect()
    ch = conn.channel()
    ch.confirm_delivery()
    returned = []
    ch.add_on_return_callback(lambda *a: returned.append(a))
    ch.basic_publish("", q, b"m0", mandatory=True)
    helpers.settle(conn)
    assert returned == []
    tx = conn.channel()
    tx.tx_select()
    tx.basic_publish("", q, b"m1")
    tx.tx_commit()
    tx.basic_publish("", q, b"rolled back")
    tx.tx_rollback()
    reader = Reader(connect(), q, "first")
    assert reader.wait(2) == offsets(2)


def test_retention_removes_whole_segments_from_the_head(connect, name, streams):
    q = streams(name("stream-retention"), **{"x-max-length-bytes": 2000,
                                             "x-stream-max-segment-size-bytes": 500})
    publish(connect(), q, [("%04d" % i).ljust(100, ".") for i in range(100)])
    conn = connect()

    def to_the_last(offset):
        """Everything a fresh consumer from offset gets, up to the last message published.
        (Consumers are left open: cancelling a stream consumer with deliveries in flight makes
        pika reject them, which RabbitMQ answers with 540.)"""
        reader = Reader(conn, q, offset, prefetch=1000)
        helpers.wait_until(lambda: reader.got and reader.got[-1][1].startswith("0099"),
                           conn=conn)
        return reader.wait(0)

    # Retention runs as segments roll over: poll until the head has moved.
    state = {}

    def head_moved():
        state["got"] = to_the_last("first")
        return state["got"] and state["got"][0][0] > 0

    helpers.wait_until(head_moved, timeout=10.0, step=0.2)
    got = state["got"]
    assert got and got[0][0] > 0, "nothing removed from the head: %r" % got[:3]
    numbers = [int(b[:4]) for _, b in got]
    # What is left is the tail, every message of it, ending with the last published.
    assert numbers == list(range(numbers[0], 100)) and numbers[0] > 0
    # Offsets only increase. (They are not contiguous: each new segment takes an offset.)
    offs = [o for o, _ in got]
    assert offs[0] > 0 and offs == sorted(set(offs))
    # Below the head, a numeric offset starts at the head (which may have moved on since).
    from_below = to_the_last(5)
    assert from_below and got[-len(from_below):] == from_below


def test_the_management_api_shows_a_stream(connect, name, streams):
    port = os.environ.get("MANAGEMENT_PORT")
    if not port:
        pytest.skip("MANAGEMENT_PORT not set")
    import base64
    import json
    import urllib.request
    q = fill(connect, streams, name, 3)

    def shown():
        req = urllib.request.Request(
            "http://127.0.0.1:%s/api/queues/%%2F/%s" % (port, q),
            headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.load(r)

    info = helpers.wait_until(lambda: (lambda i: i if i.get("messages") == 3 else None)(shown()),
                              timeout=15.0, step=0.5)
    assert info, "management never showed 3 messages: %r" % shown()
    assert (info["type"], info["durable"], info["auto_delete"], info["exclusive"]) == \
        ("stream", True, False, False)
    assert info["arguments"] == STREAM
    assert (info["messages_ready"], info["messages_unacknowledged"]) == (3, 0)


def test_deleting_a_stream_cancels_its_consumers(connect, name, streams):
    q = fill(connect, streams, name, 2)
    conn = connect()
    reader = Reader(conn, q, "first")
    reader.wait(2, settle=0)
    cancelled = []
    reader.ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    connect().channel().queue_delete(q)
    helpers.wait_until(lambda: cancelled, conn=conn)
    assert cancelled == [reader.tag]
    assert reader.ch.is_open and conn.is_open
