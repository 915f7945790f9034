//! connection.update-secret on a running connection. RabbitMQ 3.10 hands the new secret to
//! every auth backend whose state can expire; its internal backend's cannot
//! (`rabbit_auth_backend_internal:state_can_expire() -> false`), so for users of the internal
//! database `rabbit_access_control:update_state` succeeds whatever the secret is: the broker
//! answers update-secret-ok, and the user's password and permissions are unchanged.

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

#[tokio::test]
async fn any_other_secret_is_accepted_too_and_changes_nothing() {
    let node = Node::with(&alice_on_v("^ok\\.", ".*", ".*"));
    let addr = node.addr();
    let mut raw = raw_channel_as(addr, "alice", "pw", "v").await;
    raw.send_method(0, update_secret("not-the-password", "rotation"))
        .await;
    expect_update_secret_ok(&mut raw).await;
    // Same permissions as before on this connection...
    let declare = |name: &str| {
        AMQPClass::Queue(amq_protocol::protocol::queue::AMQPMethod::Declare(
            amq_protocol::protocol::queue::Declare {
                queue: name.into(),
                ..Default::default()
            },
        ))
    };
    match raw.rpc(1, declare("ok.q")).await {
        (1, AMQPClass::Queue(_)) => {}
        other => panic!("expected queue.declare-ok, got {other:?}"),
    }
    raw.send_method(1, declare("no.q")).await;
    assert_eq!(
        raw.expect_channel_close(1).await,
        expected_close(refused("queue", "no.q", "v", "alice"), 50, 10)
    );
    // ...and the password is still the password: the secret is not stored.
    connect_as(addr, "alice", "pw", "v").await;
    assert_eq!(
        login_refusal(addr, "alice", "not-the-password").await,
        login_refused()
    );
}
