"""Tenancy: the user_id property (must be the authenticated user unless the
user has the impersonator tag) and connection.update-secret."""
import pika

import helpers


def test_user_id_of_the_authenticated_user_is_delivered(tconnect):
    ch = tconnect("tn-alice", "tn-a").channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="tn-alice"))
    _, props, _ = ch.basic_get(q, auto_ack=True)
    assert props.user_id == "tn-alice"


def test_user_id_of_another_user_is_406(tconnect):
    ch = tconnect("tn-alice", "tn-a").channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="tn-bob"))
    code, text = helpers.expect_channel_error(helpers.sync, ch)
    assert (code, text) == (406, "PRECONDITION_FAILED - user_id property set to "
                                 "'tn-bob' but authenticated user was 'tn-alice'")


def test_impersonator_may_set_any_user_id(tconnect):
    ch = tconnect("tn-impersonator", "tn-a").channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    for claimed in ("tn-alice", "nobody-at-all"):
        ch.basic_publish("", q, b"x", pika.BasicProperties(user_id=claimed))
        _, props, _ = ch.basic_get(q, auto_ack=True)
        assert props.user_id == claimed


def test_update_secret_with_the_users_password(tconnect):
    c = tconnect("tn-alice", "tn-a")
    ch = c.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    c.update_secret("alice-secret", "rotation")
    assert c.is_open and ch.is_open
    ch.basic_publish("", q, b"after update")
    assert ch.basic_get(q, auto_ack=True)[2] == b"after update"
    # channels opened afterwards work as well
    ch2 = c.channel()
    ch2.queue_declare(q, passive=True)
