"""x-dead-letter-strategy on quorum queues (issue #14), through pika, as RabbitMQ 3.10 does it:
at-least-once (with overflow reject-publish and a dead-letter exchange) keeps a dead letter in
its source queue until a queue bound to the dead-letter exchange takes it; a policy change on
the source makes the queue try again at once (RabbitMQ's own timer is 180 s). Without
reject-publish the strategy falls back to at-most-once. Counts are read from the management
API (MANAGEMENT_PORT), which RabbitMQ samples every 5 s."""
import base64
import json
import os
import time
import urllib.error
import urllib.request

import pika
import pytest

import helpers

QUORUM = {"x-queue-type": "quorum"}


def _api(method, path, body=None):
    port = os.environ.get("MANAGEMENT_PORT", "15672")
    req = urllib.request.Request("http://127.0.0.1:%s%s" % (port, path), method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            data = r.read()
            return r.status, json.loads(data) if data else None
    except urllib.error.HTTPError as e:
        data = e.read()
        return e.code, json.loads(data) if data else None


def _shown(q, **fields):
    """The management API's view of q once it shows fields (polled up to 20 s)."""
    deadline = time.monotonic() + 20
    while True:
        status, body = _api("GET", "/api/queues/%2F/" + q)
        if status == 200 and all(body.get(k) == v for k, v in fields.items()):
            return body
        assert time.monotonic() < deadline, "%s shows %s, expected %s" % (q, body, fields)
        time.sleep(0.2)


@pytest.fixture
def cleanup(conn):
    """Collects queues, exchanges and policies to delete at teardown."""
    made = {"queues": [], "exchanges": [], "policies": []}
    yield made
    for p in made["policies"]:
        _api("DELETE", "/api/policies/%2F/" + p)
    ch = conn.channel() if conn.is_open else None
    for q in made["queues"]:
        try:
            ch.queue_delete(q)
        except Exception:
            pass
    for x in made["exchanges"]:
        try:
            ch.exchange_delete(x)
        except Exception:
            pass


def _policy(cleanup, policy, q, definition):
    status, _ = _api("PUT", "/api/policies/%2F/" + policy,
                     {"pattern": "^%s$" % q, "apply-to": "queues", "definition": definition})
    assert status in (201, 204)
    if policy not in cleanup["policies"]:
        cleanup["policies"].append(policy)


def _source(ch, name, cleanup, **arguments):
    dlx = name("dls-dlx")
    ch.exchange_declare(dlx, "fanout")
    cleanup["exchanges"].append(dlx)
    q = helpers.declare_queue(ch, name("dls-src"), durable=True,
                              arguments=dict(QUORUM, **{"x-dead-letter-exchange": dlx},
                                             **arguments))
    cleanup["queues"].append(q)
    return q, dlx


def _reject_head(conn, ch, q, bodies):
    ch.confirm_delivery()
    for b in bodies:
        ch.basic_publish("", q, b)
    got = helpers.wait_until(lambda: ch.basic_get(q)[0], conn=conn, timeout=5.0)
    assert got is not None
    ch.basic_reject(got.delivery_tag, requeue=False)


def _get(ch, q):
    got = ch.basic_get(q, auto_ack=True)
    return got if got[0] is not None else None


def _bind_new_queue(ch, name, cleanup, dlx):
    dlq = helpers.declare_queue(ch, name("dls-dlq"), durable=True)
    cleanup["queues"].append(dlq)
    ch.queue_bind(dlq, dlx)
    return dlq


def test_an_at_least_once_dead_letter_waits_in_its_queue_until_it_can_go(conn, ch, name,
                                                                         cleanup):
    q, dlx = _source(ch, name, cleanup, **{"x-dead-letter-strategy": "at-least-once",
                                           "x-overflow": "reject-publish"})
    _reject_head(conn, ch, q, [b"dead", b"ready"])
    assert helpers.queue_counts(ch, q)[0] == 1
    _shown(q, messages=2, messages_ready=1, messages_dlx=1, message_bytes_dlx=4)
    assert ch.queue_purge(q).method.message_count == 1
    _shown(q, messages=1, messages_dlx=1)
    dlq = _bind_new_queue(ch, name, cleanup, dlx)
    helpers.settle(conn, 1.5)
    assert helpers.queue_counts(ch, dlq)[0] == 0
    _policy(cleanup, name("dls-pol"), q, {"max-length-bytes": 1000000})
    got = helpers.wait_until(lambda: _get(ch, dlq), conn=conn, timeout=5.0)
    assert got is not None, "nothing reached %s" % dlq
    method, props, body = got
    assert body == b"dead"
    assert props.headers["x-first-death-reason"] == "rejected"
    assert props.headers["x-first-death-queue"] == q
    _shown(q, messages=0, messages_dlx=0)


@pytest.mark.parametrize("overflow", [None, "drop-head", "reject-publish-dlx"])
def test_without_reject_publish_at_least_once_falls_back_to_at_most_once(conn, ch, name,
                                                                         cleanup, overflow):
    arguments = {"x-dead-letter-strategy": "at-least-once"}
    if overflow:
        arguments["x-overflow"] = overflow
    q, dlx = _source(ch, name, cleanup, **arguments)
    _reject_head(conn, ch, q, [b"gone"])
    _shown(q, messages=0, messages_dlx=0)
    dlq = _bind_new_queue(ch, name, cleanup, dlx)
    _policy(cleanup, name("dls-pol"), q, {"max-length-bytes": 1000000})
    helpers.settle(conn, 1.5)
    assert helpers.queue_counts(ch, dlq)[0] == 0


def test_held_dead_letters_count_against_the_length_limit(conn, ch, name, cleanup):
    q, _ = _source(ch, name, cleanup, **{"x-dead-letter-strategy": "at-least-once",
                                         "x-overflow": "reject-publish", "x-max-length": 2})
    _reject_head(conn, ch, q, [b"held"])
    confirmed = []
    for b in [b"a", b"b", b"c"]:
        try:
            ch.basic_publish("", q, b)
            confirmed.append(True)
        except pika.exceptions.NackError:
            confirmed.append(False)
    assert confirmed == [True, True, False]


def test_a_policy_turning_at_least_once_off_deletes_what_waits(conn, ch, name, cleanup):
    q, dlx = _source(ch, name, cleanup, **{"x-overflow": "reject-publish"})
    policy = name("dls-pol")
    _policy(cleanup, policy, q, {"dead-letter-strategy": "at-least-once"})
    helpers.settle(conn, 0.5)
    _reject_head(conn, ch, q, [b"held"])
    _shown(q, messages=1, messages_dlx=1)
    dlq = _bind_new_queue(ch, name, cleanup, dlx)
    _policy(cleanup, policy, q, {"dead-letter-strategy": "at-most-once"})
    _shown(q, messages=0, messages_dlx=0)
    _policy(cleanup, policy, q, {"dead-letter-strategy": "at-least-once"})
    helpers.settle(conn, 1.5)
    assert helpers.queue_counts(ch, dlq)[0] == 0


@pytest.mark.parametrize("arguments,reason", [
    (dict(QUORUM, **{"x-dead-letter-strategy": "bogus"}),
     "invalid arg 'x-dead-letter-strategy' for queue '%s' in vhost '/': invalid_dlx_strategy"),
    (dict(QUORUM, **{"x-dead-letter-strategy": 5}),
     "invalid arg 'x-dead-letter-strategy' for queue '%s' in vhost '/': "
     "{unacceptable_type,signedint}"),
    ({"x-dead-letter-strategy": "at-least-once"},
     "invalid arg 'x-dead-letter-strategy' for queue '%s' in vhost '/' of queue type "
     "rabbit_classic_queue"),
])
def test_x_dead_letter_strategy_is_refused_as_rabbitmq_refuses_it(conn, name, arguments, reason):
    q = name("dls-refused")
    code, text = helpers.expect_channel_error(conn.channel().queue_declare, q, durable=True,
                                              arguments=arguments)
    assert (code, text) == (406, "PRECONDITION_FAILED - " + reason % q)


def test_a_redeclare_compares_x_dead_letter_strategy(conn, ch, name, cleanup):
    q = helpers.declare_queue(ch, name("dls-redecl"), durable=True,
                              arguments=dict(QUORUM, **{"x-dead-letter-strategy": "at-least-once"}))
    cleanup["queues"].append(q)
    code, text = helpers.expect_channel_error(
        conn.channel().queue_declare, q, durable=True,
        arguments=dict(QUORUM, **{"x-dead-letter-strategy": "at-most-once"}))
    assert (code, text) == (406, "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-strategy' "
                                 "for queue '%s' in vhost '/': received 'at-most-once' but "
                                 "current is 'at-least-once'" % q)


def test_the_policy_key_is_validated(name):
    status, body = _api("PUT", "/api/policies/%2F/" + name("dls-bad"),
                        {"pattern": "^none$", "definition": {"dead-letter-strategy": "bogus"}})
    assert status == 400
    assert body["reason"] == ("Validation failed\n\n&lt;&lt;\"bogus\"&gt;&gt; is not a valid "
                              "dead letter strategy\n")
