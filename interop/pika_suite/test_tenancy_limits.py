"""Tenancy: vhost limits (max-connections, max-queues) and user limits
(max-connections, max-channels), refused with RabbitMQ's codes and texts.

tenancy_definitions.json: vhost tn-maxconn max-connections 2, tn-closed
max-connections 0, tn-maxq max-queues 3, tn-noq max-queues 0; user tn-conn2
max-connections 2, tn-conn0 max-connections 0, tn-chan2 max-channels 2. Each
test has its own vhost or user, so counts are not shared between tests.

RabbitMQ counts connections and channels asynchronously (from events), so
the tests wait a moment (tenancy.wait_tracked) after opening or closing one
before relying on the count.
"""

import helpers
import tenancy
from tenancy import closed_with


def vhost_limit_text(vhost, user, limit):
    return ("NOT_ALLOWED - access to vhost '%s' refused for user '%s': "
            "connection limit (%d) is reached" % (vhost, user, limit))


def user_limit_text(user, limit):
    return ("NOT_ALLOWED - connection refused for user '%s': "
            "user connection limit (%d) is reached" % (user, limit))


def queue_limit(queue, vhost, limit):
    return (406, "PRECONDITION_FAILED - cannot declare queue '%s': "
                 "queue limit in vhost '%s' (%d) is reached" % (queue, vhost, limit))


# ----------------------------------------------------------- connections ----
def test_vhost_max_connections(tconnect):
    first = tconnect("tn-alice", "tn-maxconn")
    tenancy.wait_tracked()
    tconnect("tn-alice", "tn-maxconn")
    tenancy.wait_tracked()
    msg = tenancy.open_refused(tconnect, "tn-alice", "tn-maxconn")
    assert closed_with(530, vhost_limit_text("tn-maxconn", "tn-alice", 2)) in msg
    # the limit is checked before the user's access to the vhost
    msg = tenancy.open_refused(tconnect, "tn-perm", "tn-maxconn")
    assert closed_with(530, vhost_limit_text("tn-maxconn", "tn-perm", 2)) in msg
    # other vhosts are not affected
    tconnect("tn-alice", "tn-a").channel()
    # a closed connection frees its place
    first.close()
    tenancy.wait_tracked()
    c = tenancy.eventually_connect(tconnect, "tn-alice", "tn-maxconn")
    c.channel().exchange_declare("amq.direct", passive=True)


def test_vhost_max_connections_zero_refuses_all(tconnect):
    msg = tenancy.open_refused(tconnect, "tn-alice", "tn-closed")
    assert closed_with(530, vhost_limit_text("tn-closed", "tn-alice", 0)) in msg


def test_user_max_connections_counts_across_vhosts(tconnect):
    first = tconnect("tn-conn2", "tn-a")
    tenancy.wait_tracked()
    tconnect("tn-conn2", "tn-b")
    tenancy.wait_tracked()
    for vhost in ("tn-a", "tn-b"):
        msg = tenancy.open_refused(tconnect, "tn-conn2", vhost)
        assert closed_with(530, user_limit_text("tn-conn2", 2)) in msg
    # other users are not affected
    tconnect("tn-alice", "tn-a").channel()
    first.close()
    tenancy.wait_tracked()
    tenancy.eventually_connect(tconnect, "tn-conn2", "tn-a").channel()


def test_vhost_connection_limit_is_checked_before_user_connection_limit(tconnect):
    msg = tenancy.open_refused(tconnect, "tn-conn0", "tn-closed")
    assert closed_with(530, vhost_limit_text("tn-closed", "tn-conn0", 0)) in msg


def test_user_max_connections_is_checked_before_vhost_access(tconnect):
    # tn-conn0 (max-connections 0) has no permissions on tn-b
    msg = tenancy.open_refused(tconnect, "tn-conn0", "tn-b")
    assert closed_with(530, user_limit_text("tn-conn0", 0)) in msg


def test_unknown_vhost_is_reported_before_the_user_connection_limit(tconnect):
    msg = tenancy.open_refused(tconnect, "tn-conn0", "tn-no-such-vhost")
    assert closed_with(530, "NOT_ALLOWED - vhost tn-no-such-vhost not found") in msg


def test_user_max_connections_zero_refuses_all(tconnect):
    msg = tenancy.open_refused(tconnect, "tn-conn0", "tn-a")
    assert closed_with(530, user_limit_text("tn-conn0", 0)) in msg


# -------------------------------------------------------------- channels ----
def test_user_max_channels_counts_across_connections(tconnect):
    c1 = tconnect("tn-chan2", "tn-a")
    ch1 = c1.channel()
    tenancy.wait_tracked()
    c2 = tconnect("tn-chan2", "tn-a")
    c2.channel()
    tenancy.wait_tracked()
    code, text = helpers.expect_connection_error(c2.channel)
    assert (code, text) == (530, "NOT_ALLOWED - number of channels opened for user "
                                 "'tn-chan2' has reached the maximum allowed user "
                                 "limit of (2)")
    assert c2.is_closed
    assert c1.is_open and ch1.is_open
    ch1.exchange_declare("amq.direct", passive=True)
    # c2's channel went with it: c1 may open one again
    tenancy.wait_tracked()
    ch2 = c1.channel()
    tenancy.wait_tracked()
    code, _ = helpers.expect_connection_error(c1.channel)
    assert code == 530
    assert ch2.is_closed


def test_negotiated_channel_max_is_checked_before_user_channel_limit(tconnect):
    c1 = tconnect("tn-chan2", "tn-a")
    c1.channel()
    tenancy.wait_tracked()
    c2 = tconnect("tn-chan2", "tn-a", channel_max=1)
    c2.channel(channel_number=1)
    tenancy.wait_tracked()
    # both are reached: 1 of channel_max 1 on c2, 2 of the user's 2
    code, text = helpers.expect_connection_error(c2.channel, channel_number=2)
    assert (code, text) == (530, "NOT_ALLOWED - number of channels opened (1) has "
                                 "reached the negotiated channel_max (1)")


# ---------------------------------------------------------------- queues ----
def test_vhost_max_queues(tconnect, name):
    ch = tconnect("tn-alice", "tn-maxq").channel()
    qs = [name("q") for _ in range(3)]
    for q in qs:
        ch.queue_declare(q)
    extra = name("q")
    code, text = helpers.expect_channel_error(ch.queue_declare, extra)
    assert (code, text) == queue_limit(extra, "tn-maxq", 3)
    ch = tconnect("tn-alice", "tn-maxq").channel()
    # existing queues may be redeclared (actively and passively)
    ch.queue_declare(qs[0])
    ch.queue_declare(qs[1], passive=True)
    # exclusive and server-named queues count as well
    code, text = helpers.expect_channel_error(
        ch.queue_declare, "", exclusive=True)
    assert code == 406
    assert text.startswith("PRECONDITION_FAILED - cannot declare queue 'amq.gen-")
    assert text.endswith("': queue limit in vhost 'tn-maxq' (3) is reached")
    # a deleted queue frees its place
    ch = tconnect("tn-alice", "tn-maxq").channel()
    ch.queue_delete(qs[2])
    ch.queue_declare(extra)
    code, text = helpers.expect_channel_error(ch.queue_declare, qs[2])
    assert (code, text) == queue_limit(qs[2], "tn-maxq", 3)
    ch = tconnect("tn-alice", "tn-maxq").channel()
    for q in qs[:2] + [extra]:
        ch.queue_delete(q)


def test_vhost_max_queues_zero_refuses_all(tconnect, name):
    ch = tconnect("tn-alice", "tn-noq").channel()
    q = name("q")
    assert helpers.expect_channel_error(ch.queue_declare, q) == queue_limit(q, "tn-noq", 0)
