//! Closing from the client side (connection.close, channel.close), channel.flow, and many
//! channels on one connection.

use amq_protocol::protocol::{AMQPClass, channel, connection};
use lapin::options::ChannelFlowOptions;

use crate::common::*;

#[tokio::test]
async fn client_connection_close_gets_close_ok() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    let (ch, reply) = raw.rpc(0, connection_close()).await;
    assert_eq!(ch, 0);
    assert!(
        matches!(
            reply,
            AMQPClass::Connection(connection::AMQPMethod::CloseOk(_))
        ),
        "expected close-ok, got {reply:?}"
    );
}

#[tokio::test]
async fn lapin_connection_close_succeeds() {
    let (_broker, conn, ch) = broker_with_channel().await;
    assert!(ch.status().connected());
    conn.close(200, "bye".into())
        .await
        .expect("connection.close");
    assert!(!conn.status().connected());
}

#[tokio::test]
async fn channel_close_from_client_gets_close_ok() {
    let broker = TestBroker::start();
    let mut raw = broker.raw_open().await;
    raw.open_channel(5).await;
    let (ch, reply) = raw.rpc(5, channel_close()).await;
    assert_eq!(ch, 5);
    assert!(
        matches!(reply, AMQPClass::Channel(channel::AMQPMethod::CloseOk(_))),
        "{reply:?}"
    );
    // The channel number can be reused.
    raw.open_channel(5).await;
}

#[tokio::test]
async fn channel_flow_active_true_is_confirmed() {
    let (_broker, _conn, ch) = broker_with_channel().await;
    let active = ch
        .channel_flow(ChannelFlowOptions { active: true })
        .await
        .expect("channel.flow");
    assert!(active);
}

#[tokio::test]
async fn channel_flow_active_false_is_not_implemented() {
    let (_broker, mut raw) = broker_with_raw_channel().await;
    raw.send_method(
        1,
        AMQPClass::Channel(channel::AMQPMethod::Flow(channel::Flow { active: false })),
    )
    .await;
    assert_eq!(
        raw.expect_connection_close().await,
        expected_close(not_implemented("active=false"), 20, 20)
    );
}

#[tokio::test]
async fn many_channels_on_one_connection_work_independently() {
    let broker = TestBroker::start();
    let conn = broker.connect().await;
    let mut channels = Vec::new();
    for _ in 0..20 {
        channels.push(conn.create_channel().await.expect("create channel"));
    }
    let ids: std::collections::HashSet<u16> = channels.iter().map(|c| c.id()).collect();
    assert_eq!(ids.len(), 20);
    for ch in &channels {
        let q = declare_tmp_queue(ch).await;
        assert!(q.starts_with("amq.gen-"));
    }
}
