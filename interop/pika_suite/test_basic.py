"""basic class: publish/return, consume/cancel, get, ack/nack/reject,
recover, qos, ordering, requeue on close, large bodies, properties."""
import datetime
import decimal
import hashlib
import os

import pika
import pika.spec
import pytest

import helpers
from helpers import Collector, RawField


def _q(ch, name, **kw):
    kw.setdefault("exclusive", True)
    return ch.queue_declare(queue=name("q"), **kw).method.queue


def _publish(ch, q, n, prefix="m"):
    for i in range(n):
        ch.basic_publish("", q, ("%s%d" % (prefix, i)).encode())
    helpers.sync(ch)


# --------------------------------------------------------------- publish ----

def test_mandatory_unroutable_publish_is_returned_312_no_route(conn, ch, name):
    ex = name("ex")
    ch.exchange_declare(ex, "direct", auto_delete=True)
    ch.queue_bind(ch.queue_declare("", exclusive=True).method.queue, ex, "bound")
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append((m, p, b)))
    props = pika.BasicProperties(message_id="mid-1", headers={"h": 1})
    ch.basic_publish(ex, "unbound", b"payload", props, mandatory=True)
    assert helpers.wait_until(lambda: returned, conn=conn)
    m, p, b = returned[0]
    assert isinstance(m, pika.spec.Basic.Return)
    assert (m.reply_code, m.reply_text) == (312, "NO_ROUTE")
    assert (m.exchange, m.routing_key) == (ex, "unbound")
    assert b == b"payload"
    assert p.message_id == "mid-1" and p.headers == {"h": 1}


def test_mandatory_publish_to_default_exchange_missing_queue_is_returned(conn, ch, name):
    returned = []
    ch.add_on_return_callback(lambda c, m, p, b: returned.append((m, b)))
    q = name("noq")
    ch.basic_publish("", q, b"x", mandatory=True)
    assert helpers.wait_until(lambda: returned, conn=conn)
    m, b = returned[0]
    assert (m.reply_code, m.reply_text, m.exchange, m.routing_key) == (312, "NO_ROUTE", "", q)


def test_non_mandatory_unroutable_publish_is_dropped_silently(conn, ch, name):
    returned = []
    ch.add_on_return_callback(lambda *a: returned.append(a))
    ch.basic_publish("amq.direct", name("nobody"), b"x")
    helpers.sync(ch)
    helpers.settle(conn, 0.2)
    assert returned == []
    assert ch.is_open


def test_mandatory_routable_publish_is_not_returned(conn, ch, name):
    q = _q(ch, name)
    returned = []
    ch.add_on_return_callback(lambda *a: returned.append(a))
    ch.basic_publish("", q, b"x", mandatory=True)
    helpers.sync(ch)
    helpers.settle(conn, 0.2)
    assert returned == []
    assert helpers.counts_eventually(ch, q, (1, 0)) == (1, 0)


def test_publish_immediate_true_closes_connection_540_not_implemented(conn, ch, name):
    q = _q(ch, name)
    helpers.raw_publish(ch, "", q, b"x", immediate=True)
    code, text = helpers.expect_connection_error(conn.process_data_events, time_limit=2)
    assert code == 540
    assert text == "NOT_IMPLEMENTED - immediate=true"
    assert conn.is_closed


# --------------------------------------------------------------- consume ----

def test_consume_no_ack_delivers_and_removes_messages(conn, ch, name):
    q = _q(ch, name)
    _publish(ch, q, 3)
    col = Collector()
    ch.basic_consume(q, col, auto_ack=True)
    assert col.wait(conn, 3) == 3
    assert col.bodies == [b"m0", b"m1", b"m2"]
    assert col.tags == [1, 2, 3]
    assert all(not m.redelivered for m, _, _ in col.items)
    assert all(m.exchange == "" and m.routing_key == q for m, _, _ in col.items)
    # nothing left, nothing unacked: closing the channel requeues nothing
    ch.close()
    assert helpers.counts_eventually(conn.channel(), q, (0, 0)) == (0, 0)


def test_consume_with_client_consumer_tag_echoes_tag(conn, ch, name):
    q = _q(ch, name)
    col = Collector()
    tag = ch.basic_consume(q, col, auto_ack=True, consumer_tag="my-tag-1")
    assert tag == "my-tag-1"
    ch.basic_publish("", q, b"x")
    col.wait(conn, 1)
    assert col.items[0][0].consumer_tag == "my-tag-1"


def test_server_generated_consumer_tag_has_amq_ctag_prefix(conn, ch, name):
    q = _q(ch, name)
    got = []
    # pika always generates its own tag, so send basic.consume by hand
    ch._impl._rpc(pika.spec.Basic.Consume(queue=q, consumer_tag="", no_ack=True),
                  lambda frame: got.append(frame.method), [pika.spec.Basic.ConsumeOk])
    assert helpers.wait_until(lambda: got, conn=conn)
    assert got[0].consumer_tag.startswith("amq.ctag-")
    assert len(got[0].consumer_tag) > len("amq.ctag-")
    assert helpers.counts_eventually(ch, q, (0, 1)) == (0, 1)


def test_exclusive_consume_conflict_is_403(conn, name, vhost):
    ch1 = conn.channel()
    q = _q(ch1, name)
    ch1.basic_consume(q, lambda *a: None, exclusive=True)
    ch2 = conn.channel()
    code, text = helpers.expect_channel_error(ch2.basic_consume, q, lambda *a: None)
    assert code == 403
    assert text == "ACCESS_REFUSED - queue '%s' in vhost '%s' in exclusive use" % (q, vhost)


def test_exclusive_consume_on_queue_with_consumers_is_403(conn, name, vhost):
    ch1 = conn.channel()
    q = _q(ch1, name)
    ch1.basic_consume(q, lambda *a: None)
    ch2 = conn.channel()
    code, text = helpers.expect_channel_error(ch2.basic_consume, q, lambda *a: None,
                                              exclusive=True)
    assert code == 403
    assert text == "ACCESS_REFUSED - queue '%s' in vhost '%s' in exclusive use" % (q, vhost)


def test_consume_from_missing_queue_is_404(ch, name, vhost):
    q = name("noq")
    code, text = helpers.expect_channel_error(ch.basic_consume, q, lambda *a: None)
    assert code == 404
    assert text == "NOT_FOUND - no queue '%s' in vhost '%s'" % (q, vhost)


def test_cancel_stops_deliveries(conn, ch, name):
    q = _q(ch, name)
    col = Collector()
    tag = ch.basic_consume(q, col, auto_ack=True)
    ch.basic_publish("", q, b"before")
    col.wait(conn, 1)
    ch.basic_cancel(tag)
    assert helpers.counts_eventually(ch, q, (0, 0)) == (0, 0)
    ch.basic_publish("", q, b"after")
    helpers.sync(ch)
    helpers.settle(conn, 0.2)
    assert col.bodies == [b"before"]
    assert helpers.counts_eventually(ch, q, (1, 0)) == (1, 0)


def test_cancel_leaves_unacked_messages_unacked_until_channel_close(conn, name):
    ch = conn.channel()
    q = _q(ch, name)
    _publish(ch, q, 2)
    col = Collector()
    tag = ch.basic_consume(q, col)
    col.wait(conn, 2)
    ch.basic_cancel(tag)
    # still unacked (not ready) and can be acked after cancel
    assert helpers.counts_eventually(ch, q, (0, 0)) == (0, 0)
    ch.basic_ack(col.tags[0])
    helpers.sync(ch)
    ch.close()
    left = helpers.get_all(conn.channel(), q)
    assert [b for _, _, b in left] == [b"m1"]
    assert left[0][0].redelivered


def test_consumer_cancel_notify_when_queue_deleted(conn, name):
    ch = conn.channel()
    q = ch.queue_declare(queue=name("q")).method.queue
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method))
    tag = ch.basic_consume(q, lambda *a: None)
    conn.channel().queue_delete(q)
    assert helpers.wait_until(lambda: cancelled, conn=conn)
    assert isinstance(cancelled[0], pika.spec.Basic.Cancel)
    assert cancelled[0].consumer_tag == tag


# ------------------------------------------------------------------- get ----

def test_basic_get_returns_message_and_remaining_count(ch, name):
    q = _q(ch, name)
    _publish(ch, q, 3)
    m, p, b = ch.basic_get(q, auto_ack=True)
    assert isinstance(m, pika.spec.Basic.GetOk)
    assert b == b"m0"
    assert m.message_count == 2
    assert m.delivery_tag == 1
    assert not m.redelivered
    assert (m.exchange, m.routing_key) == ("", q)


def test_basic_get_on_empty_queue_returns_get_empty(ch, name):
    q = _q(ch, name)
    m, p, b = ch.basic_get(q, auto_ack=True)
    assert (m, p, b) == (None, None, None)


def test_basic_get_from_missing_queue_is_404(ch, name, vhost):
    q = name("noq")
    code, text = helpers.expect_channel_error(ch.basic_get, q)
    assert code == 404
    assert text == "NOT_FOUND - no queue '%s' in vhost '%s'" % (q, vhost)


def test_delivery_tags_are_per_channel_and_increase_across_get_and_consume(conn, ch, name):
    q = _q(ch, name)
    _publish(ch, q, 3)
    m1, _, _ = ch.basic_get(q)
    m2, _, _ = ch.basic_get(q)
    col = Collector()
    ch.basic_consume(q, col)
    col.wait(conn, 1)
    assert [m1.delivery_tag, m2.delivery_tag, col.tags[0]] == [1, 2, 3]
    other = conn.channel()
    _publish(other, q, 1, prefix="o")
    q2 = _q(other, name)
    _publish(other, q2, 1)
    m, _, _ = other.basic_get(q2)
    assert m.delivery_tag == 1


# ------------------------------------------------------ ack/nack/reject ----

def test_ack_removes_message(conn, name):
    ch = conn.channel()
    q = _q(ch, name)
    _publish(ch, q, 1)
    m, _, _ = ch.basic_get(q)
    ch.basic_ack(m.delivery_tag)
    helpers.sync(ch)
    ch.close()  # would requeue the message had the ack not removed it
    assert helpers.counts_eventually(conn.channel(), q, (0, 0)) == (0, 0)


def test_ack_multiple_acks_all_up_to_tag(conn, name):
    ch = conn.channel()
    q = _q(ch, name)
    _publish(ch, q, 5)
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(5)]
    ch.basic_ack(tags[2], multiple=True)   # acks 1,2,3
    helpers.sync(ch)
    ch.close()                             # requeues 4,5
    left = helpers.get_all(conn.channel(), q)
    assert [b for _, _, b in left] == [b"m3", b"m4"]


def test_ack_multiple_with_tag_zero_acks_everything(conn, name):
    ch = conn.channel()
    q = _q(ch, name)
    _publish(ch, q, 4)
    for _ in range(4):
        ch.basic_get(q)
    ch.basic_ack(0, multiple=True)
    helpers.sync(ch)
    ch.close()
    assert helpers.get_all(conn.channel(), q) == []


def test_nack_with_requeue_redelivers_with_redelivered_flag(ch, name):
    q = _q(ch, name)
    _publish(ch, q, 1)
    m, _, _ = ch.basic_get(q)
    assert not m.redelivered
    ch.basic_nack(m.delivery_tag, requeue=True)
    m2, _, b2 = ch.basic_get(q)
    assert b2 == b"m0"
    assert m2.redelivered
    assert m2.delivery_tag == m.delivery_tag + 1


def test_nack_without_requeue_discards_message(ch, name):
    q = _q(ch, name)
    _publish(ch, q, 1)
    m, _, _ = ch.basic_get(q)
    ch.basic_nack(m.delivery_tag, requeue=False)
    helpers.sync(ch)
    assert helpers.counts_eventually(ch, q, (0, 0)) == (0, 0)
    assert ch.basic_get(q) == (None, None, None)


def test_nack_multiple_with_requeue_requeues_in_original_order(ch, name):
    q = _q(ch, name)
    _publish(ch, q, 4)
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(4)]
    ch.basic_nack(tags[2], multiple=True, requeue=True)   # 1..3 back
    left = helpers.get_all(ch, q, auto_ack=True)
    assert [b for _, _, b in left] == [b"m0", b"m1", b"m2"]
    assert all(m.redelivered for m, _, _ in left)
    ch.basic_ack(tags[3])
    helpers.sync(ch)


def test_nack_multiple_without_requeue_discards_all_up_to_tag(conn, name):
    ch = conn.channel()
    q = _q(ch, name)
    _publish(ch, q, 3)
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(3)]
    ch.basic_nack(tags[1], multiple=True, requeue=False)
    helpers.sync(ch)
    ch.close()
    left = helpers.get_all(conn.channel(), q)
    assert [b for _, _, b in left] == [b"m2"]


def test_reject_with_requeue_redelivers_with_redelivered_flag(ch, name):
    q = _q(ch, name)
    _publish(ch, q, 2)
    m, _, _ = ch.basic_get(q)
    ch.basic_reject(m.delivery_tag, requeue=True)
    # requeued message goes back to its original position (the head)
    m2, _, b2 = ch.basic_get(q, auto_ack=True)
    assert (b2, m2.redelivered) == (b"m0", True)
    m3, _, b3 = ch.basic_get(q, auto_ack=True)
    assert (b3, m3.redelivered) == (b"m1", False)


def test_reject_without_requeue_discards_message(ch, name):
    q = _q(ch, name)
    _publish(ch, q, 1)
    m, _, _ = ch.basic_get(q)
    ch.basic_reject(m.delivery_tag, requeue=False)
    helpers.sync(ch)
    assert helpers.counts_eventually(ch, q, (0, 0)) == (0, 0)


def test_ack_unknown_delivery_tag_is_406(ch, name):
    q = _q(ch, name)
    ch.basic_ack(42)
    code, text = helpers.expect_channel_error(helpers.sync, ch)
    assert code == 406
    assert text == "PRECONDITION_FAILED - unknown delivery tag 42"


def test_double_ack_is_406_unknown_delivery_tag(ch, name):
    q = _q(ch, name)
    _publish(ch, q, 1)
    m, _, _ = ch.basic_get(q)
    ch.basic_ack(m.delivery_tag)
    ch.basic_ack(m.delivery_tag)
    code, text = helpers.expect_channel_error(helpers.sync, ch)
    assert code == 406
    assert text == "PRECONDITION_FAILED - unknown delivery tag %d" % m.delivery_tag


def test_ack_of_no_ack_delivery_is_406(ch, name):
    q = _q(ch, name)
    _publish(ch, q, 1)
    m, _, _ = ch.basic_get(q, auto_ack=True)
    ch.basic_ack(m.delivery_tag)
    code, text = helpers.expect_channel_error(helpers.sync, ch)
    assert code == 406
    assert text == "PRECONDITION_FAILED - unknown delivery tag %d" % m.delivery_tag


def test_nack_unknown_delivery_tag_is_406(ch, name):
    ch.basic_nack(7, requeue=True)
    code, text = helpers.expect_channel_error(helpers.sync, ch)
    assert code == 406
    assert text == "PRECONDITION_FAILED - unknown delivery tag 7"


def test_reject_unknown_delivery_tag_is_406(ch, name):
    ch.basic_reject(9, requeue=False)
    code, text = helpers.expect_channel_error(helpers.sync, ch)
    assert code == 406
    assert text == "PRECONDITION_FAILED - unknown delivery tag 9"


def test_ack_on_other_channel_is_406(conn, name):
    ch1 = conn.channel()
    q = _q(ch1, name)
    _publish(ch1, q, 1)
    m, _, _ = ch1.basic_get(q)
    ch2 = conn.channel()
    ch2.basic_ack(m.delivery_tag)
    code, text = helpers.expect_channel_error(helpers.sync, ch2)
    assert (code, text) == (406, "PRECONDITION_FAILED - unknown delivery tag %d" % m.delivery_tag)
    assert ch1.is_open


# --------------------------------------------------------------- recover ----

def test_basic_recover_requeue_redelivers_unacked_with_redelivered_flag(conn, ch, name):
    q = _q(ch, name)
    _publish(ch, q, 2)
    col = Collector()
    ch.basic_consume(q, col)
    col.wait(conn, 2)
    assert [m.redelivered for m, _, _ in col.items] == [False, False]
    ch.basic_recover(requeue=True)
    col.wait(conn, 4)
    assert col.bodies == [b"m0", b"m1", b"m0", b"m1"]
    assert [m.redelivered for m, _, _ in col.items[2:]] == [True, True]
    assert col.tags == [1, 2, 3, 4]
    ch.basic_ack(4, multiple=True)
    helpers.sync(ch)
    assert helpers.counts_eventually(ch, q, (0, 1)) == (0, 1)


# ------------------------------------------------------------------- qos ----

def test_qos_prefetch_count_limits_unacked_deliveries_per_consumer(conn, ch, name):
    q1, q2 = _q(ch, name), _q(ch, name)
    _publish(ch, q1, 6)
    _publish(ch, q2, 6)
    ch.basic_qos(prefetch_count=2)
    c1, c2 = Collector(), Collector()
    ch.basic_consume(q1, c1)
    ch.basic_consume(q2, c2)
    c1.wait(conn, 2)
    c2.wait(conn, 2)
    helpers.settle(conn, 0.3)
    # per_consumer_qos: each consumer gets its own limit of 2
    assert (len(c1), len(c2)) == (2, 2)
    ch.basic_ack(c1.tags[0])
    c1.wait(conn, 3)
    helpers.settle(conn, 0.2)
    assert (len(c1), len(c2)) == (3, 2)
    assert c1.bodies == [b"m0", b"m1", b"m2"]


def test_qos_global_limits_unacked_deliveries_per_channel(conn, ch, name):
    q1, q2 = _q(ch, name), _q(ch, name)
    _publish(ch, q1, 5)
    _publish(ch, q2, 5)
    ch.basic_qos(prefetch_count=3, global_qos=True)
    c1, c2 = Collector(), Collector()
    ch.basic_consume(q1, c1)
    ch.basic_consume(q2, c2)
    helpers.wait_until(lambda: len(c1) + len(c2) >= 3, conn=conn)
    helpers.settle(conn, 0.3)
    assert len(c1) + len(c2) == 3
    ch.basic_ack(0, multiple=True)
    helpers.wait_until(lambda: len(c1) + len(c2) >= 6, conn=conn)
    helpers.settle(conn, 0.2)
    assert len(c1) + len(c2) == 6


def test_qos_prefetch_does_not_limit_no_ack_consumers(conn, ch, name):
    q = _q(ch, name)
    _publish(ch, q, 10)
    ch.basic_qos(prefetch_count=1)
    col = Collector()
    ch.basic_consume(q, col, auto_ack=True)
    assert col.wait(conn, 10) == 10


def test_qos_prefetch_size_nonzero_is_540_not_implemented(conn, ch):
    code, text = helpers.expect_connection_error(ch.basic_qos, prefetch_size=1000,
                                                 prefetch_count=1)
    assert code == 540
    assert text == "NOT_IMPLEMENTED - prefetch_size!=0 (1000)"


# --------------------------------------------------------------- ordering ----

def test_messages_are_delivered_fifo_per_queue(conn, ch, name):
    q = _q(ch, name)
    n = 200
    _publish(ch, q, n)
    col = Collector()
    ch.basic_consume(q, col, auto_ack=True)
    assert col.wait(conn, n) == n
    assert col.bodies == [("m%d" % i).encode() for i in range(n)]


def test_two_consumers_receive_round_robin(conn, ch, name):
    q = _q(ch, name)
    c1, c2 = Collector(), Collector()
    ch.basic_consume(q, c1, auto_ack=True)
    ch.basic_consume(q, c2, auto_ack=True)
    _publish(ch, q, 10)
    helpers.wait_until(lambda: len(c1) + len(c2) >= 10, conn=conn)
    assert c1.bodies == [b"m0", b"m2", b"m4", b"m6", b"m8"]
    assert c2.bodies == [b"m1", b"m3", b"m5", b"m7", b"m9"]


# ------------------------------------------------------ requeue on close ----

def test_unacked_messages_requeued_with_redelivered_when_channel_closes(conn, name):
    ch = conn.channel()
    q = _q(ch, name)
    _publish(ch, q, 3)
    col = Collector()
    ch.basic_consume(q, col)
    col.wait(conn, 3)
    ch.basic_ack(col.tags[1])
    helpers.sync(ch)
    ch.close()
    left = helpers.get_all(conn.channel(), q)
    assert [b for _, _, b in left] == [b"m0", b"m2"]
    assert all(m.redelivered for m, _, _ in left)


def test_unacked_messages_requeued_with_redelivered_when_connection_closes(connect, name):
    keeper = connect()
    kch = keeper.channel()
    q = kch.queue_declare(queue=name("q"), auto_delete=False).method.queue
    try:
        _publish(kch, q, 3)
        c = connect()
        ch = c.channel()
        m0, _, _ = ch.basic_get(q)
        m1, _, _ = ch.basic_get(q)
        ch.basic_ack(m1.delivery_tag)
        helpers.sync(ch)
        c.close()
        left = helpers.get_all(kch, q)
        assert [b for _, _, b in left] == [b"m0", b"m2"]
        assert [m.redelivered for m, _, _ in left] == [True, False]
    finally:
        kch.queue_delete(q)


# ------------------------------------------------------------ large bodies ----

@pytest.mark.parametrize("size", [0, 1, 131064, 131065, 1024 * 1024, 16 * 1024 * 1024],
                         ids=["empty", "1B", "frame-exact", "frame-plus-1", "1MiB", "16MiB"])
def test_large_bodies_round_trip_across_frames(conn, ch, name, size):
    q = _q(ch, name)
    body = os.urandom(size) if size <= 1024 * 1024 else \
        hashlib.sha256(b"seed").digest() * (size // 32)
    assert len(body) == size
    ch.basic_publish("", q, body)
    m, _, got = ch.basic_get(q, auto_ack=True)
    assert m is not None
    assert len(got) == size
    assert got == body


# ------------------------------------------------------------ properties ----

def test_all_basic_properties_round_trip_exactly(conn, ch, name, username):
    q = _q(ch, name)
    headers = {
        "str": "hello ünïcode",
        "int32": -123456,
        "int64": 2 ** 40,
        "bool_t": True,
        "bool_f": False,
        "decimal": decimal.Decimal("3.14"),
        "timestamp": datetime.datetime(2021, 6, 1, 12, 30, 45),
        "bytes": b"\x00\x01\xfe\xff",
        "void": None,
        "array": [1, "two", [3, {"four": 4}], b"\x05", None, True],
        "table": {"nested": {"deeper": {"x": 1, "y": "z"}, "list": [1, 2]}},
        "empty_table": {},
        "empty_array": [],
    }
    props = pika.BasicProperties(
        content_type="application/json",
        content_encoding="gzip",
        headers=headers,
        delivery_mode=2,
        priority=7,
        correlation_id="corr-123",
        reply_to="reply-queue",
        expiration="60000",
        message_id="msg-456",
        timestamp=1622550645,
        type="my.type",
        user_id=username,
        app_id="interop-app",
    )
    sent_raw = helpers.encode_properties(props)
    ch.basic_publish("", q, b"body", props)
    del helpers.LAST_RAW_PROPERTIES[:]
    m, p, b = ch.basic_get(q, auto_ack=True)
    assert b == b"body"
    for attr in ("content_type", "content_encoding", "delivery_mode", "priority",
                 "correlation_id", "reply_to", "expiration", "message_id",
                 "timestamp", "type", "user_id", "app_id"):
        assert getattr(p, attr) == getattr(props, attr), attr
    assert p.cluster_id is None
    assert p.headers == headers
    # and byte for byte on the wire
    assert helpers.LAST_RAW_PROPERTIES[-1] == sent_raw


def test_absent_properties_stay_absent(ch, name):
    q = _q(ch, name)
    ch.basic_publish("", q, b"x")
    del helpers.LAST_RAW_PROPERTIES[:]
    m, p, b = ch.basic_get(q, auto_ack=True)
    for attr in ("content_type", "content_encoding", "headers", "delivery_mode",
                 "priority", "correlation_id", "reply_to", "expiration",
                 "message_id", "timestamp", "type", "user_id", "app_id",
                 "cluster_id"):
        assert getattr(p, attr) is None, attr
    assert helpers.LAST_RAW_PROPERTIES[-1] == b"\x00\x00"


def test_header_field_types_of_every_width_round_trip_byte_exact(conn, ch, name):
    q = _q(ch, name)
    headers = {
        "b": RawField(b"b", "b", -5),
        "B": RawField(b"B", "B", 250),
        "s": RawField(b"s", "h", -300),
        "u": RawField(b"u", "H", 65000),
        "I": RawField(b"I", "i", -70000),
        "i": RawField(b"i", "I", 4000000000),
        "l": RawField(b"l", "q", -(2 ** 40)),
        "f": RawField(b"f", "f", 1.5),
        "d": RawField(b"d", "d", -2.25),
        "D": RawField(b"D", "", None),  # encoded below: scale 2, -314
        "t": RawField(b"t", "B", 1),
        "T": RawField(b"T", "Q", 1622550645),
        "V": RawField(b"V", "", None),
        "arr": [RawField(b"b", "b", -1), RawField(b"u", "H", 1),
                RawField(b"l", "q", 1), RawField(b"f", "f", 0.5)],
        "tbl": {"inner": RawField(b"s", "h", 12)},
    }
    # decimal: scale 2, value -314 (= -3.14)
    headers["D"].encoded = b"D" + bytes([2]) + (-314).to_bytes(4, "big", signed=True)
    props = pika.BasicProperties(headers=headers)
    sent_raw = helpers.encode_properties(props)
    ch.basic_publish("", q, b"x", props)
    del helpers.LAST_RAW_PROPERTIES[:]
    m, p, b = ch.basic_get(q, auto_ack=True)
    assert m is not None
    assert helpers.LAST_RAW_PROPERTIES[-1] == sent_raw
    assert p.headers["I"] == -70000
    assert p.headers["i"] == 4000000000
    assert p.headers["s"] == -300
    assert p.headers["u"] == 65000
    assert p.headers["D"] == decimal.Decimal("-3.14")
    assert p.headers["tbl"] == {"inner": 12}


def test_user_id_property_must_match_authenticated_user(ch, name, username, vhost):
    q = _q(ch, name)
    ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="someone-else"))
    code, text = helpers.expect_channel_error(helpers.sync, ch)
    assert code == 406
    assert text == ("PRECONDITION_FAILED - user_id property set to 'someone-else' "
                    "but authenticated user was '%s'" % username)


def test_user_id_property_equal_to_authenticated_user_is_accepted(ch, name, username):
    q = _q(ch, name)
    ch.basic_publish("", q, b"x", pika.BasicProperties(user_id=username))
    m, p, b = ch.basic_get(q, auto_ack=True)
    assert p.user_id == username
