//! Configure permission, where RabbitMQ 3.10's channel checks it: exchange.declare and
//! exchange.delete, queue.declare (on the final name, a server-named `amq.gen-…` one too) and
//! queue.delete — before looking the object up, so redeclaring or deleting someone else's
//! object, or a missing one, is refused the same way. A NEW queue with a dead-letter exchange
//! also needs read on itself and write on the DLX; a NEW exchange with an alternate exchange
//! also needs read on itself and write on the AE. Passive declares need nothing.

use amq_protocol::types::FieldTable;
use lapin::ExchangeKind;
use lapin::options::{ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};

use super::support::*;
use crate::common::*;

/// alice with `configure`, `write`, `read` on `v`, and `root`, who may do anything there (to set
/// up objects alice may not touch).
fn alice_and_root(configure: &str, write: &str, read: &str) -> Definitions {
    alice_on_v(configure, write, read)
        .user("root", "pw", &[])
        .permit_all("root", "v")
}

async fn exchange_declare(ch: &lapin::Channel, name: &str, args: FieldTable) -> lapin::Result<()> {
    ch.exchange_declare(name.into(), ExchangeKind::Fanout, Default::default(), args)
        .await
}

async fn queue_declare(ch: &lapin::Channel, name: &str, args: FieldTable) -> lapin::Result<String> {
    ch.queue_declare(name.into(), QueueDeclareOptions::default(), args)
        .await
        .map(|q| q.name().as_str().to_string())
}

fn arg(key: &str, value: &str) -> FieldTable {
    table(vec![(key, long_str(value))])
}

#[tokio::test]
async fn exchange_declare_needs_configure_on_the_exchange_existing_or_not() {
    let node = Node::with(&alice_and_root("^ok\\.", ".*", ".*"));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    declare_exchange(&root, "no.theirs", ExchangeKind::Fanout).await;
    let (_conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    exchange_declare(&ch, "ok.mine", FieldTable::default())
        .await
        .expect("ok.mine matches ^ok\\.");
    // A refusal closes the channel: each attempt gets a fresh one.
    for name in ["no.new", "no.theirs", "amq.direct"] {
        let ch = _conn.create_channel().await.expect("channel");
        assert_eq!(
            expect_amqp_error(exchange_declare(&ch, name, FieldTable::default()).await),
            refused("exchange", name, "v", "alice"),
            "{name}"
        );
    }
    // Refused means not created.
    declare_exchange_passive(&root, "no.new", ExchangeKind::Fanout)
        .await
        .expect_err("no.new must not exist");
}

#[tokio::test]
async fn exchange_delete_needs_configure_but_amq_exchanges_are_refused_first() {
    let node = Node::with(&alice_and_root("^ok\\.", ".*", ".*"));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    declare_exchange(&root, "ok.x", ExchangeKind::Fanout).await;
    declare_exchange(&root, "no.x", ExchangeKind::Fanout).await;
    let (conn, _) = channel_as(node.addr(), "alice", "pw", "v").await;
    let delete = async |name: &str| {
        let ch = conn.create_channel().await.expect("channel");
        ch.exchange_delete(name.into(), ExchangeDeleteOptions::default())
            .await
    };
    delete("ok.x").await.expect("ok.x matches ^ok\\.");
    assert_eq!(
        expect_amqp_error(delete("no.x").await),
        refused("exchange", "no.x", "v", "alice")
    );
    assert_eq!(
        expect_amqp_error(delete("no.missing").await),
        refused("exchange", "no.missing", "v", "alice"),
        "checked before the lookup"
    );
    assert_eq!(
        expect_amqp_error(delete("amq.fanout").await),
        access_refused("deletion of system exchange 'amq.fanout' in vhost 'v' not allowed")
    );
    declare_exchange_passive(&root, "no.x", ExchangeKind::Fanout)
        .await
        .expect("no.x survives");
}

#[tokio::test]
async fn queue_declare_needs_configure_on_the_queue_existing_or_not() {
    let node = Node::with(&alice_and_root("^ok\\.", ".*", ".*"));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    declare_queue(&root, "no.theirs").await;
    let (conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    queue_declare(&ch, "ok.mine", FieldTable::default())
        .await
        .expect("ok.mine matches ^ok\\.");
    for name in ["no.new", "no.theirs"] {
        let ch = conn.create_channel().await.expect("channel");
        assert_eq!(
            expect_amqp_error(queue_declare(&ch, name, FieldTable::default()).await),
            refused("queue", name, "v", "alice"),
            "{name}"
        );
    }
    declare_queue_passive(&root, "no.new")
        .await
        .expect_err("no.new must not exist");
}

#[tokio::test]
async fn a_server_named_queue_needs_configure_on_its_amq_gen_name() {
    let node = Node::with(&alice_on_v("^ok\\.", ".*", ".*"));
    let (_conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    let (code, text) = expect_amqp_error(queue_declare(&ch, "", FieldTable::default()).await);
    assert_eq!(code, 403, "{text}");
    let name = text
        .strip_prefix("ACCESS_REFUSED - access to queue '")
        .and_then(|rest| rest.strip_suffix("' in vhost 'v' refused for user 'alice'"))
        .unwrap_or_else(|| panic!("unexpected text {text}"));
    assert!(name.starts_with("amq.gen-") && name.len() > 8, "{name}");

    let node = Node::with(&alice_on_v("^(ok\\.|amq\\.gen-)", ".*", ".*"));
    let (_conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    let name = queue_declare(&ch, "", FieldTable::default())
        .await
        .expect("amq.gen- names are allowed now");
    assert!(name.starts_with("amq.gen-"), "{name}");
}

#[tokio::test]
async fn passive_declares_need_no_permission() {
    let node = Node::with(&alice_and_root("", "", ""));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    declare_queue(&root, "q").await;
    declare_exchange(&root, "x", ExchangeKind::Topic).await;
    let (conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    declare_queue_passive(&ch, "q")
        .await
        .expect("passive queue.declare");
    declare_exchange_passive(&ch, "x", ExchangeKind::Topic)
        .await
        .expect("passive exchange.declare");
    declare_exchange_passive(&ch, "amq.direct", ExchangeKind::Direct)
        .await
        .expect("passive exchange.declare of amq.direct");
    // A missing one is 404, not 403.
    assert_eq!(
        expect_amqp_error(declare_queue_passive(&ch, "missing").await),
        not_found("no queue 'missing' in vhost 'v'")
    );
    let ch = conn.create_channel().await.expect("channel");
    assert_eq!(
        expect_amqp_error(declare_exchange_passive(&ch, "missing", ExchangeKind::Topic).await),
        not_found("no exchange 'missing' in vhost 'v'")
    );
}

#[tokio::test]
async fn queue_delete_needs_configure_on_the_queue_existing_or_not() {
    let node = Node::with(&alice_and_root("^ok\\.", ".*", ".*"));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    declare_queue(&root, "ok.q").await;
    declare_queue(&root, "no.q").await;
    let (conn, _) = channel_as(node.addr(), "alice", "pw", "v").await;
    let delete = async |name: &str| {
        let ch = conn.create_channel().await.expect("channel");
        ch.queue_delete(name.into(), QueueDeleteOptions::default())
            .await
    };
    assert_eq!(delete("ok.q").await.expect("ok.q matches ^ok\\."), 0);
    assert_eq!(
        expect_amqp_error(delete("no.q").await),
        refused("queue", "no.q", "v", "alice")
    );
    assert_eq!(
        expect_amqp_error(delete("no.missing").await),
        refused("queue", "no.missing", "v", "alice")
    );
    declare_queue_passive(&root, "no.q")
        .await
        .expect("no.q survives");
}

#[tokio::test]
async fn a_new_queue_with_a_dead_letter_exchange_needs_read_on_itself_and_write_on_the_dlx() {
    let node = Node::with(&alice_and_root(".*", "^dlx\\.ok$", "^q\\.readable"));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    let dlx = |x: &str| arg("x-dead-letter-exchange", x);
    declare_queue_with(&root, "q.theirs", dlx("dlx.no")).await;
    let (conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    queue_declare(&ch, "q.readable.1", dlx("dlx.ok"))
        .await
        .expect("read on the queue, write on the DLX");
    let attempt = async |name: &str, args: FieldTable| {
        let ch = conn.create_channel().await.expect("channel");
        expect_amqp_error(queue_declare(&ch, name, args).await)
    };
    assert_eq!(
        attempt("q.readable.2", dlx("dlx.no")).await,
        refused("exchange", "dlx.no", "v", "alice")
    );
    assert_eq!(
        attempt("q.unreadable", dlx("dlx.ok")).await,
        refused("queue", "q.unreadable", "v", "alice"),
        "read on the queue is checked before write on the DLX"
    );
    // The default exchange as DLX is checked as amq.default.
    assert_eq!(
        attempt("q.readable.3", dlx("")).await,
        refused("exchange", "amq.default", "v", "alice")
    );
    let ch = conn.create_channel().await.expect("channel");
    queue_declare(&ch, "q.unreadable", FieldTable::default())
        .await
        .expect("without a DLX, configure is enough");
    // Redeclaring an existing queue checks configure only, whatever its DLX.
    queue_declare(&ch, "q.theirs", dlx("dlx.no"))
        .await
        .expect("an existing queue's DLX is not checked again");
}

#[tokio::test]
async fn a_new_exchange_with_an_alternate_exchange_needs_read_on_itself_and_write_on_the_ae() {
    let node = Node::with(&alice_and_root(".*", "^ae\\.ok$", "^x\\.readable"));
    let (_root, root) = channel_as(node.addr(), "root", "pw", "v").await;
    let ae = |x: &str| arg("alternate-exchange", x);
    exchange_declare(&root, "x.theirs", ae("ae.no"))
        .await
        .expect("root declares");
    let (conn, ch) = channel_as(node.addr(), "alice", "pw", "v").await;
    exchange_declare(&ch, "x.readable.1", ae("ae.ok"))
        .await
        .expect("read on the exchange, write on the AE (which need not exist)");
    let attempt = async |name: &str, args: FieldTable| {
        let ch = conn.create_channel().await.expect("channel");
        expect_amqp_error(exchange_declare(&ch, name, args).await)
    };
    assert_eq!(
        attempt("x.readable.2", ae("ae.no")).await,
        refused("exchange", "ae.no", "v", "alice")
    );
    assert_eq!(
        attempt("x.unreadable", ae("ae.ok")).await,
        refused("exchange", "x.unreadable", "v", "alice"),
        "read on the exchange is checked before write on the AE"
    );
    let ch = conn.create_channel().await.expect("channel");
    exchange_declare(&ch, "x.unreadable", FieldTable::default())
        .await
        .expect("without an AE, configure is enough");
    exchange_declare(&ch, "x.theirs", ae("ae.no"))
        .await
        .expect("an existing exchange's AE is not checked again");
}
