//! Topic permissions: on a topic exchange they name, basic.publish needs the routing key to
//! match the write expression, and queue.bind/unbind or exchange.bind/unbind with it as the
//! source need the binding key to match the read expression, `{username}` and `{vhost}`
//! substituted first. Exchanges without a topic permission, and exchanges of other types,
//! are not restricted.

use amq_protocol::types::FieldTable;
use lapin::ExchangeKind;
use lapin::options::QueueBindOptions;

use super::support::*;
use crate::common::*;

/// alice may do anything on `v`, but on amq.topic may only publish `orders.*` keys and bind
/// `orders.eu.*` keys; root may do anything.
fn orders_only() -> Definitions {
    alice_on_v(".*", ".*", ".*")
        .topic_permit("alice", "v", "amq.topic", "^orders\\.", "^orders\\.eu\\.")
        .user("root", "pw", &[])
        .permit_all("root", "v")
}

#[tokio::test]
async fn publish_to_a_topic_exchange_needs_the_routing_key_to_match_write() {
    let node = Node::with(&orders_only());
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    declare_queue(&root, "all").await;
    bind_queue(&root, "all", "amq.topic", "#").await;
    let mut raw = raw_channel_as(node.addr(), "alice", "pw", "v").await;
    raw.publish(1, "amq.topic", "orders.new", false, false, b"allowed")
        .await;
    wait_message_count(&root, "all", 1).await;
    assert_eq!(
        raw_publish_refusal(&mut raw, "amq.topic", "billing.new").await,
        refused_publish(topic_refused("billing.new", "amq.topic", "v", "alice"))
    );
    // The expression matches anywhere unless anchored: "x.orders.y" is refused by ^.
    raw.open_channel(1).await;
    assert_eq!(
        raw_publish_refusal(&mut raw, "amq.topic", "x.orders.new").await,
        refused_publish(topic_refused("x.orders.new", "amq.topic", "v", "alice"))
    );
    assert_eq!(drain_bodies(&root, "all").await, ["allowed"]);
}

#[tokio::test]
async fn exchanges_without_a_topic_permission_are_not_restricted() {
    let node = Node::with(&orders_only());
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    declare_queue(&root, "all").await;
    declare_exchange(&root, "other.topic", ExchangeKind::Topic).await;
    bind_queue(&root, "all", "other.topic", "#").await;
    bind_queue(&root, "all", "amq.direct", "billing.new").await;
    let mut raw = raw_channel_as(node.addr(), "alice", "pw", "v").await;
    raw.publish(
        1,
        "other.topic",
        "billing.new",
        false,
        false,
        b"other topic",
    )
    .await;
    raw.publish(1, "amq.direct", "billing.new", false, false, b"direct")
        .await;
    wait_message_count(&root, "all", 2).await;
    let (_conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    declare_queue(&ch, "mine").await;
    bind_queue(&ch, "mine", "other.topic", "billing.#").await;
}

async fn bind(ch: &lapin::Channel, queue: &str, exchange: &str, key: &str) -> lapin::Result<()> {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
}

#[tokio::test]
async fn binding_to_a_topic_exchange_needs_the_binding_key_to_match_read() {
    let node = Node::with(&orders_only());
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    declare_queue(&root, "q").await;
    bind_queue(&root, "q", "amq.topic", "orders.#").await;
    let (conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    bind(&ch, "q", "amq.topic", "orders.eu.#")
        .await
        .expect("orders.eu.# matches read");
    assert_eq!(
        expect_amqp_error(bind(&ch, "q", "amq.topic", "orders.#").await),
        topic_refused("orders.#", "amq.topic", "v", "alice")
    );
    // Unbinding is checked the same way: root's binding stays.
    let ch = conn.create_channel().await.expect("channel");
    assert_eq!(
        expect_amqp_error(
            ch.queue_unbind(
                "q".into(),
                "amq.topic".into(),
                "orders.#".into(),
                FieldTable::default()
            )
            .await
        ),
        topic_refused("orders.#", "amq.topic", "v", "alice")
    );
    // An exchange-to-exchange binding with amq.topic as its source, likewise.
    let ch = conn.create_channel().await.expect("channel");
    declare_exchange(&ch, "fan", ExchangeKind::Fanout).await;
    assert_eq!(
        expect_amqp_error(
            ch.exchange_bind(
                "fan".into(),
                "amq.topic".into(),
                "billing.#".into(),
                Default::default(),
                FieldTable::default()
            )
            .await
        ),
        topic_refused("billing.#", "amq.topic", "v", "alice")
    );
    publish(&root, "amq.topic", "orders.us.1", b"via root's binding").await;
    sync(&root).await;
    assert_eq!(drain_bodies(&root, "q").await, ["via root's binding"]);
}

#[tokio::test]
async fn username_and_vhost_in_a_topic_permission_are_the_connection_s() {
    let definitions = Definitions::new()
        .vhost("v")
        .user("alice", "pw", &[])
        .user("bob", "pw", &[])
        .user("root", "pw", &[])
        .permit_all("alice", "v")
        .permit_all("bob", "v")
        .permit_all("root", "v")
        .topic_permit("alice", "v", "amq.topic", "^{username}\\.", "^{vhost}\\.")
        .topic_permit("bob", "v", "amq.topic", "^{username}\\.", "^{vhost}\\.");
    let node = Node::with(&definitions);
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    declare_queue(&root, "all").await;
    bind_queue(&root, "all", "amq.topic", "#").await;
    for (me, other) in [("alice", "bob"), ("bob", "alice")] {
        let mut raw = raw_channel_as(node.addr(), me, "pw", "v").await;
        let own = format!("{me}.x");
        raw.publish(1, "amq.topic", &own, false, false, own.as_bytes())
            .await;
        let theirs = format!("{other}.x");
        assert_eq!(
            raw_publish_refusal(&mut raw, "amq.topic", &theirs).await,
            refused_publish(topic_refused(&theirs, "amq.topic", "v", me))
        );
        let (_conn, ch) = channel_as(node.addr(), me, "pw", "v").await;
        let q = declare_tmp_queue(&ch).await;
        bind(&ch, &q, "amq.topic", "v.#")
            .await
            .expect("{vhost} is v");
        assert_eq!(
            expect_amqp_error(bind(&ch, &q, "amq.topic", &format!("{me}.#")).await),
            topic_refused(&format!("{me}.#"), "amq.topic", "v", me)
        );
    }
    wait_message_count(&root, "all", 2).await;
    assert_eq!(drain_bodies(&root, "all").await, ["alice.x", "bob.x"]);
}

#[tokio::test]
async fn an_empty_write_expression_allows_only_the_empty_routing_key() {
    let definitions = alice_on_v(".*", ".*", ".*").topic_permit("alice", "v", "amq.topic", "", "");
    let node = Node::with(&definitions);
    let mut raw = raw_channel_as(node.addr(), "alice", "pw", "v").await;
    raw.publish(1, "amq.topic", "", false, false, b"empty key")
        .await;
    assert_eq!(
        raw_publish_refusal(&mut raw, "amq.topic", "a").await,
        refused_publish(topic_refused("a", "amq.topic", "v", "alice"))
    );
}

#[tokio::test]
async fn publishing_to_an_internal_topic_exchange_is_refused_as_internal_first() {
    // RabbitMQ checks write, looks the exchange up, refuses an internal one, and only then
    // checks the routing key.
    let definitions = orders_only().topic_permit("alice", "v", "inner", "^orders\\.", "");
    let node = Node::with(&definitions);
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    let internal = lapin::options::ExchangeDeclareOptions {
        internal: true,
        ..Default::default()
    };
    declare_exchange_as(
        &root,
        "inner",
        ExchangeKind::Topic,
        internal,
        FieldTable::default(),
    )
    .await;
    let mut raw = raw_channel_as(node.addr(), "alice", "pw", "v").await;
    assert_eq!(
        raw_publish_refusal(&mut raw, "inner", "billing.new").await,
        refused_publish(access_refused(
            "cannot publish to internal exchange 'inner' in vhost 'v'"
        ))
    );
}
