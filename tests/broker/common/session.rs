//! What most tests start from: a broker of their own with a lapin channel open on it (and maybe a
//! queue or an exchange declared), or with a raw client that has read connection.start or has
//! channel 1 open; and assert_capability_advertised, a whole test on such a start.

use amq_protocol::protocol::connection;
use amq_protocol::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ExchangeKind};

use super::{
    RawClient, TestBroker, capability, declare_exchange, declare_queue_with, declare_tmp_queue,
    unique,
};

/// A broker for this test ([`TestBroker::start`]), one lapin connection to it and one channel
/// on that connection. Keep all three bound for the whole test (`_conn`, not `_`): dropping the
/// broker stops it, dropping the connection closes the channel.
pub async fn broker_with_channel() -> (TestBroker, Connection, Channel) {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    (broker, conn, ch)
}

/// A broker for this test and a raw client that has sent the protocol header and read the
/// broker's connection.start (returned last), for tests of the handshake itself.
pub async fn broker_with_raw_start() -> (TestBroker, RawClient, connection::Start) {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    let start = raw.start().await;
    (broker, raw, start)
}

/// A broker's connection.start advertises the capability `name` as true.
pub async fn assert_capability_advertised(name: &str) {
    let (_broker, _raw, start) = broker_with_raw_start().await;
    assert_eq!(capability(&start, name), Some(AMQPValue::Boolean(true)));
}

/// A broker for this test and a raw client that has completed the handshake and opened
/// channel 1.
pub async fn broker_with_raw_channel() -> (TestBroker, RawClient) {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    (broker, raw)
}

/// [`broker_with_channel`] plus a queue named after `prefix` ([`unique`]), declared with default
/// options and no arguments; its name comes last.
pub async fn broker_with_queue(prefix: &str) -> (TestBroker, Connection, Channel, String) {
    broker_with_queue_with(prefix, FieldTable::default()).await
}

/// [`broker_with_queue`] with these `x-*` arguments on the queue.
pub async fn broker_with_queue_with(
    prefix: &str,
    args: FieldTable,
) -> (TestBroker, Connection, Channel, String) {
    let (broker, conn, ch) = broker_with_channel().await;
    let q = unique(prefix);
    declare_queue_with(&ch, &q, args).await;
    (broker, conn, ch, q)
}

/// [`broker_with_channel`] plus a server-named exclusive queue ([`declare_tmp_queue`]); its name
/// comes last.
pub async fn broker_with_tmp_queue() -> (TestBroker, Connection, Channel, String) {
    let (broker, conn, ch) = broker_with_channel().await;
    let q = declare_tmp_queue(&ch).await;
    (broker, conn, ch, q)
}

/// [`broker_with_channel`] plus an exchange of `kind` named after `prefix` ([`unique`]), declared
/// with default options; its name comes last.
pub async fn broker_with_exchange(
    prefix: &str,
    kind: ExchangeKind,
) -> (TestBroker, Connection, Channel, String) {
    let (broker, conn, ch) = broker_with_channel().await;
    let x = unique(prefix);
    declare_exchange(&ch, &x, kind).await;
    (broker, conn, ch, x)
}
