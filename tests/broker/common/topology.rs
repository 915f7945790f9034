//! Queues, exchanges and bindings through lapin: declare, bind, unbind, purge and delete, each
//! failing the test on an error unless its name says it returns one; and
//! assert_invalid_queue_arg (with invalid_queue_arg_tests!, a test per row), the whole of a test
//! that a queue argument is refused.

use std::time::{Duration, Instant};

use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::{Channel, ExchangeKind};

use super::{
    WAIT, amqp_error, broker_with_channel, expect_amqp_error, invalid_queue_arg, long_str, table,
    unique,
};

/// Queue options with only `exclusive` set.
pub fn exclusive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    }
}

/// Queue options with only `passive` set.
pub fn passive() -> QueueDeclareOptions {
    QueueDeclareOptions {
        passive: true,
        ..Default::default()
    }
}

/// Queue options with only `auto_delete` set.
pub fn auto_delete() -> QueueDeclareOptions {
    QueueDeclareOptions {
        auto_delete: true,
        ..Default::default()
    }
}

/// Queue options with only `durable` set.
pub fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

/// Exchange options with only `durable` set.
pub fn durable_exchange() -> ExchangeDeclareOptions {
    ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    }
}

/// Queue arguments that dead-letter through the default exchange into `target`.
pub fn dead_letter_to(target: &str) -> Vec<(&'static str, AMQPValue)> {
    vec![
        ("x-dead-letter-exchange", long_str("")),
        ("x-dead-letter-routing-key", long_str(target)),
    ]
}

/// Declares a queue with `options` and `args`; returns the declare-ok (name and counts).
pub async fn declare_queue_as(
    ch: &Channel,
    name: &str,
    options: QueueDeclareOptions,
    args: FieldTable,
) -> lapin::Queue {
    ch.queue_declare(name.into(), options, args)
        .await
        .unwrap_or_else(|e| panic!("declare queue {name}: {e:?}"))
}

/// Declares a non-exclusive, non-durable queue with default options.
pub async fn declare_queue(ch: &Channel, name: &str) -> lapin::Queue {
    declare_queue_with(ch, name, FieldTable::default()).await
}

/// Declares a queue with default options and these `x-*` arguments.
pub async fn declare_queue_with(ch: &Channel, name: &str, args: FieldTable) -> lapin::Queue {
    declare_queue_as(ch, name, QueueDeclareOptions::default(), args).await
}

/// Declares a durable queue without arguments.
pub async fn declare_durable_queue(ch: &Channel, name: &str) -> lapin::Queue {
    declare_durable_queue_with(ch, name, FieldTable::default()).await
}

/// Declares a durable queue with these `x-*` arguments.
pub async fn declare_durable_queue_with(
    ch: &Channel,
    name: &str,
    args: FieldTable,
) -> lapin::Queue {
    declare_queue_as(ch, name, durable(), args).await
}

/// Declares a queue only this connection may use.
pub async fn declare_exclusive_queue(ch: &Channel, name: &str) -> lapin::Queue {
    declare_queue_as(ch, name, exclusive(), FieldTable::default()).await
}

/// Declares a queue deleted once its last consumer goes.
pub async fn declare_auto_delete_queue(ch: &Channel, name: &str) -> lapin::Queue {
    declare_queue_as(ch, name, auto_delete(), FieldTable::default()).await
}

/// Declares a server-named (`amq.gen-…`) queue with `options`; returns its name.
pub async fn declare_server_named_queue(ch: &Channel, options: QueueDeclareOptions) -> String {
    declare_queue_as(ch, "", options, FieldTable::default())
        .await
        .name()
        .as_str()
        .to_string()
}

/// A server-named exclusive queue, gone with its connection; returns its name.
pub async fn declare_tmp_queue(ch: &Channel) -> String {
    declare_server_named_queue(ch, exclusive()).await
}

/// Passive queue.declare: the declare-ok (the queue's counts) if it exists, else the error.
pub async fn declare_queue_passive(ch: &Channel, name: &str) -> lapin::Result<lapin::Queue> {
    ch.queue_declare(name.into(), passive(), FieldTable::default())
        .await
}

/// queue.declare (default options) that must fail: the (code, text) of the error.
pub async fn declare_queue_error(ch: &Channel, name: &str, args: FieldTable) -> (u16, String) {
    expect_amqp_error(
        ch.queue_declare(name.into(), QueueDeclareOptions::default(), args)
            .await,
    )
}

/// On a broker of its own, queue.declare of a queue named after `prefix` with the one argument
/// `arg` = `value` must be refused with RabbitMQ's 406 for an invalid argument, naming `reason`.
pub async fn assert_invalid_queue_arg(prefix: &str, arg: &str, value: AMQPValue, reason: &str) {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let q = unique(prefix);
    assert_eq!(
        declare_queue_error(&ch, &q, table(vec![(arg, value)])).await,
        invalid_queue_arg(&q, arg, reason)
    );
}

/// One test per row, `name: prefix, arg, value => reason;`, each running
/// [`assert_invalid_queue_arg`] with the row's values.
// The durability suite, which mounts this harness too, has no such tests.
#[allow(unused_macros)]
macro_rules! invalid_queue_arg_tests {
    ($($name:ident: $prefix:literal, $arg:literal, $value:expr => $reason:literal;)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                $crate::common::assert_invalid_queue_arg($prefix, $arg, $value, $reason).await;
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use invalid_queue_arg_tests;

/// Purges a queue; returns the number of messages purged.
pub async fn purge_queue(ch: &Channel, name: &str) -> u32 {
    ch.queue_purge(name.into(), Default::default())
        .await
        .unwrap_or_else(|e| panic!("purge queue {name}: {e:?}"))
}

/// queue.purge that must fail: the (code, text) of the error.
pub async fn purge_error(ch: &Channel, queue: &str) -> (u16, String) {
    expect_amqp_error(ch.queue_purge(queue.into(), Default::default()).await)
}

/// Deletes a queue; returns the number of messages deleted with it.
pub async fn delete_queue(ch: &Channel, name: &str) -> u32 {
    ch.queue_delete(name.into(), Default::default())
        .await
        .unwrap_or_else(|e| panic!("delete queue {name}: {e:?}"))
}

/// Polls (passive declare) until `queue` is gone, which the broker may do asynchronously (an
/// exclusive queue after its connection, an auto-delete one after its last consumer); fails the
/// test with `what` if it is still there after [`WAIT`].
pub async fn wait_until_queue_is_gone(ch: &Channel, queue: &str, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        match declare_queue_passive(ch, queue).await {
            Err(e) => {
                assert_eq!(amqp_error(&e).map(|(c, _)| c), Some(404), "{e:?}");
                return;
            }
            Ok(_) => {
                assert!(Instant::now() < deadline, "{what}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Declares an exchange of `kind` with `options` and `args`.
pub async fn declare_exchange_as(
    ch: &Channel,
    name: &str,
    kind: ExchangeKind,
    options: ExchangeDeclareOptions,
    args: FieldTable,
) {
    ch.exchange_declare(name.into(), kind, options, args)
        .await
        .unwrap_or_else(|e| panic!("declare exchange {name}: {e:?}"));
}

/// Declares a non-durable exchange of `kind` with default options.
pub async fn declare_exchange(ch: &Channel, name: &str, kind: ExchangeKind) {
    declare_exchange_as(ch, name, kind, Default::default(), FieldTable::default()).await
}

/// Declares a durable exchange of `kind` without arguments.
pub async fn declare_durable_exchange(ch: &Channel, name: &str, kind: ExchangeKind) {
    declare_exchange_as(ch, name, kind, durable_exchange(), FieldTable::default()).await
}

/// Declares an exchange deleted once its last binding goes.
pub async fn declare_auto_delete_exchange(ch: &Channel, name: &str, kind: ExchangeKind) {
    let options = ExchangeDeclareOptions {
        auto_delete: true,
        ..Default::default()
    };
    declare_exchange_as(ch, name, kind, options, FieldTable::default()).await
}

/// Passive exchange.declare (the broker ignores `kind`): Ok if it exists, else the error.
pub async fn declare_exchange_passive(
    ch: &Channel,
    name: &str,
    kind: ExchangeKind,
) -> lapin::Result<()> {
    let options = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.exchange_declare(name.into(), kind, options, FieldTable::default())
        .await
}

/// exchange.declare that must fail: the (code, text) of the error.
pub async fn declare_exchange_error(
    ch: &Channel,
    name: &str,
    kind: ExchangeKind,
    options: ExchangeDeclareOptions,
) -> (u16, String) {
    expect_amqp_error(
        ch.exchange_declare(name.into(), kind, options, FieldTable::default())
            .await,
    )
}

/// Deletes an exchange.
pub async fn delete_exchange(ch: &Channel, name: &str) {
    ch.exchange_delete(name.into(), Default::default())
        .await
        .unwrap_or_else(|e| panic!("delete exchange {name}: {e:?}"));
}

/// Binds `queue` to `exchange` with `key`.
pub async fn bind_queue(ch: &Channel, queue: &str, exchange: &str, key: &str) {
    bind_queue_with(ch, queue, exchange, key, FieldTable::default()).await
}

/// Binds `queue` to `exchange` with `key` and binding arguments (e.g. a headers match).
pub async fn bind_queue_with(
    ch: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
    args: FieldTable,
) {
    try_bind_queue(ch, queue, exchange, key, args)
        .await
        .unwrap_or_else(|e| panic!("bind {queue} to {exchange} with {key:?}: {e:?}"));
}

/// queue.bind that must fail: the (code, text) of the error.
pub async fn bind_queue_error(
    ch: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
) -> (u16, String) {
    expect_amqp_error(try_bind_queue(ch, queue, exchange, key, FieldTable::default()).await)
}

async fn try_bind_queue(
    ch: &Channel,
    queue: &str,
    exchange: &str,
    key: &str,
    args: FieldTable,
) -> lapin::Result<()> {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        Default::default(),
        args,
    )
    .await
}

/// Removes the binding of `queue` to `exchange` with `key` (and no arguments).
pub async fn unbind_queue(ch: &Channel, queue: &str, exchange: &str, key: &str) {
    ch.queue_unbind(
        queue.into(),
        exchange.into(),
        key.into(),
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("unbind {queue} from {exchange} with {key:?}: {e:?}"));
}

/// exchange.bind: messages routed by `source` with `key` go on to `destination`.
pub async fn bind_exchange(ch: &Channel, destination: &str, source: &str, key: &str) {
    ch.exchange_bind(
        destination.into(),
        source.into(),
        key.into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("bind {destination} to {source} with {key:?}: {e:?}"));
}

/// exchange.unbind of a binding made by [`bind_exchange`].
pub async fn unbind_exchange(ch: &Channel, destination: &str, source: &str, key: &str) {
    ch.exchange_unbind(
        destination.into(),
        source.into(),
        key.into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("unbind {destination} from {source} with {key:?}: {e:?}"));
}
