//! The rows for queue.declare (passive), queue.bind, queue.unbind, queue.purge and queue.delete.

use super::*;

pub(super) fn rows() -> Vec<Row> {
    vec![
        // --- queue.declare passive -------------------------------------------------------
        Row {
            what: "queue.declare passive, missing",
            setup: &[],
            call: |n| method(queue_declare(&n.q(), true, false, false)),
            expect: ChannelClose(404, NO_QUEUE, 50, 10),
        },
        Row {
            what: "queue.declare passive, deleted on another channel",
            setup: &[DeclareQueue(Other, "q"), DeleteQueue(Other, "q")],
            call: |n| method(queue_declare(&n.q(), true, false, false)),
            expect: ChannelClose(404, NO_QUEUE, 50, 10),
        },
        Row {
            what: "queue.declare passive, declared and deleted on the same channel",
            setup: &[DeclareQueue(Same, "q"), DeleteQueue(Same, "q")],
            call: |n| method(queue_declare(&n.q(), true, false, false)),
            expect: ChannelClose(404, NO_QUEUE, 50, 10),
        },
        Row {
            what: "queue.declare passive, exclusive to another connection",
            setup: &[DeclareExclusiveQueue(OtherConn, "q")],
            call: |n| method(queue_declare(&n.q(), true, false, false)),
            expect: ChannelClose(405, LOCKED_Q, 50, 10),
        },
        Row {
            what: "queue.declare passive, queue \"\" and no queue declared on the channel",
            setup: &[],
            call: |_| method(queue_declare("", true, false, false)),
            expect: ChannelClose(404, "NOT_FOUND - no queue '' in vhost '/'", 50, 10),
        },
        Row {
            what: "queue.declare passive, queue \"\" after a queue was declared on the channel",
            setup: &[DeclareQueue(Same, "q")],
            call: |_| method(queue_declare("", true, false, false)),
            expect: ChannelClose(404, "NOT_FOUND - no queue '' in vhost '/'", 50, 10),
        },
        // --- queue.bind ------------------------------------------------------------------
        Row {
            what: "queue.bind, queue missing",
            setup: &[DeclareExchange(Other, "x", "direct")],
            call: |n| method(queue_bind(&n.q(), &n.x(), "k")),
            expect: ChannelClose(404, NO_QUEUE, 50, 20),
        },
        Row {
            what: "queue.bind, exchange missing",
            setup: &[DeclareQueue(Other, "q")],
            call: |n| method(queue_bind(&n.q(), &n.x(), "k")),
            expect: ChannelClose(404, NO_X, 50, 20),
        },
        Row {
            what: "queue.bind, both missing (exchange reported)",
            setup: &[],
            call: |n| method(queue_bind(&n.q(), &n.x(), "k")),
            expect: ChannelClose(404, NO_X, 50, 20),
        },
        Row {
            what: "queue.bind, queue deleted on another channel",
            setup: &[
                DeclareExchange(Other, "x", "direct"),
                DeclareQueue(Other, "q"),
                DeleteQueue(Other, "q"),
            ],
            call: |n| method(queue_bind(&n.q(), &n.x(), "k")),
            expect: ChannelClose(404, NO_QUEUE, 50, 20),
        },
        Row {
            what: "queue.bind, exchange is the default exchange",
            setup: &[DeclareQueue(Other, "q")],
            call: |n| method(queue_bind(&n.q(), "", "k")),
            expect: ChannelClose(403, DEFAULT_EXCHANGE, 50, 20),
        },
        Row {
            what: "queue.bind, queue exclusive to another connection",
            setup: &[
                DeclareExchange(Other, "x", "direct"),
                DeclareExclusiveQueue(OtherConn, "q"),
            ],
            call: |n| method(queue_bind(&n.q(), &n.x(), "k")),
            expect: ChannelClose(405, LOCKED_Q, 50, 20),
        },
        Row {
            what: "queue.bind, queue exclusive to another connection, exchange missing",
            setup: &[DeclareExclusiveQueue(OtherConn, "q")],
            call: |n| method(queue_bind(&n.q(), &n.x(), "k")),
            expect: ChannelClose(404, NO_X, 50, 20),
        },
        Row {
            what: "queue.bind, queue \"\" and no queue declared on the channel",
            setup: &[DeclareExchange(Other, "x", "direct")],
            call: |n| method(queue_bind("", &n.x(), "k")),
            expect: ChannelClose(404, NO_PREVIOUS_QUEUE, 50, 20),
        },
        Row {
            what: "queue.bind, queue and routing key \"\" bind the last declared queue by its name",
            setup: &[
                DeclareQueue(Same, "q"),
                DeclareExchange(Other, "x", "direct"),
                BindQueue(Same, "", "x", ""),
            ],
            call: |n| Call::Publish(n.x(), n.q(), true),
            expect: Silent,
        },
        // --- queue.unbind ----------------------------------------------------------------
        Row {
            what: "queue.unbind, queue and routing key \"\" unbind the last declared queue's name",
            setup: &[
                DeclareQueue(Same, "q"),
                DeclareExchange(Other, "x", "direct"),
                BindQueue(Other, "q", "x", "q"),
                UnbindQueue(Same, "", "x", ""),
            ],
            call: |n| Call::Publish(n.x(), n.q(), true),
            expect: Returned(312, "NO_ROUTE"),
        },
        Row {
            what: "queue.unbind, queue missing",
            setup: &[DeclareExchange(Other, "x", "direct")],
            call: |n| method(queue_unbind(&n.q(), &n.x(), "k")),
            expect: Reply(queue_unbind_ok),
        },
        Row {
            what: "queue.unbind, exchange missing",
            setup: &[DeclareQueue(Other, "q")],
            call: |n| method(queue_unbind(&n.q(), &n.x(), "k")),
            expect: Reply(queue_unbind_ok),
        },
        Row {
            what: "queue.unbind, both missing",
            setup: &[],
            call: |n| method(queue_unbind(&n.q(), &n.x(), "k")),
            expect: Reply(queue_unbind_ok),
        },
        Row {
            what: "queue.unbind, binding missing",
            setup: &[
                DeclareQueue(Other, "q"),
                DeclareExchange(Other, "x", "direct"),
            ],
            call: |n| method(queue_unbind(&n.q(), &n.x(), "k")),
            expect: Reply(queue_unbind_ok),
        },
        Row {
            what: "queue.unbind, twice",
            setup: &[
                DeclareQueue(Other, "q"),
                DeclareExchange(Other, "x", "direct"),
                BindQueue(Other, "q", "x", "k"),
            ],
            call: |n| method(queue_unbind(&n.q(), &n.x(), "k")),
            expect: Reply(queue_unbind_ok),
        },
        Row {
            what: "queue.unbind, auto-delete queue gone with its last consumer",
            setup: &[
                DeclareExchange(Same, "x", "direct"),
                DeclareAutoDeleteQueue(Same, "q"),
                BindQueue(Same, "q", "x", "k"),
                Consume(Same, "q", "tag"),
                Cancel(Same, "tag"),
            ],
            call: |n| method(queue_unbind(&n.q(), &n.x(), "k")),
            expect: Reply(queue_unbind_ok),
        },
        Row {
            what: "queue.unbind, queue deleted on another connection after binding",
            setup: &[
                DeclareExchange(OtherConn, "x", "direct"),
                DeclareQueue(OtherConn, "q"),
                BindQueue(OtherConn, "q", "x", "k"),
                DeleteQueue(OtherConn, "q"),
            ],
            call: |n| method(queue_unbind(&n.q(), &n.x(), "k")),
            expect: Reply(queue_unbind_ok),
        },
        Row {
            what: "queue.unbind, exchange deleted on another channel after binding",
            setup: &[
                DeclareExchange(Other, "x", "direct"),
                DeclareQueue(Other, "q"),
                BindQueue(Other, "q", "x", "k"),
                DeleteExchange(Other, "x"),
            ],
            call: |n| method(queue_unbind(&n.q(), &n.x(), "k")),
            expect: Reply(queue_unbind_ok),
        },
        Row {
            what: "queue.unbind, exchange is the default exchange",
            setup: &[DeclareQueue(Other, "q")],
            call: |n| method(queue_unbind(&n.q(), "", "k")),
            expect: ChannelClose(403, DEFAULT_EXCHANGE, 50, 50),
        },
        Row {
            what: "queue.unbind, exchange is the default exchange, queue missing",
            setup: &[],
            call: |n| method(queue_unbind(&n.q(), "", "k")),
            expect: ChannelClose(403, DEFAULT_EXCHANGE, 50, 50),
        },
        Row {
            what: "queue.unbind, exclusive queue of another connection, binding exists",
            setup: &[
                DeclareExchange(OtherConn, "x", "direct"),
                DeclareExclusiveQueue(OtherConn, "q"),
                BindQueue(OtherConn, "q", "x", "k"),
            ],
            call: |n| method(queue_unbind(&n.q(), &n.x(), "k")),
            expect: ChannelClose(405, LOCKED_Q, 50, 50),
        },
        Row {
            what: "queue.unbind, exclusive queue of another connection, no such binding",
            setup: &[
                DeclareExchange(OtherConn, "x", "direct"),
                DeclareExclusiveQueue(OtherConn, "q"),
            ],
            call: |n| method(queue_unbind(&n.q(), &n.x(), "k")),
            expect: Reply(queue_unbind_ok),
        },
        Row {
            what: "queue.unbind, queue \"\" and no queue declared on the channel",
            setup: &[DeclareExchange(Other, "x", "direct")],
            call: |n| method(queue_unbind("", &n.x(), "k")),
            expect: ChannelClose(404, NO_PREVIOUS_QUEUE, 50, 50),
        },
        // --- queue.purge -----------------------------------------------------------------
        Row {
            what: "queue.purge, missing",
            setup: &[],
            call: |n| method(queue_purge(&n.q())),
            expect: ChannelClose(404, NO_QUEUE, 50, 30),
        },
        Row {
            what: "queue.purge, deleted on another channel",
            setup: &[DeclareQueue(Other, "q"), DeleteQueue(Other, "q")],
            call: |n| method(queue_purge(&n.q())),
            expect: ChannelClose(404, NO_QUEUE, 50, 30),
        },
        Row {
            what: "queue.purge, exclusive to another connection",
            setup: &[DeclareExclusiveQueue(OtherConn, "q")],
            call: |n| method(queue_purge(&n.q())),
            expect: ChannelClose(405, LOCKED_Q, 50, 30),
        },
        Row {
            what: "queue.purge, queue \"\" and no queue declared on the channel",
            setup: &[],
            call: |_| method(queue_purge("")),
            expect: ChannelClose(404, NO_PREVIOUS_QUEUE, 50, 30),
        },
        // --- queue.delete ----------------------------------------------------------------
        Row {
            what: "queue.delete, missing",
            setup: &[],
            call: |n| method(queue_delete(&n.q(), false, false, false)),
            expect: Reply(queue_delete_ok_0),
        },
        Row {
            what: "queue.delete if-unused if-empty, missing",
            setup: &[],
            call: |n| method(queue_delete(&n.q(), true, true, false)),
            expect: Reply(queue_delete_ok_0),
        },
        Row {
            what: "queue.delete nowait, missing",
            setup: &[],
            call: |n| method(queue_delete(&n.q(), false, false, true)),
            expect: Silent,
        },
        Row {
            what: "queue.delete, deleted on another channel",
            setup: &[DeclareQueue(Other, "q"), DeleteQueue(Other, "q")],
            call: |n| method(queue_delete(&n.q(), false, false, false)),
            expect: Reply(queue_delete_ok_0),
        },
        Row {
            what: "queue.delete, declared and deleted on the same channel",
            setup: &[DeclareQueue(Same, "q"), DeleteQueue(Same, "q")],
            call: |n| method(queue_delete(&n.q(), true, true, false)),
            expect: Reply(queue_delete_ok_0),
        },
        Row {
            what: "queue.delete, exclusive to another connection",
            setup: &[DeclareExclusiveQueue(OtherConn, "q")],
            call: |n| method(queue_delete(&n.q(), false, false, false)),
            expect: ChannelClose(405, LOCKED_Q, 50, 40),
        },
        Row {
            what: "queue.delete, queue \"\" and no queue declared on the channel",
            setup: &[],
            call: |_| method(queue_delete("", false, false, false)),
            expect: ChannelClose(404, NO_PREVIOUS_QUEUE, 50, 40),
        },
    ]
}
