"""Single active consumer queues (x-single-active-consumer), as RabbitMQ 3.10."""
import helpers

SAC = {"x-single-active-consumer": True}


def _consumer(conn, q):
    ch = conn.channel()
    col = helpers.Collector()
    tag = ch.basic_consume(q, col)
    return ch, col, tag


def test_only_first_consumer_receives(conn, ch, name):
    q = helpers.declare_queue(ch, name("sac"), exclusive=True, arguments=SAC)
    _, a, _ = _consumer(conn, q)
    _, b, _ = _consumer(conn, q)
    for i in range(5):
        ch.basic_publish("", q, b"m%d" % i)
    a.wait(conn, 5)
    helpers.settle(conn)
    assert a.bodies == [b"m%d" % i for i in range(5)]
    assert b.bodies == []


def test_next_consumer_takes_over_after_cancel(conn, ch, name):
    q = helpers.declare_queue(ch, name("sac"), exclusive=True, arguments=SAC)
    ach, a, atag = _consumer(conn, q)
    _, b, _ = _consumer(conn, q)
    _, c, _ = _consumer(conn, q)
    ch.basic_publish("", q, b"m0")
    a.wait(conn, 1)
    ach.basic_ack(a.tags[0])
    ach.basic_cancel(atag)
    ch.basic_publish("", q, b"m1")
    ch.basic_publish("", q, b"m2")
    b.wait(conn, 2)
    helpers.settle(conn)
    assert b.bodies == [b"m1", b"m2"]
    assert c.bodies == []


def test_next_consumer_gets_requeued_messages_when_active_channel_closes(conn, ch, name):
    q = helpers.declare_queue(ch, name("sac"), exclusive=True, arguments=SAC)
    ach, a, _ = _consumer(conn, q)
    _, b, _ = _consumer(conn, q)
    for i in range(3):
        ch.basic_publish("", q, b"m%d" % i)
    a.wait(conn, 3)
    ach.close()
    b.wait(conn, 3)
    assert b.bodies == [b"m0", b"m1", b"m2"]
    assert all(m.redelivered for m, _, _ in b.items)
    ch.basic_publish("", q, b"m3")
    b.wait(conn, 4)
    assert b.bodies[3] == b"m3" and not b.items[3][0].redelivered


def test_declare_ok_counts_all_registered_consumers(conn, ch, name):
    q = helpers.declare_queue(ch, name("sac"), exclusive=True, arguments=SAC)
    chans = [_consumer(conn, q) for _ in range(3)]
    assert helpers.queue_counts(ch, q) == (0, 3)
    assert ch.queue_declare(q, exclusive=True, arguments=SAC).method.consumer_count == 3
    cch, _, tag = chans[0]
    cch.basic_cancel(tag)
    assert helpers.queue_counts(ch, q) == (0, 2)


def test_non_boolean_sac_is_406(ch, name, vhost):
    q = name("sac")
    code, text = helpers.expect_channel_error(
        ch.queue_declare, q, arguments={"x-single-active-consumer": "yes"})
    assert code == 406
    assert text == ("PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue '%s' "
                    "in vhost '%s': {unacceptable_type,longstr}" % (q, vhost))


def test_redeclare_without_sac_is_inequivalent(ch, name, vhost):
    q = helpers.declare_queue(ch, name("sac"), exclusive=True, arguments=SAC)
    code, text = helpers.expect_channel_error(ch.queue_declare, q, exclusive=True)
    assert code == 406
    assert text == ("PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer' for queue "
                    "'%s' in vhost '%s': received none but current is the value 'true' of type "
                    "'bool'" % (q, vhost))
