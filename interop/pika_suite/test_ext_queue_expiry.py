"""Queue expiry (x-expires), as RabbitMQ 3.10. Any use (consumer, basic.get,
passive or full declare) restarts the timer, so these tests sleep instead of
polling."""
import time

import pytest

import helpers


def _expiring(ch, name, ms):
    return helpers.declare_queue(ch, name("qexp"), arguments={"x-expires": ms})


def test_unused_queue_is_deleted(ch, name, params):
    q = _expiring(ch, name, 300)
    time.sleep(1.2)
    assert not helpers.queue_exists(params, q)


def test_queue_with_messages_expires_too(ch, name, params):
    q = _expiring(ch, name, 300)
    for _ in range(3):
        ch.basic_publish("", q, b"m")
    time.sleep(1.2)
    assert not helpers.queue_exists(params, q)


def test_passive_declare_after_expiry_is_404(ch, name, vhost):
    q = _expiring(ch, name, 200)
    time.sleep(1.0)
    code, text = helpers.expect_channel_error(ch.queue_declare, q, passive=True)
    assert code == 404
    assert text == "NOT_FOUND - no queue '%s' in vhost '%s'" % (q, vhost)


def test_consumer_keeps_queue_alive(conn, ch, name, params):
    q = _expiring(ch, name, 300)
    tag = ch.basic_consume(q, lambda *a: None)
    time.sleep(1.0)
    assert helpers.queue_exists(params, q)
    ch.basic_cancel(tag)
    time.sleep(1.2)
    assert not helpers.queue_exists(params, q)


@pytest.mark.parametrize("use", ["redeclare", "get"])
def test_use_restarts_the_timer(ch, name, params, use):
    q = _expiring(ch, name, 800)
    for _ in range(4):
        time.sleep(0.4)
        if use == "redeclare":
            ch.queue_declare(q, arguments={"x-expires": 800})
        else:
            assert ch.basic_get(q)[0] is None
    time.sleep(0.2)
    assert helpers.queue_exists(params, q)
    time.sleep(2.0)
    assert not helpers.queue_exists(params, q)


@pytest.mark.parametrize("value,reason", [(0, "{value_zero,0}"), (-1, "{value_negative,-1}")])
def test_invalid_x_expires_is_406(ch, name, vhost, value, reason):
    q = name("qexp")
    code, text = helpers.expect_channel_error(ch.queue_declare, q, arguments={"x-expires": value})
    assert code == 406
    assert text == ("PRECONDITION_FAILED - invalid arg 'x-expires' for queue '%s' in vhost '%s': %s"
                    % (q, vhost, reason))
