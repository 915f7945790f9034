"""Dead lettering and the x-death headers, as RabbitMQ 3.10 (which sets
x-death and x-first-death-*, but no x-last-death-*)."""
import datetime
import time

import pika

import helpers


def _dlx(ch, name):
    dlx = name("dlx")
    ch.exchange_declare(dlx, "fanout", auto_delete=True)
    dlq = helpers.declare_queue(ch, name("dlq"), exclusive=True)
    ch.queue_bind(dlq, dlx)
    return dlx, dlq


def _wait_get(ch, q, auto_ack=True, timeout=3.0):
    got = []

    def poll():
        m, p, b = ch.basic_get(q, auto_ack=auto_ack)
        if m is not None:
            got.append((m, p, b))
        return got

    assert helpers.wait_until(poll, timeout=timeout), "nothing arrived in %s" % q
    return got[0]


def _reject(ch, q):
    m, _, _ = _wait_get(ch, q, auto_ack=False)
    ch.basic_reject(m.delivery_tag, requeue=False)


def _check_death(entry, count, reason, queue, exchange, routing_keys, original_expiration=None):
    want = {"count", "reason", "queue", "time", "exchange", "routing-keys"}
    if original_expiration is not None:
        want.add("original-expiration")
    assert set(entry) == want
    assert entry["count"] == count
    assert (entry["reason"], entry["queue"], entry["exchange"]) == (reason, queue, exchange)
    assert entry["routing-keys"] == routing_keys
    assert isinstance(entry["time"], datetime.datetime)  # AMQP timestamp 'T'
    if original_expiration is not None:
        assert entry["original-expiration"] == original_expiration


def _check_first(h, reason, queue, exchange):
    assert (h["x-first-death-reason"], h["x-first-death-queue"],
            h["x-first-death-exchange"]) == (reason, queue, exchange)
    assert not [k for k in h if k.startswith("x-last-death")]


def test_rejected_message_x_death_layout(ch, name):
    dlx, dlq = _dlx(ch, name)
    src = helpers.declare_queue(ch, name("src"), exclusive=True,
                                arguments={"x-dead-letter-exchange": dlx})
    ch.basic_publish("", src, b"body", pika.BasicProperties(headers={"app": "kept"}))
    _reject(ch, src)
    m, p, b = _wait_get(ch, dlq)
    assert b == b"body"
    assert (m.exchange, m.routing_key) == (dlx, src)
    h = p.headers
    assert set(h) == {"app", "x-death", "x-first-death-exchange", "x-first-death-queue",
                      "x-first-death-reason"}
    assert h["app"] == "kept"
    assert len(h["x-death"]) == 1
    _check_death(h["x-death"][0], 1, "rejected", src, "", [src])
    _check_first(h, "rejected", src, "")
    # wire types: count is 'l' (64-bit signed), strings 'S', time 'T'
    raw = helpers.LAST_RAW_PROPERTIES[-1]
    assert b"\x05countl\x00\x00\x00\x00\x00\x00\x00\x01" in raw
    assert b"\x06reasonS\x00\x00\x00\x08rejected" in raw
    assert b"\x04timeT" in raw
    assert b"\x0crouting-keysA" in raw


def test_nack_without_requeue_dead_letters(ch, name):
    dlx, dlq = _dlx(ch, name)
    src = helpers.declare_queue(ch, name("src"), exclusive=True,
                                arguments={"x-dead-letter-exchange": dlx})
    ch.basic_publish("", src, b"n")
    m, _, _ = _wait_get(ch, src, auto_ack=False)
    ch.basic_nack(m.delivery_tag, requeue=False)
    _, p, _ = _wait_get(ch, dlq)
    _check_death(p.headers["x-death"][0], 1, "rejected", src, "", [src])


def test_expired_message_dead_lettered_with_original_expiration(ch, name):
    dlx, dlq = _dlx(ch, name)
    src = helpers.declare_queue(ch, name("src"), exclusive=True,
                                arguments={"x-dead-letter-exchange": dlx,
                                           "x-dead-letter-routing-key": "rk2"})
    ch.basic_publish("", src, b"e", pika.BasicProperties(expiration="100", message_id="mid"))
    m, p, _ = _wait_get(ch, dlq)
    assert m.routing_key == "rk2"
    assert p.expiration is None and p.message_id == "mid"
    _check_death(p.headers["x-death"][0], 1, "expired", src, "", [src], original_expiration="100")
    _check_first(p.headers, "expired", src, "")


def test_maxlen_overflow_dead_letters_head(ch, name):
    dlx, dlq = _dlx(ch, name)
    src = helpers.declare_queue(ch, name("src"), exclusive=True,
                                arguments={"x-dead-letter-exchange": dlx, "x-max-length": 1})
    ch.basic_publish("", src, b"first")
    ch.basic_publish("", src, b"second")
    _, p, b = _wait_get(ch, dlq)
    assert b == b"first"
    _check_death(p.headers["x-death"][0], 1, "maxlen", src, "", [src])


def test_cc_keys_and_exchange_recorded(ch, name):
    dlx, dlq = _dlx(ch, name)
    src = helpers.declare_queue(ch, name("src"), exclusive=True,
                                arguments={"x-dead-letter-exchange": dlx})
    ex = name("ex")
    ch.exchange_declare(ex, "direct", auto_delete=True)
    ch.queue_bind(src, ex, "k1")
    ch.basic_publish(ex, "k1", b"cc", pika.BasicProperties(headers={"CC": ["k2"]}))
    _reject(ch, src)
    _, p, _ = _wait_get(ch, dlq)
    _check_death(p.headers["x-death"][0], 1, "rejected", src, ex, ["k1", "k2"])
    _check_first(p.headers, "rejected", src, ex)


def test_count_increments_for_same_queue_and_reason(ch, name):
    q = name("loop")
    ch.queue_declare(q, exclusive=True, arguments={"x-dead-letter-exchange": "",
                                                   "x-dead-letter-routing-key": q})
    ch.basic_publish("", q, b"again")
    _reject(ch, q)
    _reject(ch, q)
    _, p, _ = _wait_get(ch, q)
    assert len(p.headers["x-death"]) == 1
    _check_death(p.headers["x-death"][0], 2, "rejected", q, "", [q])


def test_second_queue_prepends_entry(ch, name):
    dlq = helpers.declare_queue(ch, name("final"), exclusive=True)
    q2 = helpers.declare_queue(ch, name("q2"), exclusive=True,
                               arguments={"x-dead-letter-exchange": "",
                                          "x-dead-letter-routing-key": dlq})
    q1 = helpers.declare_queue(ch, name("q1"), exclusive=True,
                               arguments={"x-dead-letter-exchange": "",
                                          "x-dead-letter-routing-key": q2,
                                          "x-message-ttl": 100})
    ch.basic_publish("", q1, b"twice")
    _reject(ch, q2)
    _, p, _ = _wait_get(ch, dlq)
    deaths = p.headers["x-death"]
    assert len(deaths) == 2
    _check_death(deaths[0], 1, "rejected", q2, "", [q2])
    _check_death(deaths[1], 1, "expired", q1, "", [q1])
    _check_first(p.headers, "expired", q1, "")


def test_expiry_cycle_is_dropped(ch, name):
    q = name("cycle")
    ch.queue_declare(q, exclusive=True, arguments={"x-message-ttl": 200,
                                                   "x-dead-letter-exchange": "",
                                                   "x-dead-letter-routing-key": q})
    ch.basic_publish("", q, b"cycle")
    helpers.sync(ch)
    time.sleep(0.45)
    assert ch.basic_get(q, auto_ack=True)[0] is None
    time.sleep(0.4)
    assert helpers.queue_counts(ch, q) == (0, 0)


def test_routing_key_without_dlx_is_406(ch, name, vhost):
    q = name("dl")
    code, text = helpers.expect_channel_error(
        ch.queue_declare, q, arguments={"x-dead-letter-routing-key": "k"})
    assert code == 406
    assert text == ("PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue "
                    "'%s' in vhost '%s': routing_key_but_no_dlx_defined" % (q, vhost))
