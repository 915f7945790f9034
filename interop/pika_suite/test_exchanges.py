"""exchange class and routing: direct, fanout, topic, headers, default,
pre-declared amq.* exchanges, errors, e2e bindings, alternate-exchange,
internal exchanges."""
import pika
import pytest

import helpers


def _route(ch, exchange, bindings, publishes):
    """Bind one exclusive queue per entry of bindings ({label: [(rk, args)]}),
    publish (routing_key, headers) messages, return {label: [bodies]}."""
    queues = {}
    for label, binds in bindings.items():
        q = ch.queue_declare(queue="", exclusive=True).method.queue
        for rk, args in binds:
            ch.queue_bind(q, exchange, routing_key=rk, arguments=args)
        queues[label] = q
    for i, (rk, headers) in enumerate(publishes):
        ch.basic_publish(exchange, rk or "", ("m%d" % i).encode(),
                         pika.BasicProperties(headers=headers))
    helpers.sync(ch)
    out = {}
    for label, q in queues.items():
        out[label] = [b.decode() for _, _, b in helpers.get_all(ch, q)]
    return out


def test_direct_exchange_routes_by_exact_routing_key(ch, name):
    ex = name("direct")
    ch.exchange_declare(ex, "direct", auto_delete=True)
    got = _route(ch, ex, {"a": [("k1", None)], "b": [("k2", None)],
                          "ab": [("k1", None), ("k2", None)]},
                 [("k1", None), ("k2", None), ("k3", None), ("K1", None)])
    assert got == {"a": ["m0"], "b": ["m1"], "ab": ["m0", "m1"]}


def test_fanout_exchange_ignores_routing_key(ch, name):
    ex = name("fanout")
    ch.exchange_declare(ex, "fanout", auto_delete=True)
    got = _route(ch, ex, {"a": [("x", None)], "b": [("", None)]},
                 [("anything", None), ("", None)])
    assert got == {"a": ["m0", "m1"], "b": ["m0", "m1"]}


def test_topic_star_matches_exactly_one_word(ch, name):
    ex = name("topic")
    ch.exchange_declare(ex, "topic", auto_delete=True)
    got = _route(ch, ex, {"q": [("a.*.c", None)]},
                 [("a.b.c", None), ("a.c", None), ("a.b.b.c", None),
                  ("a..c", None), ("x.b.c", None)])
    # 'a..c' has an empty middle word, which '*' matches
    assert got == {"q": ["m0", "m3"]}


def test_topic_hash_matches_zero_or_more_words(ch, name):
    ex = name("topic")
    ch.exchange_declare(ex, "topic", auto_delete=True)
    got = _route(ch, ex, {"q": [("a.#", None)]},
                 [("a", None), ("a.b", None), ("a.b.c", None), ("b.a", None),
                  ("ab", None)])
    assert got == {"q": ["m0", "m1", "m2"]}


def test_topic_hash_between_words_matches_zero_words(ch, name):
    ex = name("topic")
    ch.exchange_declare(ex, "topic", auto_delete=True)
    got = _route(ch, ex, {"q": [("a.#.b", None)]},
                 [("a.b", None), ("a.x.b", None), ("a.x.y.b", None),
                  ("a.b.c", None), ("a.x.y", None), ("x.a.b", None)])
    assert got == {"q": ["m0", "m1", "m2"]}


def test_topic_lone_hash_matches_everything_including_empty_key(ch, name):
    ex = name("topic")
    ch.exchange_declare(ex, "topic", auto_delete=True)
    got = _route(ch, ex, {"q": [("#", None)]},
                 [("", None), ("a", None), ("a.b.c", None)])
    assert got == {"q": ["m0", "m1", "m2"]}


def test_topic_mixed_wildcards(ch, name):
    ex = name("topic")
    ch.exchange_declare(ex, "topic", auto_delete=True)
    got = _route(ch, ex,
                 {"s": [("*.orange.*", None)], "h": [("lazy.#", None)],
                  "x": [("*.*.rabbit", None)], "lit": [("a.b", None)],
                  "hs": [("#.*", None)]},
                 [("quick.orange.rabbit", None), ("lazy.orange.elephant", None),
                  ("quick.orange.fox", None), ("lazy.brown.fox", None),
                  ("lazy.pink.rabbit", None), ("quick.brown.fox", None),
                  ("a.b", None), ("", None)])
    assert got["s"] == ["m0", "m1", "m2"]
    assert got["h"] == ["m1", "m3", "m4"]
    assert got["x"] == ["m0", "m4"]
    assert got["lit"] == ["m6"]
    # '#.*' needs at least one word; RabbitMQ treats the empty routing
    # key as zero words, so it does not match
    assert got["hs"] == ["m0", "m1", "m2", "m3", "m4", "m5", "m6"]


def test_topic_duplicate_bindings_deliver_once(ch, name):
    ex = name("topic")
    ch.exchange_declare(ex, "topic", auto_delete=True)
    got = _route(ch, ex, {"q": [("a.*", None), ("#", None), ("a.b", None)]},
                 [("a.b", None)])
    assert got == {"q": ["m0"]}


def test_headers_exchange_x_match_all(ch, name):
    ex = name("headers")
    ch.exchange_declare(ex, "headers", auto_delete=True)
    got = _route(ch, ex, {"q": [("", {"x-match": "all", "a": 1, "b": "two"})]},
                 [(None, {"a": 1, "b": "two"}),
                  (None, {"a": 1, "b": "two", "c": 3}),
                  (None, {"a": 1}),
                  (None, {"a": 2, "b": "two"}),
                  (None, None)])
    assert got == {"q": ["m0", "m1"]}


def test_headers_exchange_default_x_match_is_all(ch, name):
    ex = name("headers")
    ch.exchange_declare(ex, "headers", auto_delete=True)
    got = _route(ch, ex, {"q": [("", {"a": 1, "b": "two"})]},
                 [(None, {"a": 1, "b": "two"}), (None, {"a": 1})])
    assert got == {"q": ["m0"]}


def test_headers_exchange_x_match_any(ch, name):
    ex = name("headers")
    ch.exchange_declare(ex, "headers", auto_delete=True)
    got = _route(ch, ex, {"q": [("", {"x-match": "any", "a": 1, "b": "two"})]},
                 [(None, {"a": 1}), (None, {"b": "two"}), (None, {"a": 2}),
                  (None, {"c": 1}), (None, None)])
    assert got == {"q": ["m0", "m1"]}


def test_headers_exchange_x_match_all_ignores_x_headers(ch, name):
    ex = name("headers")
    ch.exchange_declare(ex, "headers", auto_delete=True)
    got = _route(ch, ex,
                 {"q": [("", {"x-match": "all", "a": 1, "x-foo": "bar"})]},
                 [(None, {"a": 1}), (None, {"a": 1, "x-foo": "bar"})])
    # plain 'all' does not consider binding args starting with 'x-'
    assert got == {"q": ["m0", "m1"]}


def test_headers_exchange_x_match_all_with_x_considers_x_headers(ch, name):
    ex = name("headers")
    ch.exchange_declare(ex, "headers", auto_delete=True)
    got = _route(ch, ex,
                 {"q": [("", {"x-match": "all-with-x", "a": 1, "x-foo": "bar"})]},
                 [(None, {"a": 1}), (None, {"a": 1, "x-foo": "bar"}),
                  (None, {"x-foo": "bar"})])
    assert got == {"q": ["m1"]}


def test_headers_exchange_x_match_any_ignores_x_headers(ch, name):
    ex = name("headers")
    ch.exchange_declare(ex, "headers", auto_delete=True)
    got = _route(ch, ex,
                 {"q": [("", {"x-match": "any", "a": 1, "x-foo": "bar"})]},
                 [(None, {"x-foo": "bar"}), (None, {"a": 1})])
    assert got == {"q": ["m1"]}


def test_headers_exchange_x_match_any_with_x_considers_x_headers(ch, name):
    ex = name("headers")
    ch.exchange_declare(ex, "headers", auto_delete=True)
    got = _route(ch, ex,
                 {"q": [("", {"x-match": "any-with-x", "a": 1, "x-foo": "bar"})]},
                 [(None, {"x-foo": "bar"}), (None, {"a": 1}), (None, {"b": 1})])
    assert got == {"q": ["m0", "m1"]}


def test_headers_exchange_binding_with_no_headers_matches_all(ch, name):
    ex = name("headers")
    ch.exchange_declare(ex, "headers", auto_delete=True)
    got = _route(ch, ex, {"q": [("", {})]},
                 [(None, None), (None, {"a": 1})])
    assert got == {"q": ["m0", "m1"]}


def test_default_exchange_routes_to_queue_named_by_routing_key(ch, name):
    q = ch.queue_declare(queue=name("q"), exclusive=True).method.queue
    ch.basic_publish("", q, b"hello")
    ch.basic_publish("", q + "-nope", b"lost")
    helpers.sync(ch)
    got = helpers.get_all(ch, q)
    assert [b for _, _, b in got] == [b"hello"]
    assert got[0][0].exchange == ""
    assert got[0][0].routing_key == q


def test_binding_to_default_exchange_is_refused_403(ch, name):
    q = ch.queue_declare(queue=name("q"), exclusive=True).method.queue
    code, text = helpers.expect_channel_error(ch.queue_bind, q, "", routing_key="k")
    assert code == 403
    assert text == "ACCESS_REFUSED - operation not permitted on the default exchange"


@pytest.mark.parametrize("ex,typ", [
    ("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic"),
    ("amq.headers", "headers"), ("amq.match", "headers")])
def test_predeclared_amq_exchanges_exist(ch, ex, typ):
    ch.exchange_declare(ex, passive=True)
    # redeclaring with the same (durable) settings is allowed
    ch.exchange_declare(ex, typ, durable=True)


def test_exchange_declare_passive_on_missing_is_404(ch, name, vhost):
    ex = name("ex")
    code, text = helpers.expect_channel_error(ch.exchange_declare, ex, passive=True)
    assert code == 404
    assert text == "NOT_FOUND - no exchange '%s' in vhost '%s'" % (ex, vhost)


def test_exchange_redeclare_with_different_type_is_406(conn, name, vhost):
    ch = conn.channel()
    ex = name("ex")
    ch.exchange_declare(ex, "direct", auto_delete=True)
    ch.queue_bind(ch.queue_declare("", exclusive=True).method.queue, ex, "k")
    code, text = helpers.expect_channel_error(ch.exchange_declare, ex, "fanout",
                                              auto_delete=True)
    assert code == 406
    assert text == ("PRECONDITION_FAILED - inequivalent arg 'type' for exchange "
                    "'%s' in vhost '%s': received 'fanout' but current is "
                    "'direct'" % (ex, vhost))


def test_exchange_redeclare_with_different_durable_is_406(conn, name, vhost):
    ch = conn.channel()
    ex = name("ex")
    ch.exchange_declare(ex, "direct", durable=False)
    try:
        code, text = helpers.expect_channel_error(ch.exchange_declare, ex, "direct",
                                                  durable=True)
        assert code == 406
        assert text == ("PRECONDITION_FAILED - inequivalent arg 'durable' for "
                        "exchange '%s' in vhost '%s': received 'true' but current "
                        "is 'false'" % (ex, vhost))
    finally:
        conn.channel().exchange_delete(ex)


def test_exchange_redeclare_with_different_auto_delete_is_406(conn, name, vhost):
    ch = conn.channel()
    ex = name("ex")
    ch.exchange_declare(ex, "topic", auto_delete=False)
    try:
        code, text = helpers.expect_channel_error(ch.exchange_declare, ex, "topic",
                                                  auto_delete=True)
        assert code == 406
        assert text == ("PRECONDITION_FAILED - inequivalent arg 'auto_delete' for "
                        "exchange '%s' in vhost '%s': received 'true' but current "
                        "is 'false'" % (ex, vhost))
    finally:
        conn.channel().exchange_delete(ex)


def test_exchange_redeclare_with_same_settings_is_ok(ch, name):
    ex = name("ex")
    ch.exchange_declare(ex, "topic", auto_delete=True)
    ch.queue_bind(ch.queue_declare("", exclusive=True).method.queue, ex, "#")
    ok = ch.exchange_declare(ex, "topic", auto_delete=True)
    assert isinstance(ok.method, pika.spec.Exchange.DeclareOk)


def test_declaring_amq_prefixed_exchange_is_403_access_refused(ch, vhost):
    code, text = helpers.expect_channel_error(ch.exchange_declare, "amq.foo", "direct")
    assert code == 403
    assert text == ("ACCESS_REFUSED - exchange name 'amq.foo' contains reserved "
                    "prefix 'amq.*'")


def test_declaring_unknown_exchange_type_is_503_command_invalid(conn, name):
    ch = conn.channel()
    ex = name("ex")
    code, text = helpers.expect_connection_error(ch.exchange_declare, ex, "no-such-type")
    assert code == 503
    assert text == "COMMAND_INVALID - unknown exchange type 'no-such-type'"


def test_exchange_delete_removes_exchange(ch, name, params):
    ex = name("ex")
    ch.exchange_declare(ex, "fanout")
    ok = ch.exchange_delete(ex)
    assert isinstance(ok.method, pika.spec.Exchange.DeleteOk)
    assert not helpers.exchange_exists(params, ex)


def test_exchange_delete_missing_is_ok(ch, name):
    # RabbitMQ 3.x: deleting a non-existent exchange succeeds
    ok = ch.exchange_delete(name("ex"))
    assert isinstance(ok.method, pika.spec.Exchange.DeleteOk)


def test_exchange_delete_if_unused_on_bound_exchange_is_406(conn, name, vhost):
    ch = conn.channel()
    ex = name("ex")
    ch.exchange_declare(ex, "fanout", auto_delete=False)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, ex)
    try:
        code, text = helpers.expect_channel_error(ch.exchange_delete, ex, if_unused=True)
        assert code == 406
        assert text == "PRECONDITION_FAILED - exchange '%s' in vhost '%s' in use" % (ex, vhost)
    finally:
        conn.channel().exchange_delete(ex)


def test_exchange_delete_if_unused_on_unbound_exchange_succeeds(ch, name, params):
    ex = name("ex")
    ch.exchange_declare(ex, "fanout")
    ch.exchange_delete(ex, if_unused=True)
    assert not helpers.exchange_exists(params, ex)


def test_auto_delete_exchange_deleted_when_last_binding_removed(ch, name, params):
    ex = name("ex")
    ch.exchange_declare(ex, "direct", auto_delete=True)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, ex, "k")
    assert helpers.exchange_exists(params, ex)
    ch.queue_unbind(q, ex, "k")
    assert not helpers.exchange_exists(params, ex)


def test_exchange_to_exchange_bind_routes_messages(ch, name):
    src, dst = name("src"), name("dst")
    ch.exchange_declare(src, "topic", auto_delete=True)
    ch.exchange_declare(dst, "direct", auto_delete=True)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, dst, "a.b")
    ok = ch.exchange_bind(destination=dst, source=src, routing_key="a.*")
    assert isinstance(ok.method, pika.spec.Exchange.BindOk)
    ch.basic_publish(src, "a.b", b"1")   # src matches a.*, dst matches a.b
    ch.basic_publish(src, "a.c", b"2")   # src matches, dst does not
    ch.basic_publish(src, "b.b", b"3")   # src does not match
    helpers.sync(ch)
    got = helpers.get_all(ch, q)
    assert [b for _, _, b in got] == [b"1"]
    assert got[0][0].exchange == src


def test_exchange_to_exchange_unbind_stops_routing(ch, name):
    src, dst = name("src"), name("dst")
    ch.exchange_declare(src, "fanout", auto_delete=True)
    ch.exchange_declare(dst, "fanout", auto_delete=True)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, dst)
    ch.queue_bind(ch.queue_declare("", exclusive=True).method.queue, src)  # keep src alive
    ch.exchange_bind(destination=dst, source=src)
    ch.basic_publish(src, "", b"before")
    ok = ch.exchange_unbind(destination=dst, source=src)
    assert isinstance(ok.method, pika.spec.Exchange.UnbindOk)
    ch.basic_publish(src, "", b"after")
    helpers.sync(ch)
    assert [b for _, _, b in helpers.get_all(ch, q)] == [b"before"]


def test_exchange_to_exchange_cycle_delivers_once(ch, name):
    a, b = name("a"), name("b")
    ch.exchange_declare(a, "fanout", auto_delete=True)
    ch.exchange_declare(b, "fanout", auto_delete=True)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, a)
    ch.queue_bind(q, b)
    ch.exchange_bind(destination=b, source=a)
    ch.exchange_bind(destination=a, source=b)
    ch.basic_publish(a, "", b"once")
    helpers.sync(ch)
    assert [x for _, _, x in helpers.get_all(ch, q)] == [b"once"]


def test_exchange_bind_missing_source_is_404(ch, name, vhost):
    dst, src = name("dst"), name("nosrc")
    ch.exchange_declare(dst, "fanout", auto_delete=True)
    code, text = helpers.expect_channel_error(ch.exchange_bind, destination=dst, source=src)
    assert code == 404
    assert text == "NOT_FOUND - no exchange '%s' in vhost '%s'" % (src, vhost)


def test_alternate_exchange_receives_unroutable_messages(ch, name):
    ae, main = name("ae"), name("main")
    ch.exchange_declare(ae, "fanout", auto_delete=True)
    ch.exchange_declare(main, "direct", auto_delete=True,
                        arguments={"alternate-exchange": ae})
    q_main = ch.queue_declare("", exclusive=True).method.queue
    q_ae = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q_main, main, "routed")
    ch.queue_bind(q_ae, ae)
    returned = []
    ch.add_on_return_callback(lambda *a: returned.append(a))
    ch.basic_publish(main, "routed", b"r")
    ch.basic_publish(main, "unroutable", b"u", mandatory=True)
    helpers.sync(ch)
    assert [b for _, _, b in helpers.get_all(ch, q_main)] == [b"r"]
    got = helpers.get_all(ch, q_ae)
    assert [b for _, _, b in got] == [b"u"]
    assert got[0][0].exchange == main
    assert got[0][0].routing_key == "unroutable"
    # routed via the AE counts as routed: no basic.return for mandatory
    assert returned == []


def test_publishing_to_internal_exchange_is_403(ch, name, vhost):
    ex = name("internal")
    ch.exchange_declare(ex, "fanout", auto_delete=True, internal=True)
    ch.queue_bind(ch.queue_declare("", exclusive=True).method.queue, ex)
    ch.basic_publish(ex, "", b"x")
    code, text = helpers.expect_channel_error(helpers.sync, ch)
    assert code == 403
    assert text == ("ACCESS_REFUSED - cannot publish to internal exchange "
                    "'%s' in vhost '%s'" % (ex, vhost))


def test_internal_exchange_receives_via_exchange_binding(ch, name):
    src, internal = name("src"), name("internal")
    ch.exchange_declare(src, "fanout", auto_delete=True)
    ch.exchange_declare(internal, "fanout", auto_delete=True, internal=True)
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.queue_bind(q, internal)
    ch.exchange_bind(destination=internal, source=src)
    ch.basic_publish(src, "", b"via-e2e")
    helpers.sync(ch)
    assert [b for _, _, b in helpers.get_all(ch, q)] == [b"via-e2e"]
