//! connection.update-secret on a running connection: the user's own password is accepted with
//! update-secret-ok, and the connection goes on.

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
