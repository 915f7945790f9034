//! What the data directory remembers: users, vhosts, permissions, topic permissions and limits
//! imported from a definitions file survive a restart without `load_definitions` (graceful
//! or after kill -9); the default user, vhost and permissions are created on the first boot of
//! an empty data directory only, and not at all when that boot loads definitions.

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, channel, exchange, queue};
use amq_protocol::types::FieldTable;
use serde_json::json;

use super::support::*;
use crate::common::*;

/// alice (an impersonator restricted to `ok.*` names, topic keys `orders.*` on amq.topic, 1 connection), bob
/// (full access to `w`), vhost `v` with at most 2 queues, vhost `w` with a durable queue.
fn tenants() -> Definitions {
    Definitions::new()
        .vhost("v")
        .vhost("w")
        .vhost_limits("v", json!({"max-queues": 2}))
        .user_json(
            json!({"name": "alice", "password": "pw", "tags": ["impersonator"],
                          "limits": {"max-connections": 1}}),
        )
        .user("bob", "bob-pw", &[])
        .permit("alice", "v", "^ok\\.", "^(ok\\.|amq\\.topic$)", "^ok\\.")
        .topic_permit("alice", "v", "amq.topic", "^orders\\.", ".*")
        .permit_all("bob", "w")
        .durable_queue("w", "from-file")
}

/// Everything [`tenants`] set up is in force on `node`.
async fn assert_tenants_in_force(node: &Node) {
    let addr = node.addr();
    assert_eq!(login_refusal(addr, "alice", "wrong").await, login_refused());
    assert_eq!(login_refusal(addr, "guest", "guest").await, login_refused());
    assert_eq!(
        open_refusal(addr, "alice", "pw", "w").await,
        refused_at_open(vhost_refused("w", "alice"))
    );
    assert_eq!(
        open_refusal(addr, "bob", "bob-pw", "v").await,
        refused_at_open(vhost_refused("v", "bob"))
    );
    let (_bob, bob) = channel_as(addr, "bob", "bob-pw", "w").await;
    declare_queue_passive(&bob, "from-file")
        .await
        .expect("the definitions' queue");

    let mut raw = raw_channel_as(addr, "alice", "pw", "v").await;
    // alice's user limit: one connection.
    assert_eq!(
        open_refusal(addr, "alice", "pw", "v").await,
        refused_at_open(not_allowed(
            "connection refused for user 'alice': user connection limit (1) is reached"
        ))
    );
    // Permissions: configure only on ok.*.
    declare_via_raw(&mut raw, "ok.1").await.expect("ok.1");
    assert_eq!(
        declare_via_raw(&mut raw, "no.1").await,
        Err(expected_close(
            refused("queue", "no.1", "v", "alice"),
            50,
            10
        ))
    );
    // The vhost's queue limit: ok.1 and ok.2 fill it.
    raw.open_channel(1).await;
    declare_via_raw(&mut raw, "ok.2").await.expect("ok.2");
    assert_eq!(
        declare_via_raw(&mut raw, "ok.3").await,
        Err(expected_close(
            precondition_failed(
                "cannot declare queue 'ok.3': queue limit in vhost 'v' (2) is reached"
            ),
            50,
            10
        ))
    );
    // Topic permissions.
    raw.open_channel(1).await;
    assert_eq!(
        raw_publish_refusal(&mut raw, "amq.topic", "billing.1").await,
        refused_publish(topic_refused("billing.1", "amq.topic", "v", "alice"))
    );
    // Tags: alice is an impersonator.
    raw.open_channel(1).await;
    let mut frames = publish_method_frame(1, "amq.topic", "orders.1");
    frames.extend(encode(&AMQPFrame::Header(
        1,
        AMQPContentHeader {
            class_id: 60,
            body_size: 2,
            properties: BasicProperties::default().with_user_id("bob".into()),
        },
    )));
    frames.extend(raw_frame(3, 1, b"hi", 0xCE));
    raw.send_bytes(&frames).await;
    let passive = AMQPClass::Exchange(exchange::AMQPMethod::Declare(exchange::Declare {
        exchange: "amq.direct".into(),
        kind: "direct".into(),
        passive: true,
        ..Default::default()
    }));
    match raw.rpc(1, passive).await {
        (1, AMQPClass::Exchange(exchange::AMQPMethod::DeclareOk(_))) => {}
        other => panic!("publishing as bob must be allowed, got {other:?}"),
    }
}

/// A durable queue.declare of `name` on channel 1: declare-ok, or the channel.close (code, text,
/// class, method), answered.
async fn declare_via_raw(raw: &mut RawClient, name: &str) -> Result<(), (u16, String, u16, u16)> {
    let declare = AMQPClass::Queue(queue::AMQPMethod::Declare(queue::Declare {
        queue: name.into(),
        durable: true,
        ..Default::default()
    }));
    match raw.rpc(1, declare).await {
        (1, AMQPClass::Queue(queue::AMQPMethod::DeclareOk(_))) => Ok(()),
        (1, AMQPClass::Channel(channel::AMQPMethod::Close(c))) => {
            raw.send_method(1, channel_close_ok()).await;
            Err((
                c.reply_code,
                c.reply_text.to_string(),
                c.class_id,
                c.method_id,
            ))
        }
        other => panic!("unexpected reply to queue.declare: {other:?}"),
    }
}

async fn definitions_survive_a_restart_without_load_definitions(crash: bool) {
    let mut node = Node::with(&tenants());
    // Nothing declared yet: the first boot has the same rules as the restarts.
    {
        let (_conn, ch) = channel_as(node.addr(), "bob", "bob-pw", "w").await;
        declare_durable_queue(&ch, "marker").await;
    }
    if crash {
        node.kill9();
    } else {
        node.terminate();
    }
    node.boot("");
    let (_conn, ch) = channel_as(node.addr(), "bob", "bob-pw", "w").await;
    declare_queue_passive(&ch, "marker")
        .await
        .expect("the durable queue is back");
    assert_tenants_in_force(&node).await;
}

#[tokio::test]
async fn definitions_survive_a_graceful_restart_without_load_definitions() {
    definitions_survive_a_restart_without_load_definitions(false).await;
}

#[tokio::test]
async fn definitions_survive_kill_9_and_a_restart_without_load_definitions() {
    definitions_survive_a_restart_without_load_definitions(true).await;
}

#[tokio::test]
async fn definitions_are_imported_at_every_boot_over_what_the_directory_holds() {
    let mut node = Node::with(&tenants());
    node.terminate();
    // The second file changes alice's password and adds carol; bob is not in it, but stays.
    let second = Definitions::new()
        .vhost("v")
        .user("alice", "new-pw", &[])
        .user("carol", "pw", &[])
        .permit_all("carol", "v");
    node.boot_with(&second, "");
    let addr = node.addr();
    assert_eq!(login_refusal(addr, "alice", "pw").await, login_refused());
    connect_as(addr, "alice", "new-pw", "v").await;
    connect_as(addr, "carol", "pw", "v").await;
    connect_as(addr, "bob", "bob-pw", "w").await;
}

#[tokio::test]
async fn the_default_user_is_created_on_the_first_boot_only() {
    let mut node = Node::new();
    node.boot(
        r#"default_user = "admin"
default_pass = "pw1"
default_vhost = "home"
default_permissions = ["^admin\\.", ".*", ".*"]
"#,
    );
    let addr = node.addr();
    assert_eq!(login_refusal(addr, "guest", "guest").await, login_refused());
    assert_eq!(
        open_refusal(addr, "admin", "pw1", "/").await,
        refused_at_open(not_allowed("vhost / not found"))
    );
    {
        let (conn, ch) = channel_as(addr, "admin", "pw1", "home").await;
        declare_durable_queue(&ch, "admin.q").await;
        let ch = conn.create_channel().await.expect("channel");
        assert_eq!(
            declare_queue_error(&ch, "other.q", FieldTable::default()).await,
            refused("queue", "other.q", "home", "admin")
        );
    }
    node.terminate();
    node.boot(
        r#"default_user = "other"
default_pass = "pw2"
default_vhost = "elsewhere"
"#,
    );
    let addr = node.addr();
    assert_eq!(login_refusal(addr, "other", "pw2").await, login_refused());
    assert_eq!(login_refusal(addr, "guest", "guest").await, login_refused());
    assert_eq!(
        open_refusal(addr, "admin", "pw1", "elsewhere").await,
        refused_at_open(not_allowed("vhost elsewhere not found"))
    );
    let (conn, ch) = channel_as(addr, "admin", "pw1", "home").await;
    declare_queue_passive(&ch, "admin.q")
        .await
        .expect("admin's queue is back");
    let ch = conn.create_channel().await.expect("channel");
    assert_eq!(
        declare_queue_error(&ch, "other.q", FieldTable::default()).await,
        refused("queue", "other.q", "home", "admin"),
        "the first boot's default_permissions are kept"
    );
}

#[tokio::test]
async fn a_first_boot_with_load_definitions_creates_no_default_user_or_vhost() {
    let mut node = Node::with(&alice_on_v(".*", ".*", ".*"));
    let addr = node.addr();
    assert_eq!(login_refusal(addr, "guest", "guest").await, login_refused());
    assert_eq!(
        open_refusal(addr, "alice", "pw", "/").await,
        refused_at_open(not_allowed("vhost / not found"))
    );
    // Nor on a later boot without definitions: the directory was seeded (with nothing).
    node.terminate();
    node.boot("");
    let addr = node.addr();
    assert_eq!(login_refusal(addr, "guest", "guest").await, login_refused());
    connect_as(addr, "alice", "pw", "v").await;
}
