//! Write and read permissions, where RabbitMQ 3.10's channel checks them: basic.publish needs
//! write on the exchange (the default exchange is `amq.default`), before the exchange is looked
//! up; basic.consume, basic.get and queue.purge need read on the queue; queue.bind/unbind and
//! exchange.bind/unbind need write on the destination, then read on the source.

use amq_protocol::types::FieldTable;
use lapin::ExchangeKind;
use lapin::options::{BasicConsumeOptions, QueueBindOptions};

use super::support::*;
use crate::common::*;

/// alice with `configure`, `write`, `read` on `v`, and `root`, who may do anything there.
fn alice_and_root(configure: &str, write: &str, read: &str) -> Definitions {
    alice_on_v(configure, write, read)
        .user("root", "pw", &[])
        .permit_all("root", "v")
}

#[tokio::test]
async fn publish_needs_write_on_the_exchange_checked_before_it_is_looked_up() {
    let node = Node::with(&alice_and_root("", "^ok\\.", ""));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    declare_queue(&root, "q").await;
    for x in ["ok.x", "no.x"] {
        declare_exchange(&root, x, ExchangeKind::Fanout).await;
        bind_queue(&root, "q", x, "").await;
    }
    let mut raw = raw_channel_as(node.addr(), "alice", "pw", "v").await;
    raw.publish(1, "ok.x", "", false, false, b"allowed").await;
    wait_message_count(&root, "q", 1).await;
    assert_eq!(
        raw_publish_refusal(&mut raw, "no.x", "").await,
        refused_publish(refused("exchange", "no.x", "v", "alice"))
    );
    raw.open_channel(1).await;
    assert_eq!(
        raw_publish_refusal(&mut raw, "no.missing", "").await,
        refused_publish(refused("exchange", "no.missing", "v", "alice")),
        "403 before 404"
    );
    raw.open_channel(1).await;
    assert_eq!(
        raw_publish_refusal(&mut raw, "ok.missing", "").await,
        refused_publish(not_found("no exchange 'ok.missing' in vhost 'v'"))
    );
    assert_eq!(drain_bodies(&root, "q").await, ["allowed"]);
}

#[tokio::test]
async fn publish_to_the_default_exchange_needs_write_on_amq_default() {
    let node = Node::with(&alice_and_root("", "^q$", ""));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    declare_queue(&root, "q").await;
    let mut raw = raw_channel_as(node.addr(), "alice", "pw", "v").await;
    // Write on a queue named like the routing key does not count: the exchange is checked.
    assert_eq!(
        raw_publish_refusal(&mut raw, "", "q").await,
        refused_publish(refused("exchange", "amq.default", "v", "alice"))
    );

    let node = Node::with(&alice_and_root("", "^amq\\.default$", ""));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    declare_queue(&root, "q").await;
    let mut raw = raw_channel_as(node.addr(), "alice", "pw", "v").await;
    raw.publish(1, "", "q", false, false, b"via amq.default")
        .await;
    wait_message_count(&root, "q", 1).await;
    assert_eq!(drain_bodies(&root, "q").await, ["via amq.default"]);
}

#[tokio::test]
async fn get_and_consume_need_read_on_the_queue() {
    let node = Node::with(&alice_and_root("", "", "^ok\\."));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    for q in ["ok.q", "no.q"] {
        declare_queue(&root, q).await;
        publish(&root, "", q, q.as_bytes()).await;
    }
    sync(&root).await;
    let (conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    assert_eq!(get_body(&ch, "ok.q").await.as_deref(), Some(&b"ok.q"[..]));
    assert_eq!(
        get_error(&ch, "no.q").await,
        refused("queue", "no.q", "v", "alice")
    );
    let ch = conn.create_channel().await.expect("channel");
    assert_eq!(
        consume_error(
            &ch,
            "no.q",
            BasicConsumeOptions::default(),
            FieldTable::default()
        )
        .await,
        refused("queue", "no.q", "v", "alice")
    );
    let ch = conn.create_channel().await.expect("channel");
    assert_eq!(
        get_error(&ch, "no.missing").await,
        refused("queue", "no.missing", "v", "alice"),
        "403 before 404"
    );
    let ch = conn.create_channel().await.expect("channel");
    consume_no_ack(&ch, "ok.q").await;
    assert_eq!(message_count(&root, "no.q").await, 1);
}

#[tokio::test]
async fn purge_needs_read_not_configure() {
    let node = Node::with(&alice_and_root("", "", "^ok\\."));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    for q in ["ok.q", "no.q"] {
        declare_queue(&root, q).await;
        publish_n(&root, q, 3).await;
    }
    let (_conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    assert_eq!(purge_queue(&ch, "ok.q").await, 3);
    assert_eq!(
        purge_error(&ch, "no.q").await,
        refused("queue", "no.q", "v", "alice")
    );
    assert_eq!(message_count(&root, "no.q").await, 3);
}

async fn queue_bind(ch: &lapin::Channel, queue: &str, exchange: &str) -> lapin::Result<()> {
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        "k".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
}

async fn queue_unbind(ch: &lapin::Channel, queue: &str, exchange: &str) -> lapin::Result<()> {
    ch.queue_unbind(
        queue.into(),
        exchange.into(),
        "k".into(),
        FieldTable::default(),
    )
    .await
}

#[tokio::test]
async fn queue_bind_and_unbind_need_write_on_the_queue_then_read_on_the_exchange() {
    let node = Node::with(&alice_and_root("", "^q\\.ok$", "^x\\.ok$"));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    for q in ["q.ok", "q.no"] {
        declare_queue(&root, q).await;
    }
    for x in ["x.ok", "x.no"] {
        declare_exchange(&root, x, ExchangeKind::Direct).await;
    }
    bind_queue(&root, "q.no", "x.ok", "k").await;
    let (conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    queue_bind(&ch, "q.ok", "x.ok").await.expect("bind allowed");
    let fresh = async || conn.create_channel().await.expect("channel");
    let cases = [
        ("q.no", "x.ok", refused("queue", "q.no", "v", "alice")),
        ("q.ok", "x.no", refused("exchange", "x.no", "v", "alice")),
        // The destination is checked first.
        ("q.no", "x.no", refused("queue", "q.no", "v", "alice")),
        // The default exchange is refused after the destination's write check.
        ("q.no", "", refused("queue", "q.no", "v", "alice")),
        (
            "q.ok",
            "",
            access_refused("operation not permitted on the default exchange"),
        ),
    ];
    for (queue, exchange, expected) in &cases {
        let ch = fresh().await;
        assert_eq!(
            &expect_amqp_error(queue_bind(&ch, queue, exchange).await),
            expected,
            "bind {queue} to {exchange:?}"
        );
    }
    for (queue, exchange, expected) in cases.iter().take(3) {
        let ch = fresh().await;
        assert_eq!(
            &expect_amqp_error(queue_unbind(&ch, queue, exchange).await),
            expected,
            "unbind {queue} from {exchange:?}"
        );
    }
    // Refused unbinds removed nothing: root's binding still routes.
    publish(&root, "x.ok", "k", b"still bound").await;
    sync(&root).await;
    assert_eq!(drain_bodies(&root, "q.no").await, ["still bound"]);
    let ch = fresh().await;
    queue_unbind(&ch, "q.ok", "x.ok")
        .await
        .expect("unbind allowed");
}

async fn exchange_bind(ch: &lapin::Channel, destination: &str, source: &str) -> lapin::Result<()> {
    ch.exchange_bind(
        destination.into(),
        source.into(),
        "k".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
}

async fn exchange_unbind(
    ch: &lapin::Channel,
    destination: &str,
    source: &str,
) -> lapin::Result<()> {
    ch.exchange_unbind(
        destination.into(),
        source.into(),
        "k".into(),
        Default::default(),
        FieldTable::default(),
    )
    .await
}

#[tokio::test]
async fn exchange_bind_and_unbind_need_write_on_the_destination_then_read_on_the_source() {
    let node = Node::with(&alice_and_root("", "^x\\.dest$", "^x\\.src$"));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    for x in ["x.src", "x.dest", "x.other"] {
        declare_exchange(&root, x, ExchangeKind::Direct).await;
    }
    let (conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    exchange_bind(&ch, "x.dest", "x.src")
        .await
        .expect("bind allowed");
    let cases = [
        (
            "x.other",
            "x.src",
            refused("exchange", "x.other", "v", "alice"),
        ),
        (
            "x.dest",
            "x.other",
            refused("exchange", "x.other", "v", "alice"),
        ),
        (
            "x.other",
            "x.dest",
            refused("exchange", "x.other", "v", "alice"),
        ),
        // Read on the destination or write on the source does not help.
        (
            "x.src",
            "x.dest",
            refused("exchange", "x.src", "v", "alice"),
        ),
    ];
    for (destination, source, expected) in &cases {
        let ch = conn.create_channel().await.expect("channel");
        assert_eq!(
            &expect_amqp_error(exchange_bind(&ch, destination, source).await),
            expected,
            "bind {destination} to {source}"
        );
        let ch = conn.create_channel().await.expect("channel");
        assert_eq!(
            &expect_amqp_error(exchange_unbind(&ch, destination, source).await),
            expected,
            "unbind {destination} from {source}"
        );
    }
    let ch = conn.create_channel().await.expect("channel");
    exchange_unbind(&ch, "x.dest", "x.src")
        .await
        .expect("unbind allowed");
}
