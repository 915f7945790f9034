"""queue class: declare (server-named, passive, equivalence, exclusive,
auto-delete), bind/unbind, purge, delete (if_unused / if_empty), counts."""
import pika
import pytest

import helpers


def test_server_named_queue_has_amq_gen_prefix(ch):
    ok = ch.queue_declare(queue="", exclusive=True).method
    assert ok.queue.startswith("amq.gen-")
    assert len(ok.queue) > len("amq.gen-")
    assert ok.message_count == 0 and ok.consumer_count == 0
    # and it is usable by that name
    ch.basic_publish("", ok.queue, b"x")
    assert helpers.counts_eventually(ch, ok.queue, (1, 0)) == (1, 0)


def test_server_named_queues_are_distinct(ch):
    a = ch.queue_declare(queue="", exclusive=True).method.queue
    b = ch.queue_declare(queue="", exclusive=True).method.queue
    assert a != b


def test_queue_declare_passive_on_missing_is_404(ch, name, vhost):
    q = name("q")
    code, text = helpers.expect_channel_error(ch.queue_declare, queue=q, passive=True)
    assert code == 404
    assert text == "NOT_FOUND - no queue '%s' in vhost '%s'" % (q, vhost)


def test_queue_declare_passive_on_existing_returns_counts(conn, name):
    ch = conn.channel()
    q = ch.queue_declare(queue=name("q"), exclusive=True).method.queue
    for i in range(3):
        ch.basic_publish("", q, b"m")
    assert helpers.counts_eventually(ch, q, (3, 0)) == (3, 0)
    ok = ch.queue_declare(queue=q, passive=True).method
    assert (ok.queue, ok.message_count, ok.consumer_count) == (q, 3, 0)
    cch = conn.channel()
    cch.basic_qos(prefetch_count=1)
    cch.basic_consume(q, lambda *a: None)
    # one message is delivered (unacked): only ready messages are counted
    assert helpers.wait_until(
        lambda: helpers.queue_counts(ch, q) == (2, 1), conn=conn, timeout=3)


def test_queue_declare_ok_reports_message_and_consumer_counts(ch, name):
    q = ch.queue_declare(queue=name("q"), exclusive=True).method.queue
    for i in range(5):
        ch.basic_publish("", q, b"m%d" % i)
    helpers.wait_until(
        lambda: ch.queue_declare(queue=q, exclusive=True).method.message_count == 5)
    ok = ch.queue_declare(queue=q, exclusive=True).method
    assert (ok.queue, ok.message_count, ok.consumer_count) == (q, 5, 0)
    ch.basic_qos(prefetch_count=2)
    ch.basic_consume(q, lambda *a: None)
    # two are delivered (unacked) and no longer counted as ready
    assert helpers.wait_until(
        lambda: ch.queue_declare(queue=q, exclusive=True).method.message_count == 3,
        conn=ch.connection)
    ok = ch.queue_declare(queue=q, exclusive=True).method
    assert (ok.message_count, ok.consumer_count) == (3, 1)


def test_queue_redeclare_with_different_durable_is_406(conn, name, vhost):
    ch = conn.channel()
    q = name("q")
    ch.queue_declare(queue=q, durable=False)
    try:
        code, text = helpers.expect_channel_error(ch.queue_declare, queue=q, durable=True)
        assert code == 406
        assert text == ("PRECONDITION_FAILED - inequivalent arg 'durable' for queue "
                        "'%s' in vhost '%s': received 'true' but current is "
                        "'false'" % (q, vhost))
    finally:
        conn.channel().queue_delete(q)


def test_queue_redeclare_with_different_auto_delete_is_406(conn, name, vhost):
    ch = conn.channel()
    q = name("q")
    ch.queue_declare(queue=q, auto_delete=False)
    try:
        code, text = helpers.expect_channel_error(ch.queue_declare, queue=q,
                                                  auto_delete=True)
        assert code == 406
        assert text == ("PRECONDITION_FAILED - inequivalent arg 'auto_delete' for "
                        "queue '%s' in vhost '%s': received 'true' but current is "
                        "'false'" % (q, vhost))
    finally:
        conn.channel().queue_delete(q)


def test_queue_redeclare_with_different_x_arguments_is_406(conn, name, vhost):
    ch = conn.channel()
    q = name("q")
    ch.queue_declare(queue=q, arguments={"x-max-length": 10})
    try:
        code, text = helpers.expect_channel_error(ch.queue_declare, queue=q,
                                                  arguments={"x-max-length": 20})
        assert code == 406
        assert text == ("PRECONDITION_FAILED - inequivalent arg 'x-max-length' for "
                        "queue '%s' in vhost '%s': received '20' but current is "
                        "'10'" % (q, vhost))
    finally:
        conn.channel().queue_delete(q)


def test_declaring_amq_prefixed_queue_is_403(ch, vhost):
    code, text = helpers.expect_channel_error(ch.queue_declare, queue="amq.foo-q")
    assert code == 403
    assert text == ("ACCESS_REFUSED - queue name 'amq.foo-q' contains reserved "
                    "prefix 'amq.*'")


def test_exclusive_queue_used_from_other_connection_is_405_resource_locked(connect, name, vhost):
    owner = connect()
    q = owner.channel().queue_declare(queue=name("q"), exclusive=True).method.queue
    other = connect()
    expected = ("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue "
                "'%s' in vhost '%s'. It could be originally declared on another "
                "connection or the exclusive property value does not match that "
                "of the original declaration." % (q, vhost))
    code, text = helpers.expect_channel_error(other.channel().queue_declare,
                                              queue=q, exclusive=True)
    assert (code, text) == (405, expected)
    code, text = helpers.expect_channel_error(other.channel().queue_declare,
                                              queue=q, passive=True)
    assert (code, text) == (405, expected)
    code, text = helpers.expect_channel_error(other.channel().basic_consume,
                                              q, lambda *a: None)
    assert (code, text) == (405, expected)
    # publishing to it from another connection is allowed
    och = other.channel()
    och.basic_publish("", q, b"x")
    helpers.sync(och)
    assert helpers.counts_eventually(owner.channel(), q, (1, 0)) == (1, 0)


def test_exclusive_queue_deleted_when_its_connection_closes(connect, name, params):
    c = connect()
    q = c.channel().queue_declare(queue=name("q"), exclusive=True).method.queue
    assert helpers.queue_exists(params, q)
    c.close()
    assert helpers.wait_until(lambda: not helpers.queue_exists(params, q))


def test_exclusive_queue_survives_its_channel_closing(connect, name, params):
    c = connect()
    ch = c.channel()
    q = ch.queue_declare(queue=name("q"), exclusive=True).method.queue
    ch.close()
    assert helpers.queue_exists(params, q)
    c.channel().queue_declare(queue=q, passive=True)


def test_auto_delete_queue_deleted_after_last_consumer_cancels(ch, name, params):
    q = ch.queue_declare(queue=name("q"), auto_delete=True).method.queue
    t1 = ch.basic_consume(q, lambda *a: None)
    t2 = ch.basic_consume(q, lambda *a: None)
    ch.basic_cancel(t1)
    assert helpers.queue_exists(params, q)
    ch.basic_cancel(t2)
    assert helpers.wait_until(lambda: not helpers.queue_exists(params, q))


def test_auto_delete_queue_never_consumed_is_not_deleted(ch, name, params):
    q = ch.queue_declare(queue=name("q"), auto_delete=True).method.queue
    try:
        ch.basic_publish("", q, b"x")
        ch.basic_get(q, auto_ack=True)
        assert helpers.queue_exists(params, q)
    finally:
        ch.queue_delete(q)


def test_queue_bind_and_unbind(ch, name):
    ex = name("ex")
    ch.exchange_declare(ex, "direct", auto_delete=True)
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    keep = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.queue_bind(keep, ex, "other")  # keep the auto-delete exchange alive
    ok = ch.queue_bind(q, ex, "k")
    assert isinstance(ok.method, pika.spec.Queue.BindOk)
    ch.basic_publish(ex, "k", b"1")
    ok = ch.queue_unbind(q, ex, "k")
    assert isinstance(ok.method, pika.spec.Queue.UnbindOk)
    ch.basic_publish(ex, "k", b"2")
    helpers.sync(ch)
    assert [b for _, _, b in helpers.get_all(ch, q)] == [b"1"]


def test_queue_bind_is_idempotent(ch, name):
    ex = name("ex")
    ch.exchange_declare(ex, "direct", auto_delete=True)
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ch.queue_bind(q, ex, "k")
    ch.queue_bind(q, ex, "k")
    ch.basic_publish(ex, "k", b"once")
    helpers.sync(ch)
    assert [b for _, _, b in helpers.get_all(ch, q)] == [b"once"]


def test_queue_bind_to_missing_exchange_is_404(ch, name, vhost):
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ex = name("noex")
    code, text = helpers.expect_channel_error(ch.queue_bind, q, ex, "k")
    assert code == 404
    assert text == "NOT_FOUND - no exchange '%s' in vhost '%s'" % (ex, vhost)


def test_queue_bind_missing_queue_is_404(ch, name, vhost):
    q = name("noq")
    code, text = helpers.expect_channel_error(ch.queue_bind, q, "amq.direct", "k")
    assert code == 404
    assert text == "NOT_FOUND - no queue '%s' in vhost '%s'" % (q, vhost)


def test_queue_unbind_nonexistent_binding_is_ok(ch, name):
    q = ch.queue_declare(queue="", exclusive=True).method.queue
    ok = ch.queue_unbind(q, "amq.direct", "never-bound")
    assert isinstance(ok.method, pika.spec.Queue.UnbindOk)


def test_queue_purge_returns_message_count(ch, name):
    q = ch.queue_declare(queue=name("q"), exclusive=True).method.queue
    for i in range(7):
        ch.basic_publish("", q, b"m")
    helpers.sync(ch)
    ok = ch.queue_purge(q)
    assert isinstance(ok.method, pika.spec.Queue.PurgeOk)
    assert ok.method.message_count == 7
    assert helpers.counts_eventually(ch, q, (0, 0)) == (0, 0)
    assert ch.queue_purge(q).method.message_count == 0


def test_queue_purge_does_not_remove_unacked_messages(ch, name):
    q = ch.queue_declare(queue=name("q"), exclusive=True).method.queue
    for i in range(3):
        ch.basic_publish("", q, b"m%d" % i)
    m, _, _ = ch.basic_get(q, auto_ack=False)
    assert ch.queue_purge(q).method.message_count == 2
    ch.basic_reject(m.delivery_tag, requeue=True)
    helpers.sync(ch)
    assert helpers.counts_eventually(ch, q, (1, 0)) == (1, 0)


def test_queue_delete_returns_message_count(ch, name, params):
    q = ch.queue_declare(queue=name("q")).method.queue
    for i in range(4):
        ch.basic_publish("", q, b"m")
    helpers.sync(ch)
    ok = ch.queue_delete(q)
    assert isinstance(ok.method, pika.spec.Queue.DeleteOk)
    assert ok.method.message_count == 4
    assert not helpers.queue_exists(params, q)


def test_queue_delete_missing_queue_is_ok(ch, name):
    ok = ch.queue_delete(name("noq"))
    assert ok.method.message_count == 0


def test_queue_delete_if_unused_with_consumer_is_406(conn, name, vhost):
    ch = conn.channel()
    q = ch.queue_declare(queue=name("q"), exclusive=True).method.queue
    ch.basic_consume(q, lambda *a: None)
    ch2 = conn.channel()
    code, text = helpers.expect_channel_error(ch2.queue_delete, q, if_unused=True)
    assert code == 406
    assert text == "PRECONDITION_FAILED - queue '%s' in vhost '%s' in use" % (q, vhost)


def test_queue_delete_if_empty_with_messages_is_406(conn, name, vhost):
    ch = conn.channel()
    q = ch.queue_declare(queue=name("q"), exclusive=True).method.queue
    ch.basic_publish("", q, b"x")
    helpers.sync(ch)
    code, text = helpers.expect_channel_error(ch.queue_delete, q, if_empty=True)
    assert code == 406
    assert text == "PRECONDITION_FAILED - queue '%s' in vhost '%s' not empty" % (q, vhost)


def test_queue_delete_if_unused_and_if_empty_succeed_when_idle_and_empty(ch, name, params):
    q = ch.queue_declare(queue=name("q")).method.queue
    ok = ch.queue_delete(q, if_unused=True, if_empty=True)
    assert ok.method.message_count == 0
    assert not helpers.queue_exists(params, q)


def test_queue_delete_cancels_consumers_with_basic_cancel(conn, name):
    ch = conn.channel()
    q = ch.queue_declare(queue=name("q")).method.queue
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = ch.basic_consume(q, lambda *a: None)
    conn.channel().queue_delete(q)
    assert helpers.wait_until(lambda: cancelled, conn=conn)
    assert cancelled == [tag]
