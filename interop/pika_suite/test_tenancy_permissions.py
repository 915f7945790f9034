"""Tenancy: configure/write/read permissions, checked where RabbitMQ 3.10's
rabbit_channel checks them, refused with 403 ACCESS_REFUSED and RabbitMQ's
text.

User tn-perm on vhost tn-p has (tenancy_definitions.json)
    configure "^p-c"   write "^p-.w|^amq\\.topic$"   read "^p-..r|^amq\\.topic$"
so a name's three flag characters say what tn-perm may do with it:
pn("cw-") -> "p-cw--<hex>" may be configured and written, not read.
tn-admin has ".*" on tn-p and makes resources tn-perm has no rights on.
"""
import re
import uuid

import pika
import pytest

import helpers
import tenancy

VHOST = "tn-p"
USER = "tn-perm"


def pn(flags):
    assert len(flags) == 3
    return "p-%s-%s" % (flags, uuid.uuid4().hex[:10])


def zn():
    """A name tn-perm has no permission on at all."""
    return "z-%s" % uuid.uuid4().hex[:10]


def refused(kind, name):
    return (403, tenancy.refused(kind, name, VHOST, USER))


@pytest.fixture
def conn(tconnect):
    return tconnect(USER, VHOST)


@pytest.fixture
def admin(tconnect):
    return tconnect("tn-admin", VHOST).channel()


def channel_error(conn, method, *args, **kwargs):
    """Call method on a fresh channel of conn, expecting a channel error."""
    ch = conn.channel()
    return helpers.expect_channel_error(getattr(ch, method), *args, **kwargs)


def publish_error(conn, exchange, routing_key, **kwargs):
    ch = conn.channel()
    ch.basic_publish(exchange, routing_key, b"x", **kwargs)
    return helpers.expect_channel_error(helpers.sync, ch)


# ---------------------------------------------------------------- declare ----
def test_queue_declare_needs_configure(conn):
    ch = conn.channel()
    for flags in ("c--", "cwr"):
        q = pn(flags)
        assert ch.queue_declare(q).method.queue == q
        ch.queue_delete(q)
    for flags in ("-wr", "---"):
        q = pn(flags)
        assert channel_error(conn, "queue_declare", q) == refused("queue", q)


def test_refused_queue_declare_creates_nothing(conn, admin):
    q = zn()
    assert channel_error(conn, "queue_declare", q, durable=True) == refused("queue", q)
    code, _ = helpers.expect_channel_error(admin.queue_declare, q, passive=True)
    assert code == 404


def test_server_named_queue_is_checked_under_its_generated_name(conn):
    code, text = channel_error(conn, "queue_declare", "", exclusive=True)
    assert code == 403
    assert re.fullmatch(r"ACCESS_REFUSED - access to queue 'amq\.gen-[A-Za-z0-9_-]{22}' "
                        r"in vhost 'tn-p' refused for user 'tn-perm'", text), text


def test_server_named_queue_allowed_with_configure_on_amq_gen(tconnect):
    ch = tconnect("tn-alice", "tn-a").channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    assert q.startswith("amq.gen-")


def test_passive_declares_need_no_permission(conn, admin):
    q, x = zn(), zn()
    admin.queue_declare(q)
    admin.exchange_declare(x, "topic")
    admin.basic_publish("", q, b"1")
    ch = conn.channel()
    assert helpers.counts_eventually(ch, q, (1, 0)) == (1, 0)
    ch.exchange_declare(x, passive=True)
    # and a missing one is 404, not 403
    missing = zn()
    code, text = helpers.expect_channel_error(ch.queue_declare, missing, passive=True)
    assert (code, text) == (404, "NOT_FOUND - no queue '%s' in vhost 'tn-p'" % missing)
    admin.queue_delete(q)
    admin.exchange_delete(x)


def test_redeclaring_existing_queue_still_needs_configure(conn, admin):
    q = zn()
    admin.queue_declare(q)
    assert channel_error(conn, "queue_declare", q) == refused("queue", q)
    admin.queue_delete(q)


def test_exchange_declare_needs_configure(conn):
    ch = conn.channel()
    x = pn("c--")
    ch.exchange_declare(x, "direct")
    ch.exchange_delete(x)
    x = pn("-wr")
    assert channel_error(conn, "exchange_declare", x, "direct") == refused("exchange", x)


def test_alternate_exchange_needs_read_on_exchange_and_write_on_ae(conn):
    ch = conn.channel()
    x, ae = pn("c-r"), pn("-w-")
    ch.exchange_declare(x, "direct", arguments={"alternate-exchange": ae})
    ch.exchange_delete(x)
    x = pn("c--")
    assert channel_error(conn, "exchange_declare", x, "direct",
                         arguments={"alternate-exchange": ae}) == refused("exchange", x)
    x, ae = pn("c-r"), pn("c-r")
    assert channel_error(conn, "exchange_declare", x, "direct",
                         arguments={"alternate-exchange": ae}) == refused("exchange", ae)


# ----------------------------------------------------------------- delete ----
def test_queue_delete_needs_configure(conn, admin):
    ch = conn.channel()
    q = pn("c--")
    ch.queue_declare(q)
    ch.queue_delete(q)
    q = zn()
    admin.queue_declare(q)
    assert channel_error(conn, "queue_delete", q) == refused("queue", q)
    admin.queue_declare(q, passive=True)  # still there
    admin.queue_delete(q)
    # checked before the queue is looked up
    missing = zn()
    assert channel_error(conn, "queue_delete", missing) == refused("queue", missing)


def test_exchange_delete_needs_configure(conn, admin):
    ch = conn.channel()
    x = pn("c--")
    ch.exchange_declare(x, "fanout")
    ch.exchange_delete(x)
    x = zn()
    admin.exchange_declare(x, "fanout")
    assert channel_error(conn, "exchange_delete", x) == refused("exchange", x)
    admin.exchange_declare(x, passive=True)  # still there
    admin.exchange_delete(x)


# ------------------------------------------------------------------- bind ----
@pytest.fixture
def declared(conn):
    """declared(kind, flags) -> a queue or direct exchange tn-perm declared."""
    ch = conn.channel()
    made = []

    def make(kind, flags):
        n = pn(flags)
        if kind == "queue":
            ch.queue_declare(n)
        else:
            ch.exchange_declare(n, "direct")
        made.append((kind, n))
        return n

    yield make
    if ch.is_open:
        for kind, n in made:
            (ch.queue_delete if kind == "queue" else ch.exchange_delete)(n)


def test_queue_bind_needs_write_on_queue_and_read_on_exchange(conn, declared):
    ch = conn.channel()
    q, x = declared("queue", "cw-"), declared("exchange", "c-r")
    ch.queue_bind(q, x, "k")
    ch.queue_unbind(q, x, "k")
    q2 = declared("queue", "c-r")
    assert channel_error(conn, "queue_bind", q2, x, "k") == refused("queue", q2)
    x2 = declared("exchange", "cw-")
    assert channel_error(conn, "queue_bind", q, x2, "k") == refused("exchange", x2)


def test_queue_bind_checks_the_queue_before_the_exchange(conn, declared):
    q, x = declared("queue", "c--"), declared("exchange", "c--")
    assert channel_error(conn, "queue_bind", q, x, "k") == refused("queue", q)


def test_queue_unbind_needs_write_on_queue_and_read_on_exchange(conn, declared, admin):
    q, x = declared("queue", "cwr"), declared("exchange", "cwr")
    admin.queue_bind(q, x, "k")
    q2, x2 = declared("queue", "c-r"), declared("exchange", "cw-")
    admin.queue_bind(q2, x, "k")
    admin.queue_bind(q, x2, "k")
    assert channel_error(conn, "queue_unbind", q2, x, "k") == refused("queue", q2)
    assert channel_error(conn, "queue_unbind", q, x2, "k") == refused("exchange", x2)
    conn.channel().queue_unbind(q, x, "k")


def test_exchange_bind_needs_write_on_destination_and_read_on_source(conn, declared):
    ch = conn.channel()
    dest, src = declared("exchange", "cw-"), declared("exchange", "c-r")
    ch.exchange_bind(destination=dest, source=src, routing_key="k")
    ch.exchange_unbind(destination=dest, source=src, routing_key="k")
    dest2 = declared("exchange", "c-r")
    assert channel_error(conn, "exchange_bind", destination=dest2, source=src,
                         routing_key="k") == refused("exchange", dest2)
    src2 = declared("exchange", "cw-")
    assert channel_error(conn, "exchange_bind", destination=dest, source=src2,
                         routing_key="k") == refused("exchange", src2)


# ---------------------------------------------------------------- publish ----
def test_publish_needs_write_on_exchange(conn, declared, admin):
    x, q = declared("exchange", "cw-"), declared("queue", "cwr")
    admin.queue_bind(q, x, "k")
    ch = conn.channel()
    ch.basic_publish(x, "k", b"allowed")
    assert ch.basic_get(q, auto_ack=True)[2] == b"allowed"
    x2 = declared("exchange", "c-r")
    assert publish_error(conn, x2, "k") == refused("exchange", x2)


def test_publish_to_default_exchange_is_checked_as_amq_default(conn, declared):
    q = declared("queue", "cwr")
    assert publish_error(conn, "", q) == refused("exchange", "amq.default")


def test_publish_permission_is_checked_before_the_exchange_exists(conn):
    x = zn()
    assert publish_error(conn, x, "k") == refused("exchange", x)
    # with write permission, a missing exchange is 404
    x = pn("-w-")
    assert publish_error(conn, x, "k") == (
        404, "NOT_FOUND - no exchange '%s' in vhost 'tn-p'" % x)


def test_publish_in_confirm_mode_refused_closes_channel(conn, declared):
    x = declared("exchange", "c--")
    ch = conn.channel()
    ch.confirm_delivery()
    code, text = helpers.expect_channel_error(ch.basic_publish, x, "k", b"x")
    assert (code, text) == refused("exchange", x)


# ------------------------------------------------------- consume / get / purge ----
def test_basic_get_needs_read(conn, declared, admin):
    q = declared("queue", "c-r")
    admin.basic_publish("", q, b"m")
    ch = conn.channel()
    assert helpers.wait_until(lambda: ch.basic_get(q, auto_ack=True)[2] == b"m")
    q2 = declared("queue", "cw-")
    assert channel_error(conn, "basic_get", q2) == refused("queue", q2)


def test_basic_consume_needs_read(conn, declared, admin):
    q = declared("queue", "c-r")
    ch = conn.channel()
    got = helpers.Collector()
    tag = ch.basic_consume(q, got, auto_ack=True)
    admin.basic_publish("", q, b"m")
    got.wait(conn, 1)
    assert got.bodies == [b"m"]
    ch.basic_cancel(tag)
    q2 = declared("queue", "cw-")
    assert channel_error(conn, "basic_consume", q2, got) == refused("queue", q2)


def test_queue_purge_needs_read(conn, declared, admin):
    q = declared("queue", "c-r")
    admin.basic_publish("", q, b"m")
    ch = conn.channel()
    helpers.counts_eventually(ch, q, (1, 0))
    assert ch.queue_purge(q).method.message_count == 1
    q2 = declared("queue", "cw-")
    assert channel_error(conn, "queue_purge", q2) == refused("queue", q2)


# ------------------------------------------------------------ dead letters ----
def test_dead_letter_exchange_needs_write_on_dlx_and_read_on_queue(conn):
    ch = conn.channel()
    q, dlx = pn("c-r"), pn("-w-")  # the DLX need not exist
    ch.queue_declare(q, arguments={"x-dead-letter-exchange": dlx})
    ch.queue_delete(q)
    q, dlx = pn("c-r"), pn("c-r")
    assert channel_error(conn, "queue_declare", q, arguments={
        "x-dead-letter-exchange": dlx}) == refused("exchange", dlx)
    q, dlx = pn("c--"), pn("-w-")
    assert channel_error(conn, "queue_declare", q, arguments={
        "x-dead-letter-exchange": dlx}) == refused("queue", q)


def test_dead_letter_to_default_exchange_needs_write_on_amq_default(conn):
    q = pn("c-r")
    assert channel_error(conn, "queue_declare", q, arguments={
        "x-dead-letter-exchange": ""}) == refused("exchange", "amq.default")


def test_dead_letter_exchange_is_only_checked_for_a_new_queue(conn, admin):
    ch = conn.channel()
    q, dlx = pn("c--"), zn()
    args = {"x-dead-letter-exchange": dlx}
    admin.queue_declare(q, arguments=args)
    assert ch.queue_declare(q, arguments=args).method.queue == q
    ch.queue_delete(q)


def test_empty_queue_name_is_checked_as_the_last_declared_queue(conn, declared):
    ch = conn.channel()
    q = pn("c--")
    ch.queue_declare(q)
    code, text = helpers.expect_channel_error(ch.basic_get, "")
    assert (code, text) == refused("queue", q)
    conn.channel().queue_delete(q)


# ------------------------------------------------- what comes before the check ----
def test_queue_with_reserved_name_is_refused_before_permissions(conn):
    # RabbitMQ checks a new queue's name before configure; exchanges the other way
    assert channel_error(conn, "queue_declare", "amq.tn-q") == (
        403, "ACCESS_REFUSED - queue name 'amq.tn-q' contains reserved prefix 'amq.*'")


def test_exchange_with_reserved_name_is_refused_after_permissions(conn, admin):
    assert channel_error(conn, "exchange_declare", "amq.tn-x", "direct") == refused(
        "exchange", "amq.tn-x")
    code, text = helpers.expect_channel_error(admin.exchange_declare, "amq.tn-x", "direct")
    assert (code, text) == (
        403, "ACCESS_REFUSED - exchange name 'amq.tn-x' contains reserved prefix 'amq.*'")


def test_redeclaring_amq_exchange_needs_configure(conn, admin):
    assert channel_error(conn, "exchange_declare", "amq.direct", "direct",
                         durable=True) == refused("exchange", "amq.direct")
    admin.exchange_declare("amq.direct", "direct", durable=True)


def test_deleting_amq_exchange_is_refused_before_permissions(conn):
    assert channel_error(conn, "exchange_delete", "amq.direct") == (
        403, "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost 'tn-p' "
             "not allowed")


@pytest.mark.parametrize("method,args", [
    ("exchange_declare", ("", "direct")),
    ("exchange_delete", ("",)),
])
def test_default_exchange_is_refused_before_permissions(conn, method, args):
    assert channel_error(conn, method, *args) == (
        403, "ACCESS_REFUSED - operation not permitted on the default exchange")


def test_binding_to_default_exchange_checks_the_queue_first(conn, declared):
    q = declared("queue", "c-r")
    assert channel_error(conn, "queue_bind", q, "", "k") == refused("queue", q)
    q = declared("queue", "cw-")
    assert channel_error(conn, "queue_bind", q, "", "k") == (
        403, "ACCESS_REFUSED - operation not permitted on the default exchange")


def test_exchange_bind_with_default_destination_is_checked_as_amq_default(conn, declared):
    src = declared("exchange", "c-r")
    assert channel_error(conn, "exchange_bind", destination="", source=src,
                         routing_key="k") == refused("exchange", "amq.default")


@pytest.mark.parametrize("method", ["basic_get", "queue_purge", "queue_delete"])
def test_missing_queue_without_permission_is_403_not_404(conn, method):
    q = zn()
    assert channel_error(conn, method, q) == refused("queue", q)


def test_consume_from_missing_queue_without_permission_is_403(conn):
    q = zn()
    assert channel_error(conn, "basic_consume", q, helpers.Collector()) == refused("queue", q)
    q = pn("c-r")
    assert channel_error(conn, "basic_consume", q, helpers.Collector()) == (
        404, "NOT_FOUND - no queue '%s' in vhost 'tn-p'" % q)


def test_bind_missing_queue_is_403_without_write_and_404_with(conn, declared):
    x = declared("exchange", "c-r")
    q = zn()
    assert channel_error(conn, "queue_bind", q, x, "k") == refused("queue", q)
    q = pn("-w-")
    assert channel_error(conn, "queue_bind", q, x, "k") == (
        404, "NOT_FOUND - no queue '%s' in vhost 'tn-p'" % q)


def test_publish_to_internal_exchange_is_refused_before_topic_permissions(conn):
    # p-cwr-internal-topic (tenancy_definitions.json) is an internal topic
    # exchange on which tn-perm may publish no routing key: RabbitMQ looks at
    # internal first
    assert publish_error(conn, "p-cwr-internal-topic", "k") == (
        403, "ACCESS_REFUSED - cannot publish to internal exchange "
             "'p-cwr-internal-topic' in vhost 'tn-p'")


# ------------------------------------------------------------ queue limit ----
def test_queue_limit_comes_after_configure_and_before_dead_letter_checks(tconnect):
    # tn-perm on tn-noq (max-queues 0): configure "^p-", write "", read ".*"
    c = tconnect(USER, "tn-noq")
    q = zn()
    code, text = helpers.expect_channel_error(c.channel().queue_declare, q)
    assert (code, text) == (403, tenancy.refused("queue", q, "tn-noq", USER))
    q = pn("---")
    code, text = helpers.expect_channel_error(
        c.channel().queue_declare, q, arguments={"x-dead-letter-exchange": "dlx"})
    assert (code, text) == (406, "PRECONDITION_FAILED - cannot declare queue '%s': "
                                 "queue limit in vhost 'tn-noq' (0) is reached" % q)


# ------------------------------------------------------ PCRE expressions ----
@pytest.fixture
def la(tconnect):
    """tn-lookahead on tn-a: configure "^(?!amq\\.)(?!tn-la-no-)",
    write "^(?!amq\\.).*", read ".*" (PCRE look-ahead, as RabbitMQ matches)."""
    return tconnect("tn-lookahead", "tn-a")


def test_look_ahead_permissions_allow_and_refuse(la):
    ch = la.channel()
    q = "tn-la-yes-%s" % uuid.uuid4().hex[:8]
    ch.queue_declare(q, exclusive=True)
    x = "tn-la-yes-%s" % uuid.uuid4().hex[:8]
    ch.exchange_declare(x, "fanout", auto_delete=True)
    ch.queue_bind(q, x)
    ch.basic_publish(x, "", b"via look-ahead")
    assert ch.basic_get(q, auto_ack=True)[2] == b"via look-ahead"
    ch.exchange_delete(x)
    bad = "tn-la-no-%s" % uuid.uuid4().hex[:8]
    code, text = helpers.expect_channel_error(la.channel().queue_declare, bad)
    assert (code, text) == (403, tenancy.refused("queue", bad, "tn-a", "tn-lookahead"))
    code, text = helpers.expect_channel_error(la.channel().exchange_declare,
                                              "amq.tn-la", "direct")
    assert (code, text) == (403, tenancy.refused("exchange", "amq.tn-la", "tn-a",
                                                 "tn-lookahead"))
    ch = la.channel()
    ch.basic_publish("", q, b"x")
    code, text = helpers.expect_channel_error(helpers.sync, ch)
    assert (code, text) == (403, tenancy.refused("exchange", "amq.default", "tn-a",
                                                 "tn-lookahead"))


# ------------------------------------------------------- direct reply-to ----
def test_direct_reply_to_needs_no_read_and_replies_need_write_on_the_default_exchange(
        conn, admin):
    """RabbitMQ 3.10 consumes amq.rabbitmq.reply-to without a read check (tn-perm
    may read nothing by that name); the reply goes through the default exchange,
    which takes write on amq.default (tn-admin has it, tn-perm has not)."""
    requests = pn("---")
    key = "tn-perm." + requests  # tn-perm's topic permission: ^{username}\\.
    admin.queue_declare(requests, exclusive=True)
    admin.queue_bind(requests, "amq.topic", routing_key=key)
    ch = conn.channel()
    replies = []
    ch.basic_consume("amq.rabbitmq.reply-to",
                     lambda c, m, p, body: replies.append(body), auto_ack=True)
    ch.basic_publish("amq.topic", key, b"ping",
                     pika.BasicProperties(reply_to="amq.rabbitmq.reply-to"))
    method = props = None
    for _ in range(50):
        method, props, _ = admin.basic_get(requests, auto_ack=True)
        if method:
            break
        admin.connection.sleep(0.05)
    assert method, "the request never arrived"
    assert props.reply_to.startswith("amq.rabbitmq.reply-to.")
    admin.basic_publish("", props.reply_to, b"pong")
    for _ in range(50):
        if replies:
            break
        conn.process_data_events(0.05)
    assert replies == [b"pong"]
    # tn-perm itself may not reply: that is a publish to the default exchange.
    assert publish_error(conn, "", props.reply_to) == refused("exchange", "amq.default")
