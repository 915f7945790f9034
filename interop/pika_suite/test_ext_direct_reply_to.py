"""Direct reply-to (amq.rabbitmq.reply-to), as RabbitMQ 3.10."""
import pika

import helpers

REPLY_TO = "amq.rabbitmq.reply-to"


def _request(requester, server, name, body=b"ping"):
    q = helpers.declare_queue(server, name("rpc"), exclusive=True)
    requester.basic_publish("", q, body, pika.BasicProperties(reply_to=REPLY_TO))
    helpers.sync(requester)
    m, p, b = server.basic_get(q, auto_ack=True)
    assert b == body
    return p.reply_to


def test_capability_direct_reply_to(conn):
    assert conn._impl.server_capabilities.get("direct_reply_to") is True


def test_reply_reaches_requester(conn, ch, name):
    requester = conn.channel()
    col = helpers.Collector()
    requester.basic_consume(REPLY_TO, col, auto_ack=True)
    reply_to = _request(requester, ch, name)
    assert reply_to.startswith(REPLY_TO + ".") and len(reply_to) > len(REPLY_TO) + 1
    ch.basic_publish("", reply_to, b"pong", pika.BasicProperties(correlation_id="c-1"))
    col.wait(conn, 1)
    m, p, b = col.items[0]
    assert b == b"pong"
    assert (m.exchange, m.routing_key, m.redelivered) == ("", reply_to, False)
    assert p.correlation_id == "c-1"


def test_consume_without_no_ack_is_406(ch):
    code, text = helpers.expect_channel_error(
        ch.basic_consume, REPLY_TO, lambda *a: None, auto_ack=False)
    assert (code, text) == (406, "PRECONDITION_FAILED - reply consumer cannot acknowledge")


def test_second_reply_consumer_on_channel_is_406(ch):
    ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    code, text = helpers.expect_channel_error(
        ch.basic_consume, REPLY_TO, lambda *a: None, auto_ack=True)
    assert (code, text) == (406, "PRECONDITION_FAILED - reply consumer already set")


def test_publish_with_reply_to_without_consumer_is_406(ch, name):
    q = helpers.declare_queue(ch, name("rpc"), exclusive=True)
    ch.basic_publish("", q, b"req", pika.BasicProperties(reply_to=REPLY_TO))
    code, text = helpers.expect_channel_error(helpers.sync, ch)
    assert (code, text) == (406, "PRECONDITION_FAILED - fast reply consumer does not exist")


def test_reply_to_unknown_address_is_dropped(ch):
    ch.basic_publish("", REPLY_TO + ".garbage", b"lost")
    helpers.sync(ch)
