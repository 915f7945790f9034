"""Consumer priorities (x-priority on basic.consume), as RabbitMQ 3.10."""
import helpers


def _consumer(conn, q, prefetch, priority=None):
    ch = conn.channel()
    ch.basic_qos(prefetch_count=prefetch)
    col = helpers.Collector()
    args = {} if priority is None else {"x-priority": priority}
    ch.basic_consume(q, col, arguments=args)
    return ch, col


def test_capability_consumer_priorities(conn):
    assert conn._impl.server_capabilities.get("consumer_priorities") is True


def test_higher_priority_consumer_gets_all_while_it_has_credit(conn, ch, name):
    q = helpers.declare_queue(ch, name("cprio"), exclusive=True)
    _, low = _consumer(conn, q, 100, 1)
    _, high = _consumer(conn, q, 100, 10)
    for i in range(10):
        ch.basic_publish("", q, b"m%d" % i)
    high.wait(conn, 10)
    helpers.settle(conn)
    assert high.bodies == [b"m%d" % i for i in range(10)]
    assert low.bodies == []


def test_lower_priority_consumer_gets_messages_when_higher_has_no_credit(conn, ch, name):
    q = helpers.declare_queue(ch, name("cprio"), exclusive=True)
    hch, high = _consumer(conn, q, 2, 10)
    _, low = _consumer(conn, q, 100, 1)
    for i in range(6):
        ch.basic_publish("", q, b"m%d" % i)
    helpers.wait_until(lambda: len(high) + len(low) >= 6, conn=conn)
    helpers.settle(conn)
    assert high.bodies == [b"m0", b"m1"]
    assert low.bodies == [b"m2", b"m3", b"m4", b"m5"]
    for tag in high.tags:
        hch.basic_ack(tag)
    for i in range(6, 8):
        ch.basic_publish("", q, b"m%d" % i)
    high.wait(conn, 4)
    helpers.settle(conn)
    assert high.bodies[2:] == [b"m6", b"m7"]
    assert len(low) == 4


def test_same_priority_consumers_round_robin(conn, ch, name):
    q = helpers.declare_queue(ch, name("cprio"), exclusive=True)
    _, a = _consumer(conn, q, 100, 7)
    _, b = _consumer(conn, q, 100, 7)
    _, c = _consumer(conn, q, 100, 3)
    for i in range(6):
        ch.basic_publish("", q, b"m%d" % i)
    helpers.wait_until(lambda: len(a) + len(b) >= 6, conn=conn)
    helpers.settle(conn)
    got = sorted([a.bodies, b.bodies])
    assert got == [[b"m0", b"m2", b"m4"], [b"m1", b"m3", b"m5"]]
    assert c.bodies == []


def test_negative_priority_is_below_default(conn, ch, name):
    q = helpers.declare_queue(ch, name("cprio"), exclusive=True)
    _, neg = _consumer(conn, q, 100, -1)
    _, dflt = _consumer(conn, q, 100, None)
    for i in range(4):
        ch.basic_publish("", q, b"m%d" % i)
    dflt.wait(conn, 4)
    helpers.settle(conn)
    assert len(dflt) == 4 and neg.bodies == []


def test_non_integer_x_priority_is_406(ch, name, vhost):
    q = helpers.declare_queue(ch, name("cprio"), exclusive=True)
    code, text = helpers.expect_channel_error(
        ch.basic_consume, q, lambda *a: None, arguments={"x-priority": "high"})
    assert code == 406
    assert text == ("PRECONDITION_FAILED - invalid arg 'x-priority' for queue '%s' in vhost '%s': "
                    "\"expected integer, got longstr\"" % (q, vhost))
