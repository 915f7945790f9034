//! SASL EXTERNAL: opt-in through `auth_mechanisms` (as on RabbitMQ) and offered on TLS
//! connections only; the user name is the client certificate's subject
//! (`ssl_cert_login_from = "distinguished_name"`, RabbitMQ's format) or its CN
//! (`"common_name"`); the user must exist (no password), else 403 as for PLAIN. A mechanism not
//! offered is refused as RabbitMQ refuses it: no connection.close, the socket closed after 3 s.
//!
//! Until warren has more users than `default_user`, the certificate's user is the default user.

use crate::common::*;

use super::broker::TlsBroker;
use super::client::*;
use super::pki::{CLIENT_CN, CLIENT_DN, Pki};

const VERIFY_PEER_STRICT: &str = "verify = \"verify_peer\"\nfail_if_no_peer_cert = true";

/// Top-level keys turning EXTERNAL on, with `default_user` named `user`.
fn with_external(user: &str) -> String {
    format!(
        "auth_mechanisms = [\"PLAIN\", \"AMQPLAIN\", \"EXTERNAL\"]\ndefault_user = \"{user}\"\ndefault_pass = \"unused\""
    )
}

/// What RabbitMQ says to a client with `authentication_failure_close` whose login was refused.
const EXTERNAL_REFUSED: &str = "ACCESS_REFUSED - Login was refused using authentication mechanism EXTERNAL. For details see the broker logfile.";

/// A TLS client presenting the test's client certificate, at connection.start.
async fn started_with_cert(
    broker: &TlsBroker,
    pki: &Pki,
) -> AmqpClient<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut client = tls_client(
        broker.tls,
        client_config(pki, Some(&pki.client), ANY_VERSION),
    )
    .await;
    let start = client.start().await.expect("connection.start");
    assert!(
        mechanisms(&start).contains(&"EXTERNAL".to_string()),
        "EXTERNAL is offered on TLS: {:?}",
        mechanisms(&start)
    );
    client
}

#[tokio::test]
async fn external_logs_in_as_the_certificates_distinguished_name() {
    let pki = Pki::new();
    let broker = TlsBroker::start(&pki, &with_external(CLIENT_DN), VERIFY_PEER_STRICT);
    let mut client = started_with_cert(&broker, &pki).await;
    client
        .login("EXTERNAL", Vec::new())
        .await
        .expect("EXTERNAL login");
    client.open_channel().await;
    client.publish_and_get(b"as the DN").await;

    // lapin's EXTERNAL too.
    let conn = lapin_amqps(
        broker.tls,
        &pki,
        Some(&pki.client),
        "auth_mechanism=external",
    )
    .await
    .expect("lapin EXTERNAL login");
    let ch = conn.create_channel().await.expect("channel");
    declare_tmp_queue(&ch).await;
}

#[tokio::test]
async fn external_logs_in_as_the_certificates_common_name() {
    let pki = Pki::new();
    let top = format!(
        "{}\nssl_cert_login_from = \"common_name\"",
        with_external(CLIENT_CN)
    );
    let broker = TlsBroker::start(&pki, &top, VERIFY_PEER_STRICT);
    let mut client = started_with_cert(&broker, &pki).await;
    client
        .login("EXTERNAL", Vec::new())
        .await
        .expect("EXTERNAL login");
    client.open_channel().await;
    client.publish_and_get(b"as the CN").await;
}

#[tokio::test]
async fn external_for_a_name_that_is_no_user_is_refused_403() {
    let pki = Pki::new();
    // The DN is no user; the CN is, but this broker reads the DN.
    let broker = TlsBroker::start(&pki, &with_external(CLIENT_CN), VERIFY_PEER_STRICT);
    let mut client = started_with_cert(&broker, &pki).await;
    let refused = client.login("EXTERNAL", Vec::new()).await;
    assert_eq!(refused, Err((403, EXTERNAL_REFUSED.to_string())));
    assert!(client.closed_by_broker().await);
}

#[tokio::test]
async fn external_without_a_client_certificate_is_refused_403() {
    let pki = Pki::new();
    let top = with_external(CLIENT_DN);
    for ssl in ["verify = \"verify_peer\"", "verify = \"verify_none\""] {
        let broker = TlsBroker::start(&pki, &top, ssl);
        // As RabbitMQ: offered on TLS even without a certificate, refused when used.
        let mut client = tls_client(broker.tls, client_config(&pki, None, ANY_VERSION)).await;
        let start = client.start().await.expect("connection.start");
        assert!(
            mechanisms(&start).contains(&"EXTERNAL".to_string()),
            "{ssl}"
        );
        let refused = client.login("EXTERNAL", Vec::new()).await;
        assert_eq!(refused, Err((403, EXTERNAL_REFUSED.to_string())), "{ssl}");
    }
}

#[tokio::test]
async fn external_is_not_offered_on_the_plain_port() {
    let pki = Pki::new();
    let top = with_external(CLIENT_DN);
    let broker = TlsBroker::start(&pki, &top, VERIFY_PEER_STRICT);
    let mut plain = plain_client(broker.plain).await;
    let start = plain.start().await.expect("connection.start");
    assert_eq!(mechanisms(&start), ["PLAIN", "AMQPLAIN"]);
    // As RabbitMQ: 503 "invalid authentication mechanism" before the connection has started,
    // which it answers with no connection.close.
    plain.refused_silently("EXTERNAL", Vec::new()).await;
}

#[tokio::test]
async fn external_is_off_unless_auth_mechanisms_names_it() {
    let pki = Pki::new();
    let top = format!("default_user = \"{CLIENT_DN}\"");
    let broker = TlsBroker::start(&pki, &top, VERIFY_PEER_STRICT);
    let mut client = tls_client(
        broker.tls,
        client_config(&pki, Some(&pki.client), ANY_VERSION),
    )
    .await;
    let start = client.start().await.expect("connection.start");
    assert_eq!(
        mechanisms(&start),
        ["PLAIN", "AMQPLAIN"],
        "RabbitMQ's default"
    );
    client.refused_silently("EXTERNAL", Vec::new()).await;
}

#[tokio::test]
async fn auth_mechanisms_is_what_is_offered_and_accepted() {
    let pki = Pki::new();
    let top = format!("auth_mechanisms = [\"EXTERNAL\"]\ndefault_user = \"{CLIENT_DN}\"");
    let broker = TlsBroker::start(&pki, &top, VERIFY_PEER_STRICT);
    let mut client = tls_client(
        broker.tls,
        client_config(&pki, Some(&pki.client), ANY_VERSION),
    )
    .await;
    let start = client.start().await.expect("connection.start");
    assert_eq!(mechanisms(&start), ["EXTERNAL"]);
    client
        .refused_silently("PLAIN", plain_response(CLIENT_DN, "guest"))
        .await;
    let mut client = started_with_cert(&broker, &pki).await;
    client
        .login("EXTERNAL", Vec::new())
        .await
        .expect("EXTERNAL login");
}
