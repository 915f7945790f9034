//! Every method that names a queue, exchange, binding or consumer tag, aimed at one that does not
//! exist or is already gone (deleted earlier on the same channel, another channel or another
//! connection): the exact answer RabbitMQ 3.10 gives — a reply, silence (nowait), a
//! basic.return, or which close with which code, text and class/method ids.
//!
//! One table; each row is (setup, method, expected outcome). The rows run one after another
//! against one broker, each on fresh raw connections and with its own names; every mismatch is
//! collected so one run shows the whole difference.

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, basic, channel, connection, exchange, queue, tx};
use amq_protocol::types::FieldTable;
use std::time::Duration;

use crate::common::*;

/// Where a setup step runs. The method under test always runs on channel 1 of the main
/// connection (`Same`); `Other` is channel 2 of that connection; `OtherConn` is channel 1 of a
/// second connection that stays open until the row is done (its exclusive queues live as long).
#[derive(Clone, Copy, Debug)]
enum On {
    Same,
    Other,
    OtherConn,
}

/// A setup step; each must succeed. Names are symbols, and so are routing keys that are one
/// (see [`Names`]).
#[derive(Clone, Copy, Debug)]
enum Step {
    DeclareQueue(On, &'static str),
    DeclareExclusiveQueue(On, &'static str),
    DeclareAutoDeleteQueue(On, &'static str),
    DeleteQueue(On, &'static str),
    /// (on, name, type)
    DeclareExchange(On, &'static str, &'static str),
    /// (on, name, alternate exchange): a direct exchange with an `alternate-exchange`.
    DeclareExchangeWithAe(On, &'static str, &'static str),
    DeleteExchange(On, &'static str),
    /// (on, queue, exchange, routing key)
    BindQueue(On, &'static str, &'static str, &'static str),
    /// (on, queue, exchange, routing key)
    UnbindQueue(On, &'static str, &'static str, &'static str),
    /// (on, destination, source, routing key)
    BindExchange(On, &'static str, &'static str, &'static str),
    /// (on, queue, consumer tag)
    Consume(On, &'static str, &'static str),
    Cancel(On, &'static str),
    /// Waits for the broker's basic.cancel of this consumer (its queue was deleted).
    AwaitServerCancel(On, &'static str),
    /// (on, exchange, routing key): a publish that must not close the channel.
    Publish(On, &'static str, &'static str),
    TxSelect(On),
}

impl Step {
    fn on(self) -> On {
        match self {
            DeclareQueue(on, ..)
            | DeclareExclusiveQueue(on, ..)
            | DeclareAutoDeleteQueue(on, ..)
            | DeleteQueue(on, ..)
            | DeclareExchange(on, ..)
            | DeclareExchangeWithAe(on, ..)
            | DeleteExchange(on, ..)
            | BindQueue(on, ..)
            | UnbindQueue(on, ..)
            | BindExchange(on, ..)
            | Consume(on, ..)
            | Cancel(on, ..)
            | AwaitServerCancel(on, ..)
            | Publish(on, ..)
            | TxSelect(on) => on,
        }
    }

    /// The method a step sends; its -ok must come back.
    fn request(self, names: &Names) -> AMQPClass {
        let n = |s: &str| names.get(s);
        let k = |s: &str| names.key(s);
        match self {
            DeclareQueue(_, q) => queue_declare(&n(q), false, false, false),
            DeclareExclusiveQueue(_, q) => queue_declare(&n(q), false, true, false),
            DeclareAutoDeleteQueue(_, q) => queue_declare(&n(q), false, false, true),
            DeleteQueue(_, q) => queue_delete(&n(q), false, false, false),
            DeclareExchange(_, x, kind) => exchange_declare(&n(x), kind, false),
            DeclareExchangeWithAe(_, x, ae) => {
                let mut declare = exchange_declare(&n(x), "direct", false);
                if let AMQPClass::Exchange(exchange::AMQPMethod::Declare(d)) = &mut declare {
                    d.arguments = table(vec![("alternate-exchange", long_str(&n(ae)))]);
                }
                declare
            }
            DeleteExchange(_, x) => exchange_delete(&n(x), false, false),
            BindQueue(_, q, x, key) => queue_bind(&n(q), &n(x), &k(key)),
            UnbindQueue(_, q, x, key) => queue_unbind(&n(q), &n(x), &k(key)),
            BindExchange(_, dest, src, key) => exchange_bind(&n(dest), &n(src), &k(key)),
            Consume(_, q, tag) => basic_consume(&n(q), &n(tag)),
            Cancel(_, tag) => basic_cancel(&n(tag), false),
            TxSelect(_) => AMQPClass::Tx(tx::AMQPMethod::Select(tx::Select {})),
            AwaitServerCancel(..) | Publish(..) => unreachable!("{self:?} sends no method"),
        }
    }
}

/// What the row sends on channel 1 of the main connection.
enum Call {
    Method(AMQPClass),
    /// basic.publish with an empty body: (exchange, routing key, mandatory).
    Publish(String, String, bool),
}

/// What RabbitMQ answers. Texts are templates: `$q`, `$q2`, `$x`, `$x2`, `$tag` stand for the
/// row's real names.
enum Expect {
    /// This reply, then the channel still works.
    Reply(fn(&Names) -> AMQPClass),
    /// No reply at all (nowait, or a publish that is dropped), and the channel still works.
    Silent,
    /// basic.return with (code, text), then the channel still works.
    Returned(u16, &'static str),
    /// channel.close (code, text, class, method); the connection stays open.
    ChannelClose(u16, &'static str, u16, u16),
    /// connection.close (code, text, class, method).
    ConnectionClose(u16, &'static str, u16, u16),
}

/// What actually happened, comparable with an [`Expect`] resolved for one row's names.
#[derive(Debug, PartialEq)]
enum Outcome {
    Reply(AMQPClass),
    Silent,
    Returned(u16, String),
    ChannelClose(u16, String, u16, u16),
    ConnectionClose(u16, String, u16, u16),
    /// Anything else: a reply followed by a close, a timeout, a frame that makes no sense.
    Broken(String),
}

struct Row {
    what: &'static str,
    setup: &'static [Step],
    call: fn(&Names) -> Call,
    expect: Expect,
}

/// A row's names: symbol `q` becomes `<prefix>-q`; `""` and `amq.*` are taken literally.
struct Names {
    prefix: String,
}

const SYMBOLS: [&str; 5] = ["q2", "q", "x2", "x", "tag"];

impl Names {
    fn new() -> Names {
        Names {
            prefix: unique("missing"),
        }
    }

    fn get(&self, sym: &str) -> String {
        if sym.is_empty() || sym.starts_with("amq.") {
            sym.to_string()
        } else {
            format!("{}-{sym}", self.prefix)
        }
    }

    /// A routing key: a symbol's name when it is one, else literal.
    fn key(&self, key: &str) -> String {
        if SYMBOLS.contains(&key) {
            self.get(key)
        } else {
            key.to_string()
        }
    }

    fn q(&self) -> String {
        self.get("q")
    }

    fn x(&self) -> String {
        self.get("x")
    }

    fn x2(&self) -> String {
        self.get("x2")
    }

    fn tag(&self) -> String {
        self.get("tag")
    }

    /// Replaces `$sym` placeholders (longest symbols first, so `$q2` is not read as `$q`).
    fn text(&self, template: &str) -> String {
        let mut text = template.to_string();
        for sym in SYMBOLS {
            text = text.replace(&format!("${sym}"), &self.get(sym));
        }
        text
    }

    fn resolve(&self, expect: &Expect) -> Outcome {
        match *expect {
            Expect::Reply(reply) => Outcome::Reply(reply(self)),
            Expect::Silent => Outcome::Silent,
            Expect::Returned(code, text) => Outcome::Returned(code, self.text(text)),
            Expect::ChannelClose(code, text, c, m) => {
                Outcome::ChannelClose(code, self.text(text), c, m)
            }
            Expect::ConnectionClose(code, text, c, m) => {
                Outcome::ConnectionClose(code, self.text(text), c, m)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Methods
// ---------------------------------------------------------------------------

fn exchange_declare(name: &str, kind: &str, passive: bool) -> AMQPClass {
    AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
        exchange: name.into(),
        kind: kind.into(),
        passive,
        durable: false,
        auto_delete: false,
        internal: false,
        nowait: false,
        arguments: FieldTable::default(),
    }))
}

fn exchange_delete(name: &str, if_unused: bool, nowait: bool) -> AMQPClass {
    AMQPClass::Exchange(exchange::AMQPMethod::Delete(exchange::Delete {
        exchange: name.into(),
        if_unused,
        nowait,
    }))
}

fn exchange_bind(destination: &str, source: &str, key: &str) -> AMQPClass {
    AMQPClass::Exchange(exchange::AMQPMethod::Bind(exchange::Bind {
        destination: destination.into(),
        source: source.into(),
        routing_key: key.into(),
        nowait: false,
        arguments: FieldTable::default(),
    }))
}

fn exchange_unbind(destination: &str, source: &str, key: &str, nowait: bool) -> AMQPClass {
    AMQPClass::Exchange(exchange::AMQPMethod::Unbind(exchange::Unbind {
        destination: destination.into(),
        source: source.into(),
        routing_key: key.into(),
        nowait,
        arguments: FieldTable::default(),
    }))
}

fn queue_declare(name: &str, passive: bool, exclusive: bool, auto_delete: bool) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: name.into(),
        passive,
        durable: false,
        exclusive,
        auto_delete,
        nowait: false,
        arguments: FieldTable::default(),
    }))
}

fn queue_bind(queue_name: &str, exchange: &str, key: &str) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Bind(queue::Bind {
        queue: queue_name.into(),
        exchange: exchange.into(),
        routing_key: key.into(),
        nowait: false,
        arguments: FieldTable::default(),
    }))
}

fn queue_unbind(queue_name: &str, exchange: &str, key: &str) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Unbind(queue::Unbind {
        queue: queue_name.into(),
        exchange: exchange.into(),
        routing_key: key.into(),
        arguments: FieldTable::default(),
    }))
}

fn queue_purge(name: &str) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Purge(queue::Purge {
        queue: name.into(),
        nowait: false,
    }))
}

fn queue_delete(name: &str, if_unused: bool, if_empty: bool, nowait: bool) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::Delete(queue::Delete {
        queue: name.into(),
        if_unused,
        if_empty,
        nowait,
    }))
}

fn basic_consume(queue_name: &str, tag: &str) -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Consume(basic::Consume {
        queue: queue_name.into(),
        consumer_tag: tag.into(),
        no_local: false,
        no_ack: true,
        exclusive: false,
        nowait: false,
        arguments: FieldTable::default(),
    }))
}

fn basic_cancel(tag: &str, nowait: bool) -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Cancel(basic::Cancel {
        consumer_tag: tag.into(),
        nowait,
    }))
}

fn basic_get(queue_name: &str) -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Get(basic::Get {
        queue: queue_name.into(),
        no_ack: true,
    }))
}

/// Sent after every call: its qos-ok proves the channel still works (and, after a nowait
/// method, that there was no reply before it).
fn sync_method() -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::Qos(basic::Qos {
        prefetch_count: 0,
        global: false,
    }))
}

fn is_sync_reply(m: &AMQPClass) -> bool {
    matches!(m, AMQPClass::Basic(basic::AMQPMethod::QosOk(_)))
}

fn exchange_declare_ok(_: &Names) -> AMQPClass {
    AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(exchange::DeclareOk {}))
}

fn exchange_delete_ok(_: &Names) -> AMQPClass {
    AMQPClass::Exchange(exchange::AMQPMethod::DeleteOk(exchange::DeleteOk {}))
}

fn exchange_unbind_ok(_: &Names) -> AMQPClass {
    AMQPClass::Exchange(exchange::AMQPMethod::UnbindOk(exchange::UnbindOk {}))
}

fn queue_unbind_ok(_: &Names) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::UnbindOk(queue::UnbindOk {}))
}

fn queue_delete_ok_0(_: &Names) -> AMQPClass {
    AMQPClass::Queue(queue::AMQPMethod::DeleteOk(queue::DeleteOk {
        message_count: 0,
    }))
}

fn cancel_ok_tag(n: &Names) -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::CancelOk(basic::CancelOk {
        consumer_tag: n.tag().into(),
    }))
}

fn consume_ok_tag(n: &Names) -> AMQPClass {
    AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(basic::ConsumeOk {
        consumer_tag: n.tag().into(),
    }))
}

fn method(m: AMQPClass) -> Call {
    Call::Method(m)
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

use Expect::{ChannelClose, ConnectionClose, Reply, Returned, Silent};
use On::{Other, OtherConn, Same};
use Step::*;

const DEFAULT_EXCHANGE: &str = "ACCESS_REFUSED - operation not permitted on the default exchange";
const NO_QUEUE: &str = "NOT_FOUND - no queue '$q' in vhost '/'";
const NO_X: &str = "NOT_FOUND - no exchange '$x' in vhost '/'";
const NO_X2: &str = "NOT_FOUND - no exchange '$x2' in vhost '/'";
const NO_PREVIOUS_QUEUE: &str = "NOT_FOUND - no previously declared queue";
const LOCKED_Q: &str = "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '$q' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.";

/// A queue `q` bound to a direct exchange `x` with key `k`.
const Q_BOUND_TO_X: &[Step] = &[
    DeclareQueue(Other, "q"),
    DeclareExchange(Other, "x", "direct"),
    BindQueue(Other, "q", "x", "k"),
];

fn rows() -> Vec<Row> {
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

// ---------------------------------------------------------------------------
// Running a row
// ---------------------------------------------------------------------------

/// A raw connection plus the methods read while waiting for another channel's.
struct Conn {
    raw: RawClient,
    /// Methods that arrived on a channel nobody was waiting on yet, oldest first (e.g. the
    /// basic.cancel for channel 1 that comes while channel 2 waits for its queue.delete-ok).
    stash: Vec<(u16, AMQPClass)>,
}

impl Conn {
    async fn open(broker: &TestBroker, channels: &[u16]) -> Conn {
        let mut raw = broker.raw_open().await;
        for &ch in channels {
            raw.open_channel(ch).await;
        }
        Conn {
            raw,
            stash: Vec::new(),
        }
    }

    /// The next method on channel `ch` or on channel 0, skipping content frames (of a
    /// basic.return).
    async fn next_method_on(&mut self, ch: u16) -> (u16, AMQPClass) {
        self.next_method_within(ch, WAIT)
            .await
            .unwrap_or_else(|| panic!("no method on channel {ch} within {WAIT:?}"))
    }

    /// Like [`Conn::next_method_on`], `None` if nothing comes within `wait`.
    async fn next_method_within(&mut self, ch: u16, wait: Duration) -> Option<(u16, AMQPClass)> {
        if let Some(i) = self.stash.iter().position(|(c, _)| *c == ch || *c == 0) {
            return Some(self.stash.remove(i));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.raw.recv_within(left).await {
                Recv::Frame(AMQPFrame::Method(c, m)) if c == ch || c == 0 => return Some((c, m)),
                Recv::Frame(AMQPFrame::Method(c, m)) => self.stash.push((c, m)),
                Recv::Frame(_) => continue,
                Recv::Timeout => return None,
                Recv::Closed => panic!("connection closed while waiting on channel {ch}"),
            }
        }
    }
}

/// The connections of one row.
struct World<'a> {
    broker: &'a TestBroker,
    names: &'a Names,
    main: Conn,
    other: Option<Conn>,
}

impl<'a> World<'a> {
    async fn open(broker: &'a TestBroker, names: &'a Names) -> World<'a> {
        World {
            broker,
            names,
            main: Conn::open(broker, &[1, 2]).await,
            other: None,
        }
    }

    /// The client and channel a step runs on.
    async fn client(&mut self, on: On) -> (&mut Conn, u16) {
        match on {
            On::Same => (&mut self.main, 1),
            On::Other => (&mut self.main, 2),
            On::OtherConn => {
                if self.other.is_none() {
                    self.other = Some(Conn::open(self.broker, &[1]).await);
                }
                (self.other.as_mut().unwrap(), 1)
            }
        }
    }

    /// Runs a setup step; panics unless the broker answers as it must.
    async fn step(&mut self, step: Step) {
        let names = self.names;
        let (conn, ch) = self.client(step.on()).await;
        match step {
            AwaitServerCancel(_, tag) => match conn.next_method_on(ch).await {
                (c, AMQPClass::Basic(basic::AMQPMethod::Cancel(cancel)))
                    if c == ch && cancel.consumer_tag.as_str() == names.get(tag) => {}
                other => panic!("setup {step:?}: expected basic.cancel, got {other:?}"),
            },
            Publish(_, x, key) => {
                let (x, key) = (names.get(x), names.key(key));
                conn.raw.publish(ch, &x, &key, false, false, b"setup").await;
                conn.raw.send_method(ch, sync_method()).await;
                let (c, reply) = conn.next_method_on(ch).await;
                assert!(
                    c == ch && is_sync_reply(&reply),
                    "setup {step:?} got {reply:?} on channel {c}"
                );
            }
            _ => {
                let request = step.request(names);
                let sent = format!("{request:?}");
                conn.raw.send_method(ch, request).await;
                let (c, reply) = conn.next_method_on(ch).await;
                assert!(
                    c == ch && is_ok_reply(&reply),
                    "setup {step:?} ({sent}) got {reply:?} on channel {c}"
                );
            }
        }
    }

    /// Sends the row's call (and a sync method behind it) and observes what follows.
    ///
    /// RabbitMQ may send consume-ok after the reply to a later method (the queue process sends
    /// it), so when the sync reply comes first the call's reply is still waited for, `late` long.
    async fn call(&mut self, call: Call, late: Duration) -> Outcome {
        let conn = &mut self.main;
        match call {
            Call::Method(m) => conn.raw.send_method(1, m).await,
            Call::Publish(x, rk, mandatory) => {
                conn.raw.publish(1, &x, &rk, mandatory, false, b"").await
            }
        }
        conn.raw.send_method(1, sync_method()).await;
        let (ch, first) = conn.next_method_on(1).await;
        match (ch, first) {
            (1, m) if is_sync_reply(&m) => match conn.next_method_within(1, late).await {
                None => Outcome::Silent,
                Some((1, reply)) => Outcome::Reply(reply),
                Some(other) => Outcome::Broken(format!("after the sync reply: {other:?}")),
            },
            (1, AMQPClass::Channel(channel::AMQPMethod::Close(c))) => {
                conn.raw
                    .send_method(
                        1,
                        AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                    )
                    .await;
                let outcome = Outcome::ChannelClose(
                    c.reply_code,
                    c.reply_text.as_str().to_string(),
                    c.class_id,
                    c.method_id,
                );
                // Only the channel closed: it can be opened again on the same connection.
                conn.raw
                    .send_method(
                        1,
                        AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
                    )
                    .await;
                match conn.next_method_on(1).await {
                    (1, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))) => outcome,
                    other => Outcome::Broken(format!("{outcome:?}, then reopening gave {other:?}")),
                }
            }
            (0, AMQPClass::Connection(connection::AMQPMethod::Close(c))) => {
                conn.raw
                    .send_method(
                        0,
                        AMQPClass::Connection(connection::AMQPMethod::CloseOk(
                            connection::CloseOk {},
                        )),
                    )
                    .await;
                Outcome::ConnectionClose(
                    c.reply_code,
                    c.reply_text.as_str().to_string(),
                    c.class_id,
                    c.method_id,
                )
            }
            (1, reply) => {
                let outcome = match reply {
                    AMQPClass::Basic(basic::AMQPMethod::Return(r)) => {
                        Outcome::Returned(r.reply_code, r.reply_text.as_str().to_string())
                    }
                    reply => Outcome::Reply(reply),
                };
                match conn.next_method_on(1).await {
                    (1, m) if is_sync_reply(&m) => outcome,
                    other => Outcome::Broken(format!("{outcome:?}, then {other:?}")),
                }
            }
            other => Outcome::Broken(format!("unexpected {other:?}")),
        }
    }
}

/// Whether `m` is the -ok of a setup method.
fn is_ok_reply(m: &AMQPClass) -> bool {
    matches!(
        m,
        AMQPClass::Queue(
            queue::AMQPMethod::DeclareOk(_)
                | queue::AMQPMethod::DeleteOk(_)
                | queue::AMQPMethod::BindOk(_)
                | queue::AMQPMethod::UnbindOk(_)
        ) | AMQPClass::Exchange(
            exchange::AMQPMethod::DeclareOk(_)
                | exchange::AMQPMethod::DeleteOk(_)
                | exchange::AMQPMethod::BindOk(_)
        ) | AMQPClass::Basic(basic::AMQPMethod::ConsumeOk(_) | basic::AMQPMethod::CancelOk(_))
            | AMQPClass::Tx(tx::AMQPMethod::SelectOk(_))
    )
}

/// Deletes whatever a row may have left behind (on RabbitMQ, which outlives the test). An
/// exclusive queue of a connection that is still going away refuses (405); it goes by itself.
async fn clean_up(broker: &TestBroker, names: &Names) {
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    let deletes = ["q", "q2"]
        .map(|q| queue_delete(&names.get(q), false, false, false))
        .into_iter()
        .chain(["x", "x2"].map(|x| exchange_delete(&names.get(x), false, false)));
    for delete in deletes {
        if let (1, AMQPClass::Channel(channel::AMQPMethod::Close(_))) = raw.rpc(1, delete).await {
            raw.send_method(
                1,
                AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
            )
            .await;
            raw.open_channel(1).await;
        }
    }
}

#[tokio::test]
async fn missing_and_already_deleted_objects_get_rabbitmq_answers() {
    let mut broker = TestBroker::start();
    let mut mismatches = Vec::new();
    let rows = rows();
    for row in &rows {
        // Shown when a row panics (a setup step failed or the broker went quiet).
        eprintln!("row: {}", row.what);
        let names = Names::new();
        let mut world = World::open(&broker, &names).await;
        for step in row.setup {
            world.step(*step).await;
        }
        // Silence is only waited for briefly after the sync reply; a reply that RabbitMQ sends
        // late is waited for properly.
        let late = match row.expect {
            Expect::Reply(_) => WAIT,
            _ => Duration::from_millis(200),
        };
        let got = world.call((row.call)(&names), late).await;
        let want = names.resolve(&row.expect);
        if got != want {
            mismatches.push(format!(
                "{}:\n    want {want:?}\n    got  {got:?}",
                row.what
            ));
        }
        drop(world);
        clean_up(&broker, &names).await;
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} rows differ:\n{}",
        mismatches.len(),
        rows.len(),
        mismatches.join("\n")
    );
    broker.assert_alive().await;
}
