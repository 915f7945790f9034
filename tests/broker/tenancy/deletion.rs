//! Deleting a vhost or a user, through the broker's own operations (there is no management
//! API yet), on a broker started in this process: their connections are closed with 320
//! CONNECTION_FORCED and RabbitMQ's text ("vhost 'v' is deleted", "user 'u' is deleted"),
//! other connections are untouched, and the durable state goes with them — after a restart
//! too, and a re-created vhost starts empty.

use lapin::ExchangeKind;
use warren::broker::tenancy::TenancyError;

use super::in_process::*;
use super::support::*;
use crate::common::*;

fn forced(text: &str) -> (u16, String) {
    (320, format!("CONNECTION_FORCED - {text}"))
}

/// A raw client must receive connection.close 320 `text` (class 0, method 0), then EOF.
async fn assert_forced_close(raw: &mut RawClient, text: &str) {
    let (code, reply, class, method) = raw.expect_connection_close().await;
    assert_eq!((code, reply), forced(text));
    assert_eq!((class, method), (0, 0));
    raw.expect_eof(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_vhost_closes_its_connections_with_320_and_spares_the_others() {
    let dir = DataDir::new();
    let running = start_in_process(&dir.0).await;
    let broker = running.broker.clone();
    add_user(&broker, "alice", "pw");
    add_vhost(&broker, "v", &["alice", "guest"]);
    let addr = addr(&running);

    let (doomed, ch) = channel_as(addr, "alice", "pw", "v").await;
    let q = declare_tmp_queue(&ch).await;
    let _consumer = consume_no_ack(&ch, &q).await;
    let (guest_in_v, _) = channel_as(addr, "guest", "guest", "v").await;
    let mut raw_in_v = raw_channel_as(addr, "alice", "pw", "v").await;
    let (spared, _) = channel_as(addr, "guest", "guest", "/").await;
    let mut raw_spared = raw_channel_as(addr, "guest", "guest", "/").await;
    let watches = [CloseWatch::new(&doomed), CloseWatch::new(&guest_in_v)];

    broker.delete_vhost("v").expect("delete_vhost");

    for watch in watches {
        assert_eq!(watch.reason().await, forced("vhost 'v' is deleted"));
    }
    assert_forced_close(&mut raw_in_v, "vhost 'v' is deleted").await;
    assert!(doomed.create_channel().await.is_err());
    assert_works(&spared).await;
    raw_spared.open_channel(2).await;
    assert_eq!(
        open_refusal(addr, "alice", "pw", "v").await,
        refused_at_open(not_allowed("vhost v not found"))
    );
    assert_eq!(
        broker.delete_vhost("v"),
        Err(TenancyError::NotFound("vhost 'v' not found".into()))
    );
    drop(spared);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_closes_its_connections_with_320_and_spares_the_others() {
    let dir = DataDir::new();
    let running = start_in_process(&dir.0).await;
    let broker = running.broker.clone();
    add_user(&broker, "alice", "pw");
    add_user(&broker, "bob", "bob-pw");
    add_vhost(&broker, "v", &["alice", "bob"]);
    broker
        .set_permissions("alice", "/", ".*", ".*", ".*")
        .expect("set_permissions");
    let addr = addr(&running);

    let (in_v, _) = channel_as(addr, "alice", "pw", "v").await;
    let (in_root, _) = channel_as(addr, "alice", "pw", "/").await;
    let mut raw = raw_channel_as(addr, "alice", "pw", "v").await;
    let (bob, _) = channel_as(addr, "bob", "bob-pw", "v").await;
    let watches = [CloseWatch::new(&in_v), CloseWatch::new(&in_root)];

    broker.delete_user("alice").expect("delete_user");

    for watch in watches {
        assert_eq!(watch.reason().await, forced("user 'alice' is deleted"));
    }
    assert_forced_close(&mut raw, "user 'alice' is deleted").await;
    assert_works(&bob).await;
    assert_eq!(login_refusal(addr, "alice", "pw").await, login_refused());
    drop(bob);
    running.shutdown().await;

    // The deletion is durable; bob is not affected by it.
    let restarted = TestBroker::spawn_in(&dir.0, &[]);
    assert_eq!(
        login_refusal(restarted.addr(), "alice", "pw").await,
        login_refused()
    );
    let (bob, _) = channel_as(restarted.addr(), "bob", "bob-pw", "v").await;
    assert_works(&bob).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_vhost_s_durable_state_is_gone_and_a_re_created_vhost_is_empty() {
    let dir = DataDir::new();
    let running = start_in_process(&dir.0).await;
    let broker = running.broker.clone();
    add_user(&broker, "alice", "pw");
    let addr = addr(&running);
    for vhost in ["v", "gone", "/"] {
        add_vhost(&broker, vhost, &["alice"]);
        let (conn, ch) = channel_as(addr, "alice", "pw", vhost).await;
        declare_durable_queue(&ch, "keep").await;
        declare_durable_exchange(&ch, "dx", ExchangeKind::Direct).await;
        bind_queue(&ch, "keep", "dx", "k").await;
        ch.confirm_select(Default::default())
            .await
            .expect("confirm.select");
        publish_acked(&ch, "dx", "k", b"persistent", persistent()).await;
        conn.close(200, "bye".into()).await.expect("close");
    }
    broker.delete_vhost("v").expect("delete v");
    broker.delete_vhost("gone").expect("delete gone");
    // Re-created: empty, and nobody has permissions on it yet.
    add_vhost(&broker, "v", &[]);
    assert_eq!(
        open_refusal(addr, "alice", "pw", "v").await,
        refused_at_open(vhost_refused("v", "alice"))
    );
    broker
        .set_permissions("alice", "v", ".*", ".*", ".*")
        .expect("set_permissions");
    assert_vhost_is_empty(addr, "v").await;
    running.shutdown().await;

    let restarted = TestBroker::spawn_in(&dir.0, &[]);
    let addr = restarted.addr();
    assert_vhost_is_empty(addr, "v").await;
    assert_eq!(
        open_refusal(addr, "alice", "pw", "gone").await,
        refused_at_open(not_allowed("vhost gone not found"))
    );
    // The other vhost's durable queue, exchange, binding and message are all there.
    let (_conn, ch) = channel_as(addr, "alice", "pw", "/").await;
    assert_eq!(message_count(&ch, "keep").await, 1);
    publish(&ch, "dx", "k", b"routed").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, "keep").await, ["persistent", "routed"]);
}

/// `vhost` has no queue `keep` and no exchange `dx`, but its own amq.* exchanges.
async fn assert_vhost_is_empty(addr: std::net::SocketAddr, vhost: &str) {
    let (conn, ch) = channel_as(addr, "alice", "pw", vhost).await;
    assert_eq!(
        expect_amqp_error(declare_queue_passive(&ch, "keep").await),
        not_found(format!("no queue 'keep' in vhost '{vhost}'"))
    );
    let ch = conn.create_channel().await.expect("channel");
    assert_eq!(
        expect_amqp_error(declare_exchange_passive(&ch, "dx", ExchangeKind::Direct).await),
        not_found(format!("no exchange 'dx' in vhost '{vhost}'"))
    );
    let ch = conn.create_channel().await.expect("channel");
    declare_exchange_passive(&ch, "amq.direct", ExchangeKind::Direct)
        .await
        .expect("a re-created vhost has its amq.* exchanges");
}
