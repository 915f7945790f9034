//! The rows for basic.consume, basic.cancel, basic.get and basic.publish.

use super::*;

pub(super) fn rows() -> Vec<Row> {
    vec![
        // --- basic.consume ---------------------------------------------------------------
        Row {
            what: "basic.consume, missing",
            setup: &[],
            call: |n| method(basic_consume(&n.q(), &n.tag())),
            expect: ChannelClose(404, NO_QUEUE, 60, 20),
        },
        Row {
            what: "basic.consume, deleted on another channel",
            setup: &[DeclareQueue(Other, "q"), DeleteQueue(Other, "q")],
            call: |n| method(basic_consume(&n.q(), &n.tag())),
            expect: ChannelClose(404, NO_QUEUE, 60, 20),
        },
        Row {
            what: "basic.consume, exclusive to another connection",
            setup: &[DeclareExclusiveQueue(OtherConn, "q")],
            call: |n| method(basic_consume(&n.q(), &n.tag())),
            expect: ChannelClose(405, LOCKED_Q, 60, 20),
        },
        Row {
            what: "basic.consume, queue \"\" and no queue declared on the channel",
            setup: &[],
            call: |n| method(basic_consume("", &n.tag())),
            expect: ChannelClose(404, NO_PREVIOUS_QUEUE, 60, 20),
        },
        Row {
            what: "basic.consume, consumer tag in use on the channel",
            setup: &[DeclareQueue(Other, "q"), Consume(Same, "q", "tag")],
            call: |n| method(basic_consume(&n.q(), &n.tag())),
            expect: ConnectionClose(
                530,
                "NOT_ALLOWED - attempt to reuse consumer tag '$tag'",
                60,
                20,
            ),
        },
        Row {
            what: "basic.consume, tag of a consumer cancelled because its queue was deleted",
            setup: &[
                DeclareQueue(Other, "q"),
                DeclareQueue(Other, "q2"),
                Consume(Same, "q2", "tag"),
                DeleteQueue(Other, "q2"),
                AwaitServerCancel(Same, "tag"),
            ],
            call: |n| method(basic_consume(&n.q(), &n.tag())),
            expect: Reply(consume_ok_tag),
        },
        // --- basic.cancel ----------------------------------------------------------------
        Row {
            what: "basic.cancel, unknown tag",
            setup: &[],
            call: |n| method(basic_cancel(&n.tag(), false)),
            expect: Reply(cancel_ok_tag),
        },
        Row {
            what: "basic.cancel nowait, unknown tag",
            setup: &[],
            call: |n| method(basic_cancel(&n.tag(), true)),
            expect: Silent,
        },
        Row {
            what: "basic.cancel, already cancelled",
            setup: &[
                DeclareQueue(Other, "q"),
                Consume(Same, "q", "tag"),
                Cancel(Same, "tag"),
            ],
            call: |n| method(basic_cancel(&n.tag(), false)),
            expect: Reply(cancel_ok_tag),
        },
        Row {
            what: "basic.cancel, consumer's queue deleted on another connection",
            setup: &[
                DeclareQueue(OtherConn, "q"),
                Consume(Same, "q", "tag"),
                DeleteQueue(OtherConn, "q"),
                AwaitServerCancel(Same, "tag"),
            ],
            call: |n| method(basic_cancel(&n.tag(), false)),
            expect: Reply(cancel_ok_tag),
        },
        Row {
            what: "basic.cancel, tag of a consumer on another channel",
            setup: &[DeclareQueue(Other, "q"), Consume(Other, "q", "tag")],
            call: |n| method(basic_cancel(&n.tag(), false)),
            expect: Reply(cancel_ok_tag),
        },
        // --- basic.get -------------------------------------------------------------------
        Row {
            what: "basic.get, missing",
            setup: &[],
            call: |n| method(basic_get(&n.q())),
            expect: ChannelClose(404, NO_QUEUE, 60, 70),
        },
        Row {
            what: "basic.get, deleted on another channel",
            setup: &[DeclareQueue(Other, "q"), DeleteQueue(Other, "q")],
            call: |n| method(basic_get(&n.q())),
            expect: ChannelClose(404, NO_QUEUE, 60, 70),
        },
        Row {
            what: "basic.get, exclusive to another connection",
            setup: &[DeclareExclusiveQueue(OtherConn, "q")],
            call: |n| method(basic_get(&n.q())),
            expect: ChannelClose(405, LOCKED_Q, 60, 70),
        },
        Row {
            what: "basic.get, queue \"\" and no queue declared on the channel",
            setup: &[],
            call: |_| method(basic_get("")),
            expect: ChannelClose(404, NO_PREVIOUS_QUEUE, 60, 70),
        },
        Row {
            what: "basic.get, queue \"\" after the last declared queue was deleted",
            setup: &[DeclareQueue(Same, "q"), DeleteQueue(Other, "q")],
            call: |_| method(basic_get("")),
            expect: ChannelClose(404, NO_QUEUE, 60, 70),
        },
        // --- basic.publish ---------------------------------------------------------------
        Row {
            what: "basic.publish, exchange missing",
            setup: &[],
            call: |n| Call::Publish(n.x(), "k".into(), false),
            expect: ChannelClose(404, NO_X, 60, 40),
        },
        Row {
            what: "basic.publish mandatory, exchange missing",
            setup: &[],
            call: |n| Call::Publish(n.x(), "k".into(), true),
            expect: ChannelClose(404, NO_X, 60, 40),
        },
        Row {
            what: "basic.publish, exchange deleted on another channel after a publish to it",
            setup: &[
                DeclareExchange(Other, "x", "fanout"),
                Publish(Same, "x", "k"),
                DeleteExchange(Other, "x"),
            ],
            call: |n| Call::Publish(n.x(), "k".into(), false),
            expect: ChannelClose(404, NO_X, 60, 40),
        },
        Row {
            what: "basic.publish mandatory, exchange deleted on another connection",
            setup: &[
                DeclareExchange(OtherConn, "x", "direct"),
                Publish(Same, "x", "k"),
                DeleteExchange(OtherConn, "x"),
            ],
            call: |n| Call::Publish(n.x(), "k".into(), true),
            expect: ChannelClose(404, NO_X, 60, 40),
        },
        Row {
            what: "basic.publish in a transaction, exchange missing (refused at once)",
            setup: &[TxSelect(Same)],
            call: |n| Call::Publish(n.x(), "k".into(), false),
            expect: ChannelClose(404, NO_X, 60, 40),
        },
        Row {
            what: "basic.publish mandatory in a transaction, default exchange, queue missing",
            setup: &[TxSelect(Same)],
            call: |n| Call::Publish(String::new(), n.q(), true),
            expect: Silent,
        },
        Row {
            what: "basic.publish mandatory, default exchange, queue missing",
            setup: &[],
            call: |n| Call::Publish(String::new(), n.q(), true),
            expect: Returned(312, "NO_ROUTE"),
        },
        Row {
            what: "basic.publish, default exchange, queue missing",
            setup: &[],
            call: |n| Call::Publish(String::new(), n.q(), false),
            expect: Silent,
        },
        Row {
            what: "basic.publish mandatory, default exchange, queue deleted after a publish to it",
            setup: &[
                DeclareQueue(Other, "q"),
                Publish(Same, "", "q"),
                DeleteQueue(Other, "q"),
            ],
            call: |n| Call::Publish(String::new(), n.q(), true),
            expect: Returned(312, "NO_ROUTE"),
        },
        Row {
            what: "basic.publish mandatory, the only bound queue was deleted",
            setup: &[
                DeclareQueue(Other, "q"),
                DeclareExchange(Other, "x", "direct"),
                BindQueue(Other, "q", "x", "k"),
                Publish(Same, "x", "k"),
                DeleteQueue(OtherConn, "q"),
            ],
            call: |n| Call::Publish(n.x(), "k".into(), true),
            expect: Returned(312, "NO_ROUTE"),
        },
        Row {
            what: "basic.publish mandatory, unroutable and the alternate exchange is missing",
            setup: &[DeclareExchangeWithAe(Other, "x", "x2")],
            call: |n| Call::Publish(n.x(), "k".into(), true),
            expect: Returned(312, "NO_ROUTE"),
        },
        Row {
            what: "basic.publish mandatory, the alternate exchange was deleted after a publish",
            setup: &[
                DeclareExchange(Other, "x2", "fanout"),
                DeclareQueue(Other, "q"),
                BindQueue(Other, "q", "x2", ""),
                DeclareExchangeWithAe(Other, "x", "x2"),
                Publish(Same, "x", "k"),
                DeleteExchange(OtherConn, "x2"),
            ],
            call: |n| Call::Publish(n.x(), "k".into(), true),
            expect: Returned(312, "NO_ROUTE"),
        },
        Row {
            what: "basic.publish mandatory, the destination exchange was deleted",
            setup: &[
                DeclareExchange(Other, "x", "fanout"),
                DeclareExchange(Other, "x2", "fanout"),
                DeclareQueue(Other, "q"),
                BindExchange(Other, "x2", "x", ""),
                BindQueue(Other, "q", "x2", ""),
                Publish(Same, "x", "k"),
                DeleteExchange(Other, "x2"),
            ],
            call: |n| Call::Publish(n.x(), "k".into(), true),
            expect: Returned(312, "NO_ROUTE"),
        },
    ]
}
