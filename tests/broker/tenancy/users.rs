//! Users from a definitions file: logging in with a plaintext password, a RabbitMQ SHA-256
//! hash as `rabbitmqctl hash_password` writes it, or a SHA-512 hash; refusals (403) for a
//! wrong password or a user without one; and the `impersonator` tag, the only one that lets a
//! publisher set another user's `user_id`.

use amq_protocol::protocol::BasicProperties;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use sha2::{Digest, Sha512};

use super::support::*;
use crate::common::*;

/// A user can work: declare a queue, publish to it, get the message back.
async fn assert_can_work(node: &Node, user: &str, password: &str, vhost: &str) {
    let (conn, ch) = channel_as(node.addr(), user, password, vhost).await;
    let q = declare_tmp_queue(&ch).await;
    publish(&ch, "", &q, b"hello").await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, ["hello"]);
    conn.close(200, "bye".into()).await.expect("close");
}

#[tokio::test]
async fn a_definitions_user_logs_in_with_its_password() {
    let node = Node::with(&alice_on_v(".*", ".*", ".*"));
    assert_can_work(&node, "alice", "pw", "v").await;
}

#[tokio::test]
async fn a_wrong_password_or_an_unknown_user_is_refused_with_403() {
    let node = Node::with(&alice_on_v(".*", ".*", ".*"));
    assert_eq!(
        login_refusal(node.addr(), "alice", "not-pw").await,
        login_refused()
    );
    assert_eq!(
        login_refusal(node.addr(), "bob", "pw").await,
        login_refused()
    );
    // lapin sees the refusal too, and the right password still works afterwards.
    assert!(
        try_connect_as(node.addr(), "alice", "PW", "v")
            .await
            .is_err()
    );
    assert_can_work(&node, "alice", "pw", "v").await;
}

#[tokio::test]
async fn a_sha256_hash_exported_by_rabbitmq_logs_in() {
    // `rabbitmqctl hash_password test12`, RabbitMQ's documented example.
    let definitions = Definitions::new()
        .vhost("v")
        .user_json(json!({
            "name": "exported",
            "password_hash": "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR",
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": []
        }))
        .permit_all("exported", "v");
    let node = Node::with(&definitions);
    assert_can_work(&node, "exported", "test12", "v").await;
    assert_eq!(
        login_refusal(node.addr(), "exported", "test13").await,
        login_refused()
    );
}

/// RabbitMQ's salted hash: base64(salt ‖ SHA-512(salt ‖ password)).
fn sha512_hash(salt: [u8; 4], password: &str) -> String {
    let mut digest = Sha512::new();
    digest.update(salt);
    digest.update(password.as_bytes());
    let mut salted = salt.to_vec();
    salted.extend_from_slice(&digest.finalize());
    STANDARD.encode(salted)
}

#[tokio::test]
async fn a_sha512_hashed_user_logs_in_and_only_with_its_password() {
    let definitions = Definitions::new()
        .vhost("v")
        .user_json(json!({
            "name": "carol",
            "password_hash": sha512_hash([0x90, 0x8d, 0xc6, 0x0a], "s3cret-512"),
            "hashing_algorithm": "rabbit_password_hashing_sha512",
            "tags": ["management"]
        }))
        .permit_all("carol", "v");
    let node = Node::with(&definitions);
    assert_can_work(&node, "carol", "s3cret-512", "v").await;
    assert_eq!(
        login_refusal(node.addr(), "carol", "s3cret-256").await,
        login_refused()
    );
}

#[tokio::test]
async fn a_user_without_a_password_cannot_log_in_with_plain() {
    let definitions = Definitions::new()
        .vhost("v")
        .user_json(json!({"name": "certonly", "password_hash": "", "tags": []}))
        .permit_all("certonly", "v");
    let node = Node::with(&definitions);
    assert_eq!(
        login_refusal(node.addr(), "certonly", "").await,
        login_refused()
    );
    assert_eq!(
        login_refusal(node.addr(), "certonly", "anything").await,
        login_refused()
    );
}

fn from(user: &str) -> BasicProperties {
    BasicProperties::default().with_user_id(user.into())
}

#[tokio::test]
async fn an_impersonator_may_publish_as_another_user() {
    // Tags as 3.x exports write them: one comma-separated string.
    let definitions = Definitions::new()
        .vhost("v")
        .user_json(json!({"name": "relay", "password": "pw", "tags": "monitoring,impersonator"}))
        .permit_all("relay", "v");
    let node = Node::with(&definitions);
    let (_conn, ch) = channel_as(node.addr(), "relay", "pw", "v").await;
    let q = declare_tmp_queue(&ch).await;
    publish_props(&ch, "", &q, b"on behalf", from("bob")).await;
    publish_props(&ch, "", &q, b"as itself", from("relay")).await;
    sync(&ch).await;
    let first = get_message_no_ack(&ch, &q).await.expect("first message");
    assert_eq!(
        first
            .delivery
            .properties
            .user_id()
            .as_ref()
            .map(|u| u.as_str()),
        Some("bob")
    );
    let second = get_message_no_ack(&ch, &q).await.expect("second message");
    assert_eq!(
        second
            .delivery
            .properties
            .user_id()
            .as_ref()
            .map(|u| u.as_str()),
        Some("relay")
    );
}

#[tokio::test]
async fn without_the_impersonator_tag_another_user_id_is_406_even_for_an_administrator() {
    let definitions = Definitions::new()
        .vhost("v")
        .user("admin", "pw", &["administrator"])
        .permit_all("admin", "v");
    let node = Node::with(&definitions);
    let (_conn, ch) = channel_as(node.addr(), "admin", "pw", "v").await;
    let q = declare_tmp_queue(&ch).await;
    publish_props(&ch, "", &q, b"own name", from("admin")).await;
    sync(&ch).await;
    assert_eq!(drain_bodies(&ch, &q).await, ["own name"]);
    let watch = ChannelErrorWatch::new(&ch).await;
    publish_props(&ch, "", &q, b"forged", from("bob")).await;
    assert_eq!(
        watch.error().await,
        precondition_failed("user_id property set to 'bob' but authenticated user was 'admin'")
    );
}
