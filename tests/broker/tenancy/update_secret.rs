//! connection.update-secret on a running connection: the user's own password is accepted with
//! update-secret-ok and the connection goes on; any other secret is refused (530). RabbitMQ
//! 3.10's internal backend accepts any secret (`state_can_expire() -> false`, so nothing is
//! checked); the issue asks warren to check it, and these tests are warren's alone.

use amq_protocol::protocol::{AMQPClass, connection};

use super::support::*;
use crate::common::*;

async fn expect_update_secret_ok(raw: &mut RawClient) {
    match raw.recv_method().await {
        (0, AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(_))) => {}
        other => panic!("expected connection.update-secret-ok, got {other:?}"),
    }
}

#[tokio::test]
async fn the_user_s_own_password_as_new_secret_is_accepted() {
    let node = Node::with(&alice_on_v("^ok\\.", ".*", ".*"));
    let mut raw = raw_channel_as(node.addr(), "alice", "pw", "v").await;
    raw.send_method(0, update_secret("pw", "rotation")).await;
    expect_update_secret_ok(&mut raw).await;
    // The connection and its channel go on as before.
    raw.open_channel(2).await;
    raw.publish(1, "amq.direct", "k", false, false, b"after")
        .await;
    raw.open_channel(3).await;
}

/// The issue asks for the secret to be checked: for a password user, the new secret must be its
/// password. RabbitMQ 3.10's internal backend accepts any secret here (its state cannot expire,
/// so `update_state` is a no-op): this one is warren's own rule, not RabbitMQ's.
#[tokio::test]
async fn a_secret_that_is_not_the_password_closes_the_connection_with_530() {
    let node = Node::with(&alice_on_v("^ok\\.", ".*", ".*"));
    let addr = node.addr();
    let mut raw = raw_channel_as(addr, "alice", "pw", "v").await;
    raw.send_method(0, update_secret("not-the-password", "rotation"))
        .await;
    let (code, text, class, method) = raw.expect_connection_close().await;
    assert_eq!(
        (code, text.as_str(), class, method),
        (
            530,
            "NOT_ALLOWED - New secret was refused by one of the backends",
            10,
            70
        )
    );
    // The password is unchanged: a new connection logs in with it.
    connect_as(addr, "alice", "pw", "v").await;
}
