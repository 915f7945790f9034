"""Tenancy: users log into their vhosts, vhosts are separate namespaces, and
connection.open refuses users without permissions on the vhost and unknown
vhosts with RabbitMQ's 530 texts. Users, vhosts and permissions come from
tenancy_definitions.json (see tenancy.py)."""
import pika
import pytest
from pika import exceptions as exc

import helpers
import tenancy


def test_user_logs_into_its_vhost_and_declares_publishes_gets(tconnect, name):
    ch = tconnect("tn-alice", "tn-a").channel()
    q = ch.queue_declare(name("q")).method.queue
    ch.basic_publish("", q, b"hello tenant")
    m, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"hello tenant"
    assert m.routing_key == q
    ch.queue_delete(q)


def test_sha512_hashed_user_logs_in(tconnect, name):
    # tn-bob's password_hash is rabbit_password_hashing_sha512
    ch = tconnect("tn-bob", "tn-b").channel()
    q = ch.queue_declare(name("q"), exclusive=True).method.queue
    ch.basic_publish("", q, b"x")
    assert ch.basic_get(q, auto_ack=True)[2] == b"x"


@pytest.mark.parametrize("user", ["tn-alice", "tn-bob"])
def test_imported_user_with_wrong_password_is_refused_403(tenant_broker, user):
    p = tenant_broker.params(user, "tn-b", password="not-the-password")
    with pytest.raises(exc.ProbableAuthenticationError) as ei:
        pika.BlockingConnection(p)
    assert tenancy.closed_with(
        403, "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
             "For details see the broker logfile.") in str(ei.value)


def test_user_without_password_cannot_log_in_with_one(tenant_broker):
    # tn-nopass has password_hash "" (EXTERNAL-only in RabbitMQ terms)
    for password in ("", "anything"):
        p = tenant_broker.params("tn-nopass", "tn-a", password=password)
        with pytest.raises(exc.ProbableAuthenticationError) as ei:
            pika.BlockingConnection(p)
        assert tenancy.closed_with(
            403, "ACCESS_REFUSED - Login was refused using authentication mechanism "
                 "PLAIN. For details see the broker logfile.") in str(ei.value)


def test_same_queue_name_in_two_vhosts_is_two_queues(tconnect, name):
    a = tconnect("tn-alice", "tn-a").channel()
    b = tconnect("tn-alice", "tn-b").channel()
    q = name("shared")
    a.queue_declare(q)
    b.queue_declare(q, arguments={"x-max-length": 5})  # other arguments: no 406
    a.basic_publish("", q, b"a1")
    a.basic_publish("", q, b"a2")
    b.basic_publish("", q, b"b1")
    assert helpers.counts_eventually(a, q, (2, 0)) == (2, 0)
    assert helpers.counts_eventually(b, q, (1, 0)) == (1, 0)
    assert b.basic_get(q, auto_ack=True)[2] == b"b1"
    # deleting it in tn-b leaves tn-a's
    b.queue_delete(q)
    code, text = helpers.expect_channel_error(b.queue_declare, q, passive=True)
    assert (code, text) == (404, "NOT_FOUND - no queue '%s' in vhost 'tn-b'" % q)
    assert [x[2] for x in helpers.get_all(a, q)] == [b"a1", b"a2"]
    a.queue_delete(q)


def test_other_user_sees_the_vhosts_queues(tconnect, name):
    q = name("q")
    alice = tconnect("tn-alice", "tn-b").channel()
    alice.queue_declare(q, auto_delete=False)
    alice.basic_publish("", q, b"from alice")
    bob = tconnect("tn-bob", "tn-b").channel()
    assert bob.basic_get(q, auto_ack=True)[2] == b"from alice"
    bob.queue_delete(q)


def test_exchanges_are_per_vhost(tconnect, name):
    x = name("x")
    a = tconnect("tn-alice", "tn-a").channel()
    a.exchange_declare(x, "fanout")
    b = tconnect("tn-alice", "tn-b").channel()
    code, text = helpers.expect_channel_error(b.exchange_declare, x, passive=True)
    assert (code, text) == (404, "NOT_FOUND - no exchange '%s' in vhost 'tn-b'" % x)
    a.exchange_delete(x)


def test_definitions_topology_was_imported(tconnect):
    # tenancy_definitions.json declares tn-imported-x -> tn-imported-q (key k)
    # in tn-b, with x-max-length 10 on the queue.
    ch = tconnect("tn-bob", "tn-b").channel()
    ch.queue_declare("tn-imported-q", passive=True)
    ch.queue_purge("tn-imported-q")
    ch.basic_publish("tn-imported-x", "k", b"routed by imported binding")
    assert ch.basic_get("tn-imported-q", auto_ack=True)[2] == b"routed by imported binding"
    # redeclaring with the imported arguments is equivalent
    ch.queue_declare("tn-imported-q", durable=True, arguments={"x-max-length": 10})
    code, text = helpers.expect_channel_error(
        ch.queue_declare, "tn-imported-q", durable=True, arguments={"x-max-length": 11})
    assert code == 406
    assert text == ("PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue "
                    "'tn-imported-q' in vhost 'tn-b': received '11' but current is '10'")


@pytest.mark.parametrize("user,vhost", [
    ("tn-bob", "tn-a"),
    ("tn-perm", "tn-a"),
    ("tn-admin", "tn-b"),  # the administrator tag grants no vhost access
])
def test_user_without_permissions_on_vhost_is_refused_530(tconnect, user, vhost):
    msg = tenancy.open_refused(tconnect, user, vhost)
    assert tenancy.closed_with(
        530, "NOT_ALLOWED - access to vhost '%s' refused for user '%s'" % (vhost, user)) in msg


def test_unknown_vhost_is_refused_530(tconnect):
    msg = tenancy.open_refused(tconnect, "tn-alice", "tn-no-such-vhost")
    assert tenancy.closed_with(530, "NOT_ALLOWED - vhost tn-no-such-vhost not found") in msg


def test_empty_permissions_grant_the_vhost_but_nothing_in_it(tconnect, name):
    # tn-empty has permissions "" "" "" on tn-a: the vhost opens, every
    # resource check fails ("" matches nothing)
    c = tconnect("tn-empty", "tn-a")
    q = name("q")
    code, text = helpers.expect_channel_error(c.channel().queue_declare, q)
    assert (code, text) == (403, tenancy.refused("queue", q, "tn-a", "tn-empty"))
    ch = c.channel()
    ch.basic_publish("", "whatever", b"x")
    code, text = helpers.expect_channel_error(helpers.sync, ch)
    assert (code, text) == (403, tenancy.refused("exchange", "amq.default", "tn-a",
                                                 "tn-empty"))
    # passive declares need no permission
    c.channel().exchange_declare("amq.direct", passive=True)
