//! Vhosts are separate worlds: the same queue and exchange names in two vhosts are different
//! objects, each vhost has its own `amq.*` exchanges; connection.open of a vhost that does not
//! exist, or that the user has no permissions on, is refused with 530 (class 10, method 40).

use lapin::ExchangeKind;

use super::support::*;
use crate::common::*;

/// Vhosts `v1` and `v2`, alice with every permission on both.
fn two_vhosts() -> Definitions {
    Definitions::new()
        .vhost("v1")
        .vhost("v2")
        .user("alice", "pw", &[])
        .permit_all("alice", "v1")
        .permit_all("alice", "v2")
}

#[tokio::test]
async fn the_same_queue_and_exchange_names_in_two_vhosts_are_independent() {
    let node = Node::with(&two_vhosts());
    let (_c1, v1) = channel_as(node.addr(), "alice", "pw", "v1").await;
    let (_c2, v2) = channel_as(node.addr(), "alice", "pw", "v2").await;
    for ch in [&v1, &v2] {
        declare_queue(ch, "orders").await;
        declare_queue(ch, "audit").await;
    }
    // Same exchange name, different types: no inequivalence across vhosts.
    declare_exchange(&v1, "events", ExchangeKind::Fanout).await;
    declare_exchange(&v2, "events", ExchangeKind::Direct).await;
    bind_queue(&v1, "orders", "events", "").await;
    bind_queue(&v2, "audit", "events", "audit").await;

    publish(&v1, "events", "anything", b"v1 event").await;
    publish(&v2, "", "orders", b"v2 direct").await;
    sync(&v1).await;
    sync(&v2).await;
    assert_eq!(drain_bodies(&v1, "orders").await, ["v1 event"]);
    assert_eq!(drain_bodies(&v2, "orders").await, ["v2 direct"]);
    assert_eq!(message_count(&v1, "audit").await, 0);
    assert_eq!(message_count(&v2, "audit").await, 0);

    // Deleting v1's queue leaves v2's alone.
    delete_queue(&v1, "orders").await;
    assert_eq!(
        expect_amqp_error(declare_queue_passive(&v1, "orders").await),
        not_found("no queue 'orders' in vhost 'v1'")
    );
    declare_queue_passive(&v2, "orders")
        .await
        .expect("v2's queue is still there");
}

#[tokio::test]
async fn each_vhost_has_its_own_amq_exchanges() {
    let node = Node::with(&two_vhosts());
    let (_c1, v1) = channel_as(node.addr(), "alice", "pw", "v1").await;
    let (_c2, v2) = channel_as(node.addr(), "alice", "pw", "v2").await;
    for ch in [&v1, &v2] {
        for (name, kind) in [
            ("amq.direct", ExchangeKind::Direct),
            ("amq.fanout", ExchangeKind::Fanout),
            ("amq.topic", ExchangeKind::Topic),
            ("amq.headers", ExchangeKind::Headers),
            ("amq.match", ExchangeKind::Headers),
        ] {
            declare_exchange_passive(ch, name, kind)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
        declare_queue(ch, "q").await;
    }
    bind_queue(&v1, "q", "amq.direct", "k").await;
    bind_queue(&v2, "q", "amq.topic", "k.#").await;
    // v2's amq.direct has no binding: the message goes nowhere; v1's amq.topic likewise.
    publish(&v2, "amq.direct", "k", b"lost in v2").await;
    publish(&v1, "amq.topic", "k.x", b"lost in v1").await;
    publish(&v1, "amq.direct", "k", b"v1 direct").await;
    publish(&v2, "amq.topic", "k.x", b"v2 topic").await;
    sync(&v1).await;
    sync(&v2).await;
    assert_eq!(drain_bodies(&v1, "q").await, ["v1 direct"]);
    assert_eq!(drain_bodies(&v2, "q").await, ["v2 topic"]);
}

#[tokio::test]
async fn an_unknown_vhost_is_refused_with_530_at_connection_open() {
    let node = Node::with(&two_vhosts());
    assert_eq!(
        open_refusal(node.addr(), "alice", "pw", "v3").await,
        refused_at_open(not_allowed("vhost v3 not found"))
    );
    assert!(
        try_connect_as(node.addr(), "alice", "pw", "v3")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_user_without_permissions_on_a_vhost_is_refused_with_530_at_connection_open() {
    let definitions = two_vhosts().user("bob", "pw", &[]).permit_all("bob", "v2");
    let node = Node::with(&definitions);
    assert_eq!(
        open_refusal(node.addr(), "bob", "pw", "v1").await,
        refused_at_open(vhost_refused("v1", "bob"))
    );
    assert!(
        try_connect_as(node.addr(), "bob", "pw", "v1")
            .await
            .is_err()
    );
    // bob's own vhost is fine.
    let (_conn, ch) = channel_as(node.addr(), "bob", "pw", "v2").await;
    declare_tmp_queue(&ch).await;
}

#[tokio::test]
async fn empty_permissions_still_open_the_vhost_but_allow_nothing() {
    // As RabbitMQ: vhost access is having a permission record at all; "" matches no name.
    let node = Node::with(&alice_on_v("", "", ""));
    let (_conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    assert_eq!(
        declare_queue_error(&ch, "q", Default::default()).await,
        refused("queue", "q", "v", "alice")
    );
}
