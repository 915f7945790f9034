"""Tenancy: topic permissions. tn-perm has, on vhost tn-p and exchange
amq.topic, write "^{username}\\." and read "^{vhost}\\." (so routing keys it may
publish start "tn-perm.", keys it may bind start "tn-p."); publishing and
binding are refused with 403 and RabbitMQ's topic text. Topic permissions
only concern the exchange they name."""
import uuid

import pytest

import helpers
import tenancy

VHOST = "tn-p"
USER = "tn-perm"


def topic_refused(routing_key, exchange="amq.topic"):
    return (403, tenancy.topic_refused(routing_key, exchange, VHOST, USER))


@pytest.fixture
def conn(tconnect):
    return tconnect(USER, VHOST)


@pytest.fixture
def queue(conn):
    ch = conn.channel()
    q = "p-cwr-%s" % uuid.uuid4().hex[:10]
    ch.queue_declare(q)
    yield q
    if conn.is_open:
        conn.channel().queue_delete(q)


def test_publish_with_allowed_routing_key(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish("amq.topic", "tn-perm.orders", b"x")  # acked, unroutable
    helpers.sync(ch)
    assert ch.is_open


@pytest.mark.parametrize("routing_key", ["other.orders", "tn-p.orders", "tn-perm"])
def test_publish_with_refused_routing_key_is_403(conn, routing_key):
    ch = conn.channel()
    ch.basic_publish("amq.topic", routing_key, b"x")
    assert helpers.expect_channel_error(helpers.sync, ch) == topic_refused(routing_key)


def test_bind_with_allowed_routing_key_then_routes(conn, queue, tconnect):
    ch = conn.channel()
    ch.queue_bind(queue, "amq.topic", "tn-p.#")
    # tn-perm may not publish tn-p.* keys; tn-admin (no topic permissions) may
    admin = tconnect("tn-admin", VHOST).channel()
    admin.basic_publish("amq.topic", "tn-p.a", b"routed")
    assert helpers.wait_until(lambda: helpers.queue_counts(ch, queue)[0] == 1)
    assert ch.basic_get(queue, auto_ack=True)[2] == b"routed"
    ch.queue_unbind(queue, "amq.topic", "tn-p.#")


@pytest.mark.parametrize("routing_key", ["tn-perm.#", "#", "x.tn-p.y"])
def test_bind_with_refused_routing_key_is_403(conn, queue, routing_key):
    ch = conn.channel()
    code, text = helpers.expect_channel_error(ch.queue_bind, queue, "amq.topic",
                                              routing_key)
    assert (code, text) == topic_refused(routing_key)


def test_unbind_with_refused_routing_key_is_403(conn, queue, tconnect):
    admin = tconnect("tn-admin", VHOST).channel()
    admin.queue_bind(queue, "amq.topic", "tn-perm.x")
    ch = conn.channel()
    code, text = helpers.expect_channel_error(ch.queue_unbind, queue, "amq.topic",
                                              "tn-perm.x")
    assert (code, text) == topic_refused("tn-perm.x")
    admin.queue_unbind(queue, "amq.topic", "tn-perm.x")


def test_topic_permissions_only_concern_their_exchange(conn, queue):
    ch = conn.channel()
    x = "p-cwr-%s" % uuid.uuid4().hex[:10]
    ch.exchange_declare(x, "topic")
    ch.queue_bind(queue, x, "anything.#")
    ch.basic_publish(x, "anything.goes", b"free")
    assert ch.basic_get(queue, auto_ack=True)[2] == b"free"
    ch.exchange_delete(x)


def test_users_without_topic_permissions_are_not_restricted(tconnect):
    ch = tconnect("tn-alice", "tn-a").channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, "amq.topic", "#")
    ch.basic_publish("amq.topic", "any.key", b"x")
    assert ch.basic_get(q, auto_ack=True)[2] == b"x"


def test_topic_permissions_on_a_non_topic_exchange_are_ignored(conn, queue):
    # tn-perm may write/read only "^never$" on p-cwr-direct-fixed, a direct
    # exchange (tenancy_definitions.json): topic permissions only apply to
    # topic exchanges
    ch = conn.channel()
    ch.queue_bind(queue, "p-cwr-direct-fixed", "some.key")
    ch.basic_publish("p-cwr-direct-fixed", "some.key", b"direct")
    assert ch.basic_get(queue, auto_ack=True)[2] == b"direct"
    ch.queue_unbind(queue, "p-cwr-direct-fixed", "some.key")


def test_bind_missing_queue_with_refused_routing_key_is_403(conn):
    q = "p-cw--%s" % uuid.uuid4().hex[:10]
    ch = conn.channel()
    code, text = helpers.expect_channel_error(ch.queue_bind, q, "amq.topic", "other.#")
    assert (code, text) == topic_refused("other.#")


def test_publish_refused_exchange_comes_before_topic(tconnect):
    # tn-empty (no write anywhere, topic permissions "^never$" on amq.topic in
    # tn-a) publishing to amq.topic: the exchange check comes first
    ch = tconnect("tn-empty", "tn-a").channel()
    ch.basic_publish("amq.topic", "k", b"x")
    assert helpers.expect_channel_error(helpers.sync, ch) == (
        403, tenancy.refused("exchange", "amq.topic", "tn-a", "tn-empty"))


def test_exchange_bind_from_topic_exchange_checks_the_routing_key(conn):
    ch = conn.channel()
    dest = "p-cw--%s" % uuid.uuid4().hex[:10]
    ch.exchange_declare(dest, "fanout")
    ch.exchange_bind(destination=dest, source="amq.topic", routing_key="tn-p.#")
    ch.exchange_unbind(destination=dest, source="amq.topic", routing_key="tn-p.#")
    code, text = helpers.expect_channel_error(
        conn.channel().exchange_bind, destination=dest, source="amq.topic",
        routing_key="tn-perm.#")
    assert (code, text) == topic_refused("tn-perm.#")
    conn.channel().exchange_delete(dest)
