//! Limits, as RabbitMQ 3.10 enforces them: vhost `max-connections` and user
//! `max-connections` at connection.open (530, class 10 method 40), user `max-channels` at
//! channel.open across all the user's connections (530 closes the connection), and vhost
//! `max-queues` at the declaration of a new queue (406 closes the channel). 0 allows none.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use amq_protocol::types::FieldTable;
use serde_json::json;

use super::support::*;
use crate::common::*;

/// Polls connection.open of `vhost` as `user` until it succeeds: a closed connection leaves
/// the broker's count asynchronously, as RabbitMQ's connection tracking does.
async fn connect_eventually(addr: SocketAddr, user: &str, vhost: &str) -> lapin::Connection {
    let deadline = Instant::now() + WAIT;
    loop {
        match try_connect_as(addr, user, "pw", vhost).await {
            Ok(conn) => return conn,
            Err(e) => {
                assert!(Instant::now() < deadline, "still refused: {e:?}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn two_users_on_v() -> Definitions {
    alice_on_v(".*", ".*", ".*")
        .vhost("w")
        .permit_all("alice", "w")
        .user("bob", "pw", &[])
        .permit_all("bob", "v")
        .permit_all("bob", "w")
}

#[tokio::test]
async fn vhost_max_connections_refuses_the_next_connection_until_one_closes() {
    let definitions = two_users_on_v().vhost_limits("v", json!({"max-connections": 1}));
    let node = Node::with(&definitions);
    let addr = node.addr();
    let (first, ch) = channel_as(addr, "alice", "pw", "v").await;
    let limit = |user: &str| {
        refused_at_open(not_allowed(format!(
            "access to vhost 'v' refused for user '{user}': connection limit (1) is reached"
        )))
    };
    assert_eq!(open_refusal(addr, "alice", "pw", "v").await, limit("alice"));
    // The limit is the vhost's: any user is refused; another vhost is not limited.
    assert_eq!(open_refusal(addr, "bob", "pw", "v").await, limit("bob"));
    let (_w, _) = channel_as(addr, "bob", "pw", "w").await;
    // The first connection is unharmed.
    declare_tmp_queue(&ch).await;
    first.close(200, "bye".into()).await.expect("close");
    let again = connect_eventually(addr, "bob", "v").await;
    assert_eq!(open_refusal(addr, "alice", "pw", "v").await, limit("alice"));
    drop(again);
}

#[tokio::test]
async fn vhost_max_connections_0_allows_none() {
    let definitions = alice_on_v(".*", ".*", ".*").vhost_limits("v", json!({"max-connections": 0}));
    let node = Node::with(&definitions);
    assert_eq!(
        open_refusal(node.addr(), "alice", "pw", "v").await,
        refused_at_open(not_allowed(
            "access to vhost 'v' refused for user 'alice': connection limit (0) is reached"
        ))
    );
}

#[tokio::test]
async fn a_negative_limit_is_no_limit() {
    let definitions = alice_on_v(".*", ".*", ".*")
        .vhost_limits("v", json!({"max-connections": -1, "max-queues": -1}));
    let node = Node::with(&definitions);
    let mut connections = Vec::new();
    for _ in 0..3 {
        let (conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
        declare_tmp_queue(&ch).await;
        connections.push(conn);
    }
}

#[tokio::test]
async fn connection_limits_are_checked_before_vhost_access() {
    // RabbitMQ's order at connection.open: the vhost's limit, the user's limit, then access.
    let definitions = alice_on_v(".*", ".*", ".*")
        .vhost_limits("v", json!({"max-connections": 0}))
        .user_json(json!({"name": "bob", "password": "pw", "tags": [],
                          "limits": {"max-connections": 0}}))
        .vhost("w");
    let node = Node::with(&definitions);
    assert_eq!(
        open_refusal(node.addr(), "bob", "pw", "v").await,
        refused_at_open(not_allowed(
            "access to vhost 'v' refused for user 'bob': connection limit (0) is reached"
        ))
    );
    assert_eq!(
        open_refusal(node.addr(), "bob", "pw", "w").await,
        refused_at_open(not_allowed(
            "connection refused for user 'bob': user connection limit (0) is reached"
        ))
    );
}

#[tokio::test]
async fn vhost_max_queues_refuses_new_queues_but_not_redeclarations() {
    let definitions = alice_on_v(".*", ".*", ".*").vhost_limits("v", json!({"max-queues": 2}));
    let node = Node::with(&definitions);
    let (conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    declare_queue(&ch, "q1").await;
    declare_queue(&ch, "q2").await;
    let limit = |q: &str| {
        precondition_failed(format!(
            "cannot declare queue '{q}': queue limit in vhost 'v' (2) is reached"
        ))
    };
    assert_eq!(
        declare_queue_error(&ch, "q3", FieldTable::default()).await,
        limit("q3")
    );
    let ch = conn.create_channel().await.expect("channel");
    declare_queue(&ch, "q1").await;
    // A server-named queue counts too; its generated name is in the text.
    let (code, text) = expect_amqp_error(
        ch.queue_declare("".into(), exclusive(), FieldTable::default())
            .await,
    );
    assert_eq!(code, 406, "{text}");
    let generated = text
        .strip_prefix("PRECONDITION_FAILED - cannot declare queue '")
        .and_then(|t| t.strip_suffix("': queue limit in vhost 'v' (2) is reached"))
        .unwrap_or_else(|| panic!("unexpected text {text}"));
    assert!(generated.starts_with("amq.gen-"), "{generated}");
    // Deleting one makes room.
    let ch = conn.create_channel().await.expect("channel");
    delete_queue(&ch, "q1").await;
    declare_queue(&ch, "q3").await;
}

#[tokio::test]
async fn vhost_max_queues_is_checked_before_a_dead_letter_exchange_s_permissions() {
    // RabbitMQ's order for a new queue: configure, the queue limit, then the DLX checks.
    let definitions = alice_on_v(".*", "", ".*").vhost_limits("v", json!({"max-queues": 0}));
    let node = Node::with(&definitions);
    let (_conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    let args = table(vec![("x-dead-letter-exchange", long_str("dlx"))]);
    assert_eq!(
        declare_queue_error(&ch, "q", args).await,
        precondition_failed("cannot declare queue 'q': queue limit in vhost 'v' (0) is reached")
    );
}

#[tokio::test]
async fn user_max_connections_counts_the_user_s_connections_in_every_vhost() {
    let definitions = two_users_on_v()
        .user_json(json!({"name": "carol", "password": "pw", "tags": [],
                          "limits": {"max-connections": 1}}))
        .permit_all("carol", "v")
        .permit_all("carol", "w");
    let node = Node::with(&definitions);
    let addr = node.addr();
    let first = connect_as(addr, "carol", "pw", "v").await;
    let limit = refused_at_open(not_allowed(
        "connection refused for user 'carol': user connection limit (1) is reached",
    ));
    assert_eq!(open_refusal(addr, "carol", "pw", "v").await, limit);
    assert_eq!(open_refusal(addr, "carol", "pw", "w").await, limit);
    // Other users are not limited by carol's limit.
    let _b1 = connect_as(addr, "bob", "pw", "v").await;
    let _b2 = connect_as(addr, "bob", "pw", "v").await;
    first.close(200, "bye".into()).await.expect("close");
    connect_eventually(addr, "carol", "w").await;
}

#[tokio::test]
async fn user_max_channels_counts_the_user_s_channels_on_all_connections() {
    let definitions = Definitions::new()
        .vhost("v")
        .user_json(json!({"name": "dave", "password": "pw", "tags": [],
                          "limits": {"max-channels": 2}}))
        .permit_all("dave", "v");
    let node = Node::with(&definitions);
    let addr = node.addr();
    // raw_channel_as opens channel 1 on each connection: two channels in all.
    let mut first = raw_channel_as(addr, "dave", "pw", "v").await;
    let mut second = raw_channel_as(addr, "dave", "pw", "v").await;
    second.send_method(2, channel_open()).await;
    assert_eq!(
        second.expect_connection_close().await,
        (
            530,
            "NOT_ALLOWED - number of channels opened for user 'dave' has reached the maximum allowed user limit of (2)".to_string(),
            0,
            0
        )
    );
    // The first connection's channel works on, and closing it makes room for another.
    first.rpc(1, channel_close()).await;
    first.open_channel(2).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let mut third = raw_logged_in(addr, "dave", "pw").await;
        third.send_method(0, connection_open("v")).await;
        third.expect_open_ok().await;
        third.send_method(1, channel_open()).await;
        match third.recv_method().await {
            (1, amq_protocol::protocol::AMQPClass::Channel(_)) => break,
            other => assert!(Instant::now() < deadline, "still refused: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn user_max_channels_0_allows_connections_but_no_channel() {
    let definitions = Definitions::new()
        .vhost("v")
        .user_json(json!({"name": "erin", "password": "pw", "tags": [],
                          "limits": {"max-channels": 0}}))
        .permit_all("erin", "v");
    let node = Node::with(&definitions);
    let mut raw = raw_logged_in(node.addr(), "erin", "pw").await;
    raw.send_method(0, connection_open("v")).await;
    raw.expect_open_ok().await;
    raw.send_method(1, channel_open()).await;
    assert_eq!(
        raw.expect_connection_close().await,
        (
            530,
            "NOT_ALLOWED - number of channels opened for user 'erin' has reached the maximum allowed user limit of (0)".to_string(),
            0,
            0
        )
    );
}
