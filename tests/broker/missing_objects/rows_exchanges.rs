//! The rows for exchange.declare (passive), exchange.delete, exchange.bind and exchange.unbind.

use super::*;

pub(super) fn rows() -> Vec<Row> {
    vec![
        // --- exchange.declare ------------------------------------------------------------
        Row {
            what: "exchange.declare passive, missing",
            setup: &[],
            call: |n| method(exchange_declare(&n.x(), "direct", true)),
            expect: ChannelClose(404, NO_X, 40, 10),
        },
        Row {
            what: "exchange.declare passive, deleted on another channel",
            setup: &[
                DeclareExchange(Other, "x", "direct"),
                DeleteExchange(Other, "x"),
            ],
            call: |n| method(exchange_declare(&n.x(), "direct", true)),
            expect: ChannelClose(404, NO_X, 40, 10),
        },
        Row {
            what: "exchange.declare passive, deleted on the same channel",
            setup: &[
                DeclareExchange(Same, "x", "fanout"),
                DeleteExchange(Same, "x"),
            ],
            call: |n| method(exchange_declare(&n.x(), "fanout", true)),
            expect: ChannelClose(404, NO_X, 40, 10),
        },
        Row {
            what: "exchange.declare passive, missing amq.* name",
            setup: &[],
            call: |_| method(exchange_declare("amq.no-such-exchange", "direct", true)),
            expect: ChannelClose(
                404,
                "NOT_FOUND - no exchange 'amq.no-such-exchange' in vhost '/'",
                40,
                10,
            ),
        },
        Row {
            what: "exchange.declare passive, missing, unknown type",
            setup: &[],
            call: |n| method(exchange_declare(&n.x(), "no-such-type", true)),
            expect: ChannelClose(404, NO_X, 40, 10),
        },
        Row {
            what: "exchange.declare passive, amq.direct",
            setup: &[],
            call: |_| method(exchange_declare("amq.direct", "direct", true)),
            expect: Reply(exchange_declare_ok),
        },
        Row {
            what: "exchange.declare passive of the default exchange",
            setup: &[],
            call: |_| method(exchange_declare("", "direct", true)),
            expect: ChannelClose(403, DEFAULT_EXCHANGE, 40, 10),
        },
        Row {
            what: "exchange.declare passive of the default exchange, unknown type",
            setup: &[],
            call: |_| method(exchange_declare("", "no-such-type", true)),
            expect: ChannelClose(403, DEFAULT_EXCHANGE, 40, 10),
        },
        Row {
            what: "exchange.declare of the default exchange",
            setup: &[],
            call: |_| method(exchange_declare("", "direct", false)),
            expect: ChannelClose(403, DEFAULT_EXCHANGE, 40, 10),
        },
        Row {
            what: "exchange.declare of the default exchange, unknown type (type checked first)",
            setup: &[],
            call: |_| method(exchange_declare("", "no-such-type", false)),
            expect: ConnectionClose(
                503,
                "COMMAND_INVALID - unknown exchange type 'no-such-type'",
                40,
                10,
            ),
        },
        // --- exchange.delete -------------------------------------------------------------
        Row {
            what: "exchange.delete, missing",
            setup: &[],
            call: |n| method(exchange_delete(&n.x(), false, false)),
            expect: Reply(exchange_delete_ok),
        },
        Row {
            what: "exchange.delete if-unused, missing",
            setup: &[],
            call: |n| method(exchange_delete(&n.x(), true, false)),
            expect: Reply(exchange_delete_ok),
        },
        Row {
            what: "exchange.delete nowait, missing",
            setup: &[],
            call: |n| method(exchange_delete(&n.x(), false, true)),
            expect: Silent,
        },
        Row {
            what: "exchange.delete if-unused, exchange is only another's alternate exchange",
            setup: &[
                DeclareExchange(Other, "x", "fanout"),
                DeclareExchangeWithAe(Other, "x2", "x"),
            ],
            call: |n| method(exchange_delete(&n.x(), true, false)),
            expect: Reply(exchange_delete_ok),
        },
        Row {
            what: "exchange.delete, deleted on another channel",
            setup: &[
                DeclareExchange(Other, "x", "topic"),
                DeleteExchange(Other, "x"),
            ],
            call: |n| method(exchange_delete(&n.x(), false, false)),
            expect: Reply(exchange_delete_ok),
        },
        Row {
            what: "exchange.delete, deleted on another connection",
            setup: &[
                DeclareExchange(OtherConn, "x", "topic"),
                DeleteExchange(OtherConn, "x"),
            ],
            call: |n| method(exchange_delete(&n.x(), true, false)),
            expect: Reply(exchange_delete_ok),
        },
        Row {
            what: "exchange.delete if-unused, exchange is only a binding's destination",
            setup: &[
                DeclareExchange(Other, "x", "direct"),
                DeclareExchange(Other, "x2", "direct"),
                BindExchange(Other, "x", "x2", "k"),
            ],
            call: |n| method(exchange_delete(&n.x(), true, false)),
            expect: Reply(exchange_delete_ok),
        },
        Row {
            what: "exchange.delete if-unused, exchange is a binding's source",
            setup: Q_BOUND_TO_X,
            call: |n| method(exchange_delete(&n.x(), true, false)),
            expect: ChannelClose(
                406,
                "PRECONDITION_FAILED - exchange '$x' in vhost '/' in use",
                40,
                20,
            ),
        },
        Row {
            what: "exchange.delete of the default exchange",
            setup: &[],
            call: |_| method(exchange_delete("", false, false)),
            expect: ChannelClose(403, DEFAULT_EXCHANGE, 40, 20),
        },
        Row {
            what: "exchange.delete of amq.direct",
            setup: &[],
            call: |_| method(exchange_delete("amq.direct", false, false)),
            expect: ChannelClose(
                403,
                "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not allowed",
                40,
                20,
            ),
        },
        Row {
            what: "exchange.delete, missing amq.* name (refused by name alone)",
            setup: &[],
            call: |_| method(exchange_delete("amq.no-such-exchange", true, false)),
            expect: ChannelClose(
                403,
                "ACCESS_REFUSED - deletion of system exchange 'amq.no-such-exchange' in vhost '/' not allowed",
                40,
                20,
            ),
        },
        // --- exchange.bind (destination x2, source x) ------------------------------------
        Row {
            what: "exchange.bind, source missing",
            setup: &[DeclareExchange(Other, "x2", "direct")],
            call: |n| method(exchange_bind(&n.x2(), &n.x(), "k")),
            expect: ChannelClose(404, NO_X, 40, 30),
        },
        Row {
            what: "exchange.bind, destination missing",
            setup: &[DeclareExchange(Other, "x", "direct")],
            call: |n| method(exchange_bind(&n.x2(), &n.x(), "k")),
            expect: ChannelClose(404, NO_X2, 40, 30),
        },
        Row {
            what: "exchange.bind, both missing (source reported)",
            setup: &[],
            call: |n| method(exchange_bind(&n.x2(), &n.x(), "k")),
            expect: ChannelClose(404, NO_X, 40, 30),
        },
        Row {
            what: "exchange.bind, destination deleted on another connection",
            setup: &[
                DeclareExchange(Other, "x", "direct"),
                DeclareExchange(OtherConn, "x2", "direct"),
                DeleteExchange(OtherConn, "x2"),
            ],
            call: |n| method(exchange_bind(&n.x2(), &n.x(), "k")),
            expect: ChannelClose(404, NO_X2, 40, 30),
        },
        Row {
            what: "exchange.bind, source is the default exchange",
            setup: &[DeclareExchange(Other, "x2", "direct")],
            call: |n| method(exchange_bind(&n.x2(), "", "k")),
            expect: ChannelClose(403, DEFAULT_EXCHANGE, 40, 30),
        },
        Row {
            what: "exchange.bind, destination is the default exchange",
            setup: &[DeclareExchange(Other, "x", "direct")],
            call: |n| method(exchange_bind("", &n.x(), "k")),
            expect: ChannelClose(403, DEFAULT_EXCHANGE, 40, 30),
        },
        Row {
            what: "exchange.bind, missing source is the default exchange",
            setup: &[],
            call: |n| method(exchange_bind(&n.x2(), "", "k")),
            expect: ChannelClose(403, DEFAULT_EXCHANGE, 40, 30),
        },
        // --- exchange.unbind (destination x2, source x) ----------------------------------
        Row {
            what: "exchange.unbind, source missing",
            setup: &[DeclareExchange(Other, "x2", "direct")],
            call: |n| method(exchange_unbind(&n.x2(), &n.x(), "k", false)),
            expect: Reply(exchange_unbind_ok),
        },
        Row {
            what: "exchange.unbind, destination missing",
            setup: &[DeclareExchange(Other, "x", "direct")],
            call: |n| method(exchange_unbind(&n.x2(), &n.x(), "k", false)),
            expect: Reply(exchange_unbind_ok),
        },
        Row {
            what: "exchange.unbind, both missing",
            setup: &[],
            call: |n| method(exchange_unbind(&n.x2(), &n.x(), "k", false)),
            expect: Reply(exchange_unbind_ok),
        },
        Row {
            what: "exchange.unbind nowait, both missing",
            setup: &[],
            call: |n| method(exchange_unbind(&n.x2(), &n.x(), "k", true)),
            expect: Silent,
        },
        Row {
            what: "exchange.unbind, binding missing",
            setup: &[
                DeclareExchange(Other, "x", "direct"),
                DeclareExchange(Other, "x2", "direct"),
            ],
            call: |n| method(exchange_unbind(&n.x2(), &n.x(), "k", false)),
            expect: Reply(exchange_unbind_ok),
        },
        Row {
            what: "exchange.unbind, destination deleted on another channel after binding",
            setup: &[
                DeclareExchange(Other, "x", "direct"),
                DeclareExchange(Other, "x2", "direct"),
                BindExchange(Other, "x2", "x", "k"),
                DeleteExchange(Other, "x2"),
            ],
            call: |n| method(exchange_unbind(&n.x2(), &n.x(), "k", false)),
            expect: Reply(exchange_unbind_ok),
        },
        Row {
            what: "exchange.unbind, source deleted on another connection after binding",
            setup: &[
                DeclareExchange(OtherConn, "x", "direct"),
                DeclareExchange(OtherConn, "x2", "direct"),
                BindExchange(OtherConn, "x2", "x", "k"),
                DeleteExchange(OtherConn, "x"),
            ],
            call: |n| method(exchange_unbind(&n.x2(), &n.x(), "k", false)),
            expect: Reply(exchange_unbind_ok),
        },
        Row {
            what: "exchange.unbind, source is the default exchange",
            setup: &[DeclareExchange(Other, "x2", "direct")],
            call: |n| method(exchange_unbind(&n.x2(), "", "k", false)),
            expect: ChannelClose(403, DEFAULT_EXCHANGE, 40, 40),
        },
        Row {
            what: "exchange.unbind, destination is the default exchange",
            setup: &[],
            call: |n| method(exchange_unbind("", &n.x(), "k", false)),
            expect: ChannelClose(403, DEFAULT_EXCHANGE, 40, 40),
        },
    ]
}
