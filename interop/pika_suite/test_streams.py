"""Streams (x-queue-type: stream, issue #14), declaring and what a stream refuses, as
RabbitMQ 3.10.8 answers over AMQP 0-9-1, through pika: declare, the properties, arguments and
argument values it refuses and in what order, redeclaring differently, and the operations a
stream refuses (basic.get, auto-ack, a consumer without prefetch, nack and reject, recover,
purge, x-stream-offset on other queue types). test_streams_consume.py has the consuming side;
/work/stream-probe.txt (outside the repository) records what was probed.

Every stream is deleted at the end of its test (streams cannot be exclusive or auto-delete).
"""
import pytest

import helpers
from streams_support import ON_RABBITMQ, STREAM, Reader, fill, offsets, streams  # noqa: F401


# ------------------------------------------------------------------ declare ----
def test_a_stream_is_declared_and_redeclared(ch, name, streams):
    q = streams(name("stream"))
    ok = ch.queue_declare(q, durable=True, arguments=STREAM).method
    assert (ok.queue, ok.message_count, ok.consumer_count) == (q, 0, 0)
    # Unknown keys are accepted, and so is, on a redeclare, a key a stream refuses at creation.
    ch.queue_declare(q, durable=True, arguments=dict(STREAM, **{"x-foo": "bar"}))
    ch.queue_declare(q, durable=True, arguments=dict(STREAM, **{"x-max-length": 1}))


@pytest.mark.parametrize("durable,exclusive,auto_delete,prop", [
    (False, False, False, "non-durable"),
    (True, True, False, "exclusive-owner"),
    (True, False, True, "auto-delete"),
    (False, True, False, "exclusive-owner"),
    (False, False, True, "auto-delete"),
    (True, True, True, "auto-delete"),
    (False, True, True, "auto-delete"),
])
def test_a_stream_refuses_these_properties_in_this_order(conn, name, durable, exclusive,
                                                          auto_delete, prop):
    q = name("stream-refused")
    code, text = helpers.expect_channel_error(
        conn.channel().queue_declare, q, durable=durable, exclusive=exclusive,
        auto_delete=auto_delete, arguments=STREAM)
    assert (code, text) == (406, "PRECONDITION_FAILED - invalid property '%s' for queue '%s' "
                                 "in vhost '/'" % (prop, q))


REFUSED_ARGS = [
    ("x-max-length", 10), ("x-message-ttl", 1000), ("x-dead-letter-exchange", "dlx"),
    ("x-dead-letter-routing-key", "rk"), ("x-overflow", "drop-head"), ("x-expires", 10000),
    ("x-max-priority", 5), ("x-single-active-consumer", True), ("x-delivery-limit", 5),
    ("x-queue-mode", "lazy"), ("x-max-in-memory-length", 10), ("x-max-in-memory-bytes", 10),
    ("x-queue-master-locator", "client-local"), ("x-quorum-initial-group-size", 1),
    ("x-queue-version", 2), ("x-dead-letter-strategy", "at-least-once"),
]


@pytest.mark.parametrize("key,value", REFUSED_ARGS)
def test_a_stream_refuses_the_arguments_of_other_queue_types(conn, name, key, value):
    q = name("stream-arg")
    code, text = helpers.expect_channel_error(
        conn.channel().queue_declare, q, durable=True, arguments=dict(STREAM, **{key: value}))
    assert (code, text) == (406, "PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in vhost "
                                 "'/' of queue type rabbit_stream_queue" % (key, q))


def test_checks_go_values_then_refused_keys_in_table_order_then_properties(conn, name):
    q = name("stream-order")

    def refusal(durable=True, **arguments):
        return helpers.expect_channel_error(conn.channel().queue_declare, q, durable=durable,
                                            arguments=dict(STREAM, **arguments))[1]

    prefix = "PRECONDITION_FAILED - invalid arg '%s' for queue '" + q + "' in vhost '/'"
    refused = prefix + " of queue type rabbit_stream_queue"
    # The first refused key (see the next test for the table's order).
    assert refusal(**{"x-max-length": 1, "x-message-ttl": 5}) == refused % "x-max-length"
    # A refused key comes before a property.
    assert refusal(durable=False, **{"x-max-length": 1}) == refused % "x-max-length"
    # A bad value of an accepted key comes before both, whatever the table order.
    negative = prefix % "x-max-length-bytes" + ": {value_negative,-1}"
    assert refusal(**{"x-max-length": 5, "x-max-length-bytes": -1}) == negative
    assert refusal(durable=False, **{"x-max-length-bytes": -1}) == negative
    # x-max-age is checked before the segment size, whatever the table order.
    age = prefix % "x-max-age" + ": invalid_max_age"
    assert refusal(**{"x-stream-max-segment-size-bytes": -1, "x-max-age": "10x"}) == age


@pytest.mark.xfail(not ON_RABBITMQ, strict=True,
                   reason="warren gets queue.declare's arguments as a sorted table "
                          "(amq-protocol's FieldTable): of two refused keys it names the first "
                          "in sorted order, not in the client's")
def test_of_two_refused_keys_the_first_in_the_clients_table_order_is_named(conn, name):
    q = name("stream-order")
    _, text = helpers.expect_channel_error(
        conn.channel().queue_declare, q, durable=True,
        arguments=dict(STREAM, **{"x-message-ttl": 5, "x-max-length": 1}))
    assert text == ("PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue '%s' in vhost "
                    "'/' of queue type rabbit_stream_queue" % q)


@pytest.mark.parametrize("key,value", [
    ("x-max-age", v) for v in ["7D", "1h", "30m", "10s", "1Y", "1M", "1m", "01h", "100000Y"]
] + [
    ("x-max-length-bytes", 0), ("x-max-length-bytes", 2 ** 40),
    ("x-stream-max-segment-size-bytes", 0), ("x-stream-max-segment-size-bytes", 3000000000),
    ("x-initial-cluster-size", 1), ("x-queue-leader-locator", "client-local"),
    ("x-consumer-timeout", 1000), ("x-foo", "bar"),
])
def test_a_stream_accepts_these_arguments(ch, name, streams, key, value):
    streams(name("stream-ok"), **{key: value})


@pytest.mark.parametrize("key,value,reason", [
    ("x-max-age", v, "invalid_max_age")
    for v in ["0s", "0D", "10x", "10", "1 h", "1d", "1H", "1.5h", "1hh", "1D1h", "1h "]
] + [
    ("x-max-age", 3600, "{unacceptable_type,signedint}"),
    ("x-max-age", True, "{unacceptable_type,bool}"),
    ("x-max-age", b"1h", "{unacceptable_type,binary}"),
    ("x-max-length-bytes", -1, "{value_negative,-1}"),
    ("x-max-length-bytes", "1000", '"expected integer, got longstr"'),
    ("x-max-length-bytes", True, '"expected integer, got bool"'),
    ("x-stream-max-segment-size-bytes", -1, "{value_negative,-1}"),
    ("x-stream-max-segment-size-bytes", "500", '"expected integer, got longstr"'),
])
def test_a_stream_refuses_these_argument_values(conn, name, key, value, reason):
    q = name("stream-value")
    code, text = helpers.expect_channel_error(
        conn.channel().queue_declare, q, durable=True, arguments=dict(STREAM, **{key: value}))
    assert (code, text) == (406, "PRECONDITION_FAILED - invalid arg '%s' for queue '%s' in vhost "
                                 "'/': %s" % (key, q, reason))


def test_a_segment_size_over_3000000000_is_refused(conn, name):
    for size in (3000000001, 2 ** 32):
        code, text = helpers.expect_channel_error(
            conn.channel().queue_declare, name("stream-seg"), durable=True,
            arguments=dict(STREAM, **{"x-stream-max-segment-size-bytes": size}))
        assert (code, text) == (406, "PRECONDITION_FAILED - Exceeded max value for "
                                     "x-stream-max-segment-size-bytes")


@pytest.mark.parametrize("max_age", ["abc", "", "h", "-1h", " 1h"])
def test_an_x_max_age_not_starting_with_a_digit_is_refused(connect, name, max_age):
    # RabbitMQ 3.10 crashes parsing it (list_to_integer of nothing): 541 INTERNAL_ERROR, the
    # connection closes. warren refuses it as any other bad x-max-age (406).
    q = name("stream-age")
    declare = connect().channel().queue_declare
    arguments = dict(STREAM, **{"x-max-age": max_age})
    if ON_RABBITMQ:
        code, text = helpers.expect_connection_error(declare, q, durable=True,
                                                     arguments=arguments)
        assert (code, text) == (541, "INTERNAL_ERROR")
    else:
        code, text = helpers.expect_channel_error(declare, q, durable=True, arguments=arguments)
        assert (code, text) == (406, "PRECONDITION_FAILED - invalid arg 'x-max-age' for queue "
                                     "'%s' in vhost '/': invalid_max_age" % q)


@pytest.mark.parametrize("durable,auto_delete,arguments,expected", [
    (True, False, {}, (406, "inequivalent arg 'x-queue-type' for queue '%s' in vhost '/': "
                            "received none but current is the value 'stream' of type 'longstr'")),
    (True, False, {"x-queue-type": "classic"},
     (406, "inequivalent arg 'x-queue-type' for queue '%s' in vhost '/': received 'classic' "
           "but current is 'stream'")),
    (True, False, {"x-queue-type": "quorum"},
     (406, "inequivalent arg 'x-queue-type' for queue '%s' in vhost '/': received 'quorum' "
           "but current is 'stream'")),
    (False, False, STREAM, (406, "inequivalent arg 'durable' for queue '%s' in vhost '/': "
                                 "received 'false' but current is 'true'")),
    (True, True, STREAM, (406, "inequivalent arg 'auto_delete' for queue '%s' in vhost '/': "
                               "received 'true' but current is 'false'")),
    (True, False, dict(STREAM, **{"x-max-age": "1h"}),
     (406, "inequivalent arg 'x-max-age' for queue '%s' in vhost '/': received the value '1h' "
           "of type 'longstr' but current is none")),
    (True, False, dict(STREAM, **{"x-max-length-bytes": 1000}),
     (406, "inequivalent arg 'x-max-length-bytes' for queue '%s' in vhost '/': received the "
           "value '1000' of type 'signedint' but current is none")),
    (True, False, dict(STREAM, **{"x-stream-max-segment-size-bytes": 1000}),
     (406, "inequivalent arg 'x-stream-max-segment-size-bytes' for queue '%s' in vhost '/': "
           "received the value '1000' of type 'signedint' but current is none")),
    (True, False, dict(STREAM, **{"x-initial-cluster-size": 1}),
     (406, "inequivalent arg 'x-initial-cluster-size' for queue '%s' in vhost '/': received "
           "the value '1' of type 'signedint' but current is none")),
    (True, False, dict(STREAM, **{"x-queue-leader-locator": "client-local"}),
     (406, "inequivalent arg 'x-queue-leader-locator' for queue '%s' in vhost '/': received "
           "the value 'client-local' of type 'longstr' but current is none")),
])
def test_redeclaring_a_stream_differently_is_inequivalent(conn, name, streams, durable,
                                                          auto_delete, arguments, expected):
    q = streams(name("stream"))
    code, text = helpers.expect_channel_error(
        conn.channel().queue_declare, q, durable=durable, auto_delete=auto_delete,
        arguments=arguments)
    assert (code, text) == (expected[0], "PRECONDITION_FAILED - " + expected[1] % q)


def test_redeclaring_a_stream_compares_its_max_age_but_not_other_types_keys(conn, name, streams):
    q = streams(name("stream"), **{"x-max-age": "1h"})
    ch = conn.channel()
    for ignored in ({"x-message-ttl": 5}, {"x-max-priority": 3}, {"x-dead-letter-exchange": "d"},
                    {"x-consumer-timeout": 1000}):
        ch.queue_declare(q, durable=True, arguments=dict(STREAM, **dict(ignored, **{
            "x-max-age": "1h"})))
    prefix = "PRECONDITION_FAILED - inequivalent arg 'x-max-age' for queue '%s' in vhost '/': " % q
    assert helpers.expect_channel_error(
        conn.channel().queue_declare, q, durable=True,
        arguments=dict(STREAM, **{"x-max-age": "60m"})) == \
        (406, prefix + "received '60m' but current is '1h'")
    assert helpers.expect_channel_error(
        conn.channel().queue_declare, q, durable=True, arguments=STREAM) == \
        (406, prefix + "received none but current is the value '1h' of type 'longstr'")


def test_redeclaring_a_stream_exclusive_is_resource_locked(conn, name, streams):
    q = streams(name("stream"))
    code, text = helpers.expect_channel_error(
        conn.channel().queue_declare, q, durable=True, exclusive=True, arguments=STREAM)
    assert (code, text) == (405, "RESOURCE_LOCKED - cannot obtain exclusive access to locked "
                                 "queue '%s' in vhost '/'. It could be originally declared on "
                                 "another connection or the exclusive property value does not "
                                 "match that of the original declaration." % q)


# ------------------------------------------------------- refused operations ----
def _not_supported(what, q):
    return (540, "NOT_IMPLEMENTED - %s not supported by stream queues queue '%s' in vhost '/'"
            % (what, q))


@pytest.mark.parametrize("auto_ack", [False, True])
def test_basic_get_closes_the_connection_with_540(connect, name, streams, auto_ack):
    q = fill(connect, streams, name, 1)
    ch = connect().channel()
    assert helpers.expect_connection_error(ch.basic_get, q, auto_ack=auto_ack) == \
        _not_supported("basic.get", q)


def test_an_auto_ack_consumer_closes_the_connection_with_540(connect, name, streams):
    q = streams(name("stream"))
    ch = connect().channel()
    ch.basic_qos(prefetch_count=10)
    assert helpers.expect_connection_error(ch.basic_consume, q, lambda *a: None,
                                           auto_ack=True) == \
        _not_supported("automatic acknowledgement", q)


@pytest.mark.parametrize("qos,auto_ack", [
    ([], False), ([], True), ([(10, False), (0, False)], False), ([(10, True)], False),
])
def test_a_consumer_without_its_own_prefetch_is_refused_with_406(connect, name, streams, qos,
                                                                 auto_ack):
    q = streams(name("stream"))
    ch = connect().channel()
    for count, global_qos in qos:
        ch.basic_qos(prefetch_count=count, global_qos=global_qos)
    code, text = helpers.expect_channel_error(ch.basic_consume, q, lambda *a: None,
                                              auto_ack=auto_ack)
    assert (code, text) == (406, "PRECONDITION_FAILED - consumer prefetch count is not set for "
                                 "'queue '%s' in vhost '/''" % q)


def test_a_global_prefetch_beside_a_consumer_prefetch_is_fine(connect, name, streams):
    q = fill(connect, streams, name, 3)
    conn = connect()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=10, global_qos=True)
    reader = Reader(conn, q, "first", prefetch=10)
    assert reader.wait(3) == offsets(3)


@pytest.mark.parametrize("settle", ["nack", "nack-requeue", "reject", "reject-requeue"])
def test_nack_and_reject_close_the_connection_and_nothing_is_redelivered(connect, name, streams,
                                                                         settle):
    q = fill(connect, streams, name, 3)
    conn = connect()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=10)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(m), arguments={"x-stream-offset": 0})
    helpers.wait_until(lambda: len(got) == 3, conn=conn)
    kind, _, requeue = settle.partition("-")

    def settle_first():
        if kind == "nack":
            ch.basic_nack(got[0].delivery_tag, requeue=bool(requeue))
        else:
            ch.basic_reject(got[0].delivery_tag, requeue=bool(requeue))
        helpers.sync(ch)

    assert helpers.expect_connection_error(settle_first) == \
        _not_supported("basic.nack and basic.reject", q)
    # Consumed again: the same three, none marked redelivered.
    reader = Reader(connect(), q, "first")
    assert reader.wait(3) == offsets(3)
    assert [m.redelivered for m, _, _ in reader.items] == [False] * 3


# With unacked deliveries RabbitMQ 3.10 crashes on a requeueing recover (541 INTERNAL_ERROR);
# warren gives the consumer its credit back and redelivers nothing, as a stream's nack would.
@pytest.mark.parametrize("acked,requeue,expected", [
    (True, True, None), (False, True, (541, "INTERNAL_ERROR") if ON_RABBITMQ else None),
    (True, False, (540, "NOT_IMPLEMENTED - requeue=false")),
    (False, False, (540, "NOT_IMPLEMENTED - requeue=false")),
])
def test_basic_recover_on_a_stream_consumer(connect, name, streams, acked, requeue, expected):
    q = fill(connect, streams, name, 2)
    conn = connect()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=10)
    got = []

    def on_delivery(c, m, p, b):
        got.append(m)
        if acked:
            c.basic_ack(m.delivery_tag)

    ch.basic_consume(q, on_delivery, arguments={"x-stream-offset": "first"})
    helpers.wait_until(lambda: len(got) == 2, conn=conn)
    if expected is None:
        ch.basic_recover(requeue=requeue)
        helpers.settle(conn)
        assert len(got) == 2
    else:
        assert helpers.expect_connection_error(ch.basic_recover, requeue=requeue) == expected


def test_purge_closes_the_connection_with_540(connect, name, streams):
    q = fill(connect, streams, name, 2)
    assert helpers.expect_connection_error(connect().channel().queue_purge, q) == \
        _not_supported("queue.purge", q)


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_x_stream_offset_is_refused_by_other_queue_types(conn, name, queue_type):
    admin = conn.channel()
    q = helpers.declare_queue(admin, name("not-stream"), durable=True,
                              arguments={"x-queue-type": queue_type})
    try:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=1)
        code, text = helpers.expect_channel_error(ch.basic_consume, q, lambda *a: None,
                                                  arguments={"x-stream-offset": "first"})
        assert (code, text) == (406, "PRECONDITION_FAILED - invalid arg 'x-stream-offset' for "
                                     "queue '%s' in vhost '/' of queue type rabbit_%s_queue"
                                     % (q, queue_type))
    finally:
        admin.queue_delete(q)
