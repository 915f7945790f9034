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

mod rows_basic;
mod rows_exchanges;
mod rows_queues;
mod run;

use run::{World, clean_up};

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
    let mut rows = rows_exchanges::rows();
    rows.extend(rows_queues::rows());
    rows.extend(rows_basic::rows());
    rows
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
