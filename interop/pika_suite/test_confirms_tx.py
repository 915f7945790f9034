"""Publisher confirms (confirm class) and transactions (tx class)."""
import pika
import pika.spec
import pytest
from pika import exceptions as exc

import helpers


def _q(ch, name):
    return ch.queue_declare(queue=name("q"), exclusive=True).method.queue


# -------------------------------------------------------------- confirms ----

def test_confirm_select_then_publish_is_acked(ch, name):
    q = _q(ch, name)
    ch.confirm_delivery()
    # BlockingChannel waits for basic.ack and raises NackError on basic.nack
    for i in range(5):
        ch.basic_publish("", q, b"m%d" % i)
    assert helpers.counts_eventually(ch, q, (5, 0)) == (5, 0)


def test_confirm_acks_cover_every_delivery_tag_in_order(conn, name):
    ch = conn.channel()
    q = _q(ch, name)
    impl = ch._impl
    acks, nacks, selected = [], [], []

    def on_confirm(frame):
        (acks if isinstance(frame.method, pika.spec.Basic.Ack) else nacks).append(frame.method)

    impl.confirm_delivery(ack_nack_callback=on_confirm, callback=selected.append)
    assert helpers.wait_until(lambda: selected, conn=conn)
    assert isinstance(selected[0].method, pika.spec.Confirm.SelectOk)
    n = 50
    for i in range(n):
        impl.basic_publish("", q, b"m%d" % i)

    def confirmed():
        tags = set()
        prev = 0
        for a in acks:
            if a.multiple:
                tags.update(range(prev + 1, a.delivery_tag + 1))
            else:
                tags.add(a.delivery_tag)
            prev = max(prev, a.delivery_tag)
        return tags

    assert helpers.wait_until(lambda: len(confirmed()) >= n, conn=conn)
    assert nacks == []
    assert confirmed() == set(range(1, n + 1))
    tags = [a.delivery_tag for a in acks]
    assert tags == sorted(tags)


def test_confirm_unroutable_non_mandatory_publish_is_still_acked(ch, name):
    ch.confirm_delivery()
    ch.basic_publish("amq.direct", name("nobody"), b"x")  # no exception: acked
    assert ch.is_open


def test_confirm_mandatory_unroutable_is_returned_then_acked(ch, name):
    ch.confirm_delivery()
    # pika raises UnroutableError when basic.return precedes basic.ack
    with pytest.raises(exc.UnroutableError) as ei:
        ch.basic_publish("amq.direct", name("nobody"), b"ret", mandatory=True)
    msgs = ei.value.messages
    assert len(msgs) == 1
    assert msgs[0].method.reply_code == 312
    assert msgs[0].method.reply_text == "NO_ROUTE"
    assert msgs[0].body == b"ret"


def test_confirm_select_on_transactional_channel_is_406(ch):
    ch.tx_select()
    code, text = helpers.expect_channel_error(ch.confirm_delivery)
    assert code == 406
    assert text == "PRECONDITION_FAILED - cannot switch from tx to confirm mode"


def test_tx_select_on_confirm_channel_is_406(ch):
    ch.confirm_delivery()
    code, text = helpers.expect_channel_error(ch.tx_select)
    assert code == 406
    assert text == "PRECONDITION_FAILED - cannot switch from confirm to tx mode"


# -------------------------------------------------------------------- tx ----

def test_tx_select_commit_publishes_only_after_commit(conn, name):
    ch = conn.channel()
    q = _q(ch, name)
    observer = conn.channel()
    ok = ch.tx_select()
    assert isinstance(ok.method, pika.spec.Tx.SelectOk)
    ch.basic_publish("", q, b"a")
    ch.basic_publish("", q, b"b")
    helpers.sync(ch)
    assert helpers.counts_eventually(observer, q, (0, 0)) == (0, 0)
    ok = ch.tx_commit()
    assert isinstance(ok.method, pika.spec.Tx.CommitOk)
    assert [b for _, _, b in helpers.get_all(observer, q)] == [b"a", b"b"]


def test_tx_rollback_discards_published_messages(conn, name):
    ch = conn.channel()
    q = _q(ch, name)
    ch.tx_select()
    ch.basic_publish("", q, b"discard-me")
    ok = ch.tx_rollback()
    assert isinstance(ok.method, pika.spec.Tx.RollbackOk)
    ch.tx_commit()
    assert helpers.counts_eventually(conn.channel(), q, (0, 0)) == (0, 0)
    # the channel stays transactional after rollback
    ch.basic_publish("", q, b"keep")
    ch.tx_commit()
    assert [b for _, _, b in helpers.get_all(conn.channel(), q)] == [b"keep"]


def test_tx_ack_takes_effect_only_on_commit(conn, name):
    ch = conn.channel()
    q = _q(ch, name)
    ch.basic_publish("", q, b"m")
    ch.tx_select()
    m, _, _ = ch.basic_get(q)
    ch.basic_ack(m.delivery_tag)
    ch.tx_commit()
    ch.close()  # nothing unacked left to requeue
    assert helpers.counts_eventually(conn.channel(), q, (0, 0)) == (0, 0)


def test_tx_rollback_undoes_acks_leaving_messages_unacked(conn, name):
    ch = conn.channel()
    q = _q(ch, name)
    ch.basic_publish("", q, b"m")
    ch.tx_select()
    m, _, _ = ch.basic_get(q)
    ch.basic_ack(m.delivery_tag)
    ch.tx_rollback()
    # the ack was discarded: the message is still unacked (not ready) ...
    assert helpers.counts_eventually(conn.channel(), q, (0, 0)) == (0, 0)
    # ... so the same tag can be acked again without 406
    ch.basic_ack(m.delivery_tag)
    ch.tx_rollback()
    # ... and closing the channel requeues it as redelivered
    ch.close()
    left = helpers.get_all(conn.channel(), q)
    assert [b for _, _, b in left] == [b"m"]
    assert left[0][0].redelivered


def test_tx_rollback_undoes_nack_and_reject(conn, name):
    ch = conn.channel()
    q = _q(ch, name)
    ch.basic_publish("", q, b"a")
    ch.basic_publish("", q, b"b")
    ch.tx_select()
    ma, _, _ = ch.basic_get(q)
    mb, _, _ = ch.basic_get(q)
    ch.basic_nack(ma.delivery_tag, requeue=True)
    ch.basic_reject(mb.delivery_tag, requeue=False)
    ch.tx_rollback()
    assert helpers.counts_eventually(conn.channel(), q, (0, 0)) == (0, 0)
    ch.basic_ack(0, multiple=True)
    ch.tx_commit()
    ch.close()
    assert helpers.counts_eventually(conn.channel(), q, (0, 0)) == (0, 0)


def test_tx_commit_applies_nack_requeue(conn, name):
    ch = conn.channel()
    q = _q(ch, name)
    ch.basic_publish("", q, b"a")
    ch.tx_select()
    m, _, _ = ch.basic_get(q)
    ch.basic_nack(m.delivery_tag, requeue=True)
    helpers.sync(ch)
    assert helpers.counts_eventually(conn.channel(), q, (0, 0)) == (0, 0)
    ch.tx_commit()
    m2, _, b = conn.channel().basic_get(q, auto_ack=True)
    assert b == b"a" and m2.redelivered


def test_tx_commit_without_select_is_406(ch):
    code, text = helpers.expect_channel_error(ch.tx_commit)
    assert code == 406
    assert text == "PRECONDITION_FAILED - channel is not transactional"


def test_tx_rollback_without_select_is_406(ch):
    code, text = helpers.expect_channel_error(ch.tx_rollback)
    assert code == 406
    assert text == "PRECONDITION_FAILED - channel is not transactional"
