//! What most tests start from: a broker of their own with a lapin channel open on it, or with a
//! raw client that has channel 1 open.

use lapin::{Channel, Connection};

use super::{RawClient, TestBroker};

/// A broker for this test ([`TestBroker::start`]), one lapin connection to it and one channel
/// on that connection. Keep all three bound for the whole test (`_conn`, not `_`): dropping the
/// broker stops it, dropping the connection closes the channel.
pub async fn broker_with_channel() -> (TestBroker, Connection, Channel) {
    let broker = TestBroker::start();
    let (conn, ch) = broker.channel().await;
    (broker, conn, ch)
}

/// A broker for this test and a raw client that has completed the handshake and opened
/// channel 1.
pub async fn broker_with_raw_channel() -> (TestBroker, RawClient) {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    (broker, raw)
}
