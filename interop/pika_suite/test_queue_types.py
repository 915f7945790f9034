"""x-queue-type (issue #14): quorum queues as RabbitMQ 3.10 declares, refuses and redelivers
them, through pika. Every queue here is deleted at the end of its test (quorum queues cannot be
exclusive or auto-delete)."""
import pika
import pytest

import helpers

QUORUM = {"x-queue-type": "quorum"}


@pytest.fixture
def quorum_queues(ch):
    """Factory: declare a quorum queue (extra arguments merged in); deleted at teardown."""
    made = []

    def make(name, **arguments):
        q = helpers.declare_queue(ch, name, durable=True, arguments=dict(QUORUM, **arguments))
        made.append(q)
        return q

    yield make
    for q in made:
        try:
            if ch.is_open:
                ch.queue_delete(q)
        except Exception:
            pass


def _wait_get(ch, conn, q):
    """basic.get (manual ack) until a message is there: RabbitMQ requeues asynchronously."""
    def one():
        got = ch.basic_get(q)
        return got if got[0] is not None else None

    method, props, body = helpers.wait_until(one, conn=conn, timeout=5.0) or (None, None, None)
    assert method is not None, "nothing to get from %s" % q
    return method, props, body


def test_a_quorum_queue_is_declared_and_redeclared(ch, name, quorum_queues):
    q = quorum_queues(name("qq"))
    ok = ch.queue_declare(q, durable=True, arguments=QUORUM).method
    assert ok.queue == q and ok.message_count == 0


@pytest.mark.parametrize("arguments,durable,exclusive,auto_delete,reason", [
    ({"x-queue-type": "bogus"}, True, False, False,
     "invalid arg 'x-queue-type' for queue '%s' in vhost '/': \"unsupported queue type 'bogus'\""),
    (dict(QUORUM, **{"x-max-priority": 5}), True, False, False,
     "invalid arg 'x-max-priority' for queue '%s' in vhost '/' of queue type rabbit_quorum_queue"),
    (QUORUM, False, False, False, "invalid property 'non-durable' for queue '%s' in vhost '/'"),
    (QUORUM, True, True, False, "invalid property 'exclusive-owner' for queue '%s' in vhost '/'"),
    (QUORUM, True, False, True, "invalid property 'auto-delete' for queue '%s' in vhost '/'"),
])
def test_what_rabbitmq_refuses_for_a_quorum_queue(conn, name, arguments, durable, exclusive,
                                                  auto_delete, reason):
    q = name("qq-refused")
    ch = conn.channel()
    code, text = helpers.expect_channel_error(
        ch.queue_declare, q, durable=durable, exclusive=exclusive, auto_delete=auto_delete,
        arguments=arguments)
    assert (code, text) == (406, "PRECONDITION_FAILED - " + reason % q)


def test_redeclaring_a_quorum_queue_as_classic_is_inequivalent(conn, ch, name, quorum_queues):
    q = quorum_queues(name("qq"))
    other = conn.channel()
    code, text = helpers.expect_channel_error(other.queue_declare, q, durable=True)
    assert code == 406
    assert text == ("PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '%s' in "
                    "vhost '/': received none but current is the value 'quorum' of type "
                    "'longstr'" % q)


def test_global_qos_is_refused_by_a_quorum_queue(connect, name):
    conn = connect()
    ch = conn.channel()
    q = helpers.declare_queue(ch, name("qq-global"), durable=True, arguments=QUORUM)
    ch.basic_qos(prefetch_count=5, global_qos=True)
    code, text = helpers.expect_connection_error(ch.basic_consume, q, lambda *a: None)
    assert (code, text) == (540, "NOT_IMPLEMENTED - queue '%s' in vhost '/' does not "
                                 "support global qos" % q)
    cleanup = connect().channel()
    cleanup.queue_delete(q)


def test_deliveries_carry_the_delivery_count_up_to_the_limit(conn, ch, name, quorum_queues):
    dead = helpers.declare_queue(ch, name("qq-dead"), exclusive=True)
    q = quorum_queues(name("qq-limit"), **{"x-delivery-limit": 2,
                                          "x-dead-letter-exchange": "",
                                          "x-dead-letter-routing-key": dead})
    ch.basic_publish("", q, b"again", pika.BasicProperties(delivery_mode=1))
    seen = []
    for _ in range(3):
        method, props, _ = _wait_get(ch, conn, q)
        seen.append((method.redelivered, (props.headers or {}).get("x-delivery-count")))
        ch.basic_nack(method.delivery_tag, requeue=True)
    assert seen == [(False, 0), (True, 1), (True, 2)]
    _, props, body = _wait_get(ch, conn, dead)
    assert body == b"again"
    assert props.headers["x-first-death-reason"] == "delivery_limit"


def test_returned_messages_go_to_the_back_in_the_order_they_came_back(conn, ch, name,
                                                                       quorum_queues):
    q = quorum_queues(name("qq-order"))
    for i in range(5):
        ch.basic_publish("", q, str(i).encode())
    tags = [_wait_get(ch, conn, q)[0].delivery_tag for _ in range(3)]
    ch.basic_reject(tags[2], requeue=True)
    ch.basic_reject(tags[0], requeue=True)
    helpers.wait_until(lambda: helpers.queue_counts(ch, q)[0] == 4, conn=conn, timeout=5.0)
    order = [(b.decode(), m.redelivered) for m, _, b in helpers.get_all(ch, q)]
    assert order == [("3", False), ("4", False), ("2", True), ("0", True)]
    ch.basic_ack(tags[1])
