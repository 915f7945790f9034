//! Changes made while clients are connected (in-process, through the broker's tenancy
//! operations), as RabbitMQ 3.10 applies them: permissions and topic permissions to the
//! connection's next checks (on channels that have not passed that check before: RabbitMQ's
//! channels remember passed checks until they go idle), without closing anything; user and
//! vhost limits to the next connection.open or channel.open, read when it happens.

use amq_protocol::types::FieldTable;
use warren::broker::vhost::{VhostLimits, VhostSettings};

use super::in_process::*;
use super::support::*;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_changed_while_connected_apply_to_the_connection_s_next_checks() {
    let dir = DataDir::new();
    let running = start_in_process(&dir.0).await;
    let broker = running.broker.clone();
    add_user(&broker, "alice", "pw");
    add_vhost(&broker, "v", &["alice"]);
    let addr = addr(&running);
    let (conn, ch) = channel_as(addr, "alice", "pw", "v").await;
    declare_queue(&ch, "no.before").await;

    broker
        .set_permissions("alice", "v", "^ok\\.", ".*", ".*")
        .expect("set_permissions");
    let ch = conn.create_channel().await.expect("channel");
    assert_eq!(
        declare_queue_error(&ch, "no.after", FieldTable::default()).await,
        refused("queue", "no.after", "v", "alice")
    );
    let ch = conn.create_channel().await.expect("channel");
    declare_queue(&ch, "ok.after").await;

    // Cleared: the open connection stays open but may do nothing; new ones are refused.
    broker
        .clear_permissions("alice", "v")
        .expect("clear_permissions");
    let ch = conn.create_channel().await.expect("channel");
    assert_eq!(
        declare_queue_error(&ch, "ok.cleared", FieldTable::default()).await,
        refused("queue", "ok.cleared", "v", "alice")
    );
    assert_eq!(
        open_refusal(addr, "alice", "pw", "v").await,
        refused_at_open(vhost_refused("v", "alice"))
    );

    broker
        .set_permissions("alice", "v", ".*", ".*", ".*")
        .expect("set_permissions");
    let ch = conn.create_channel().await.expect("channel");
    declare_queue(&ch, "no.again").await;
    conn.close(200, "bye".into()).await.expect("close");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_permissions_changed_while_connected_apply_to_the_next_publish_checks() {
    let dir = DataDir::new();
    let running = start_in_process(&dir.0).await;
    let broker = running.broker.clone();
    add_user(&broker, "alice", "pw");
    add_vhost(&broker, "v", &["alice"]);
    let mut raw = raw_channel_as(addr(&running), "alice", "pw", "v").await;
    raw.publish(1, "amq.topic", "billing.1", false, false, b"before")
        .await;

    broker
        .set_topic_permission("alice", "v", "amq.topic", "^orders\\.", ".*")
        .expect("set_topic_permission");
    raw.open_channel(2).await;
    raw.publish(2, "amq.topic", "orders.1", false, false, b"allowed")
        .await;
    raw.publish(2, "amq.topic", "billing.2", false, false, b"refused")
        .await;
    assert_eq!(
        raw.expect_channel_close(2).await,
        refused_publish(topic_refused("billing.2", "amq.topic", "v", "alice"))
    );

    broker
        .clear_topic_permissions("alice", "v", None)
        .expect("clear_topic_permissions");
    raw.open_channel(3).await;
    raw.publish(3, "amq.topic", "billing.3", false, false, b"allowed again")
        .await;
    raw.open_channel(4).await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_channel_limit_set_while_connected_applies_to_its_next_channel_open() {
    let dir = DataDir::new();
    let running = start_in_process(&dir.0).await;
    let broker = running.broker.clone();
    add_user(&broker, "alice", "pw");
    add_vhost(&broker, "v", &["alice"]);
    let mut raw = raw_channel_as(addr(&running), "alice", "pw", "v").await;
    raw.open_channel(2).await;

    let mut alice = broker.auth.user("alice").expect("alice").as_ref().clone();
    alice.limits.max_channels = Some(2);
    broker.put_user(alice).expect("put_user");
    raw.send_method(3, channel_open()).await;
    assert_eq!(
        raw.expect_connection_close().await,
        (
            530,
            "NOT_ALLOWED - number of channels opened for user 'alice' has reached the maximum allowed user limit of (2)".to_string(),
            0,
            0
        )
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_set_while_connected_refuse_what_comes_next_and_keep_what_is_open() {
    let dir = DataDir::new();
    let running = start_in_process(&dir.0).await;
    let broker = running.broker.clone();
    add_user(&broker, "alice", "pw");
    add_vhost(&broker, "v", &["alice"]);
    let addr = addr(&running);
    let (conn, ch) = channel_as(addr, "alice", "pw", "v").await;
    declare_queue(&ch, "q1").await;

    let limited = VhostSettings {
        limits: VhostLimits {
            max_connections: Some(1),
            max_queues: Some(1),
        },
        ..VhostSettings::default()
    };
    broker.put_vhost("v", limited).expect("put_vhost");
    assert_eq!(
        open_refusal(addr, "alice", "pw", "v").await,
        refused_at_open(not_allowed(
            "access to vhost 'v' refused for user 'alice': connection limit (1) is reached"
        ))
    );
    assert_eq!(
        declare_queue_error(&ch, "q2", FieldTable::default()).await,
        precondition_failed("cannot declare queue 'q2': queue limit in vhost 'v' (1) is reached")
    );
    // The open connection goes on.
    let ch = conn.create_channel().await.expect("channel");
    publish(&ch, "", "q1", b"still open").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, "q1").await, ["still open"]);

    let mut alice = broker.auth.user("alice").expect("alice").as_ref().clone();
    alice.limits.max_connections = Some(0);
    broker.put_user(alice).expect("put_user");
    broker
        .put_vhost("v", VhostSettings::default())
        .expect("put_vhost");
    assert_eq!(
        open_refusal(addr, "alice", "pw", "v").await,
        refused_at_open(not_allowed(
            "connection refused for user 'alice': user connection limit (0) is reached"
        ))
    );
    assert_works(&conn).await;
    drop(conn);
    running.shutdown().await;
}
