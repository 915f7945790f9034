//! The TLS listener: AMQP over TLS 1.2 and 1.3 beside the plain listener, client certificate
//! verification (`verify`, `fail_if_no_peer_cert`), what happens to plain AMQP on the TLS port
//! and to TLS on the plain port, the handshake timeout, setups that must stop the start, and the
//! default amqps port (5671) when `[ssl_options]` has a certfile and `listen_tls` is empty.

use std::time::Duration;

use rustls::version::{TLS12, TLS13};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

use super::broker::{TlsBroker, start_must_fail};
use super::client::*;
use super::pki::{Pki, toml_path};

const VERIFY_PEER_STRICT: &str = "verify = \"verify_peer\"\nfail_if_no_peer_cert = true";
const VERIFY_PEER_OPTIONAL: &str = "verify = \"verify_peer\"\nfail_if_no_peer_cert = false";

/// Waits until the broker's log has `needle` (logging is asynchronous to the test); the log.
async fn log_with(broker: &TlsBroker, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = broker.log_text();
        if log.contains(needle) || tokio::time::Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TLS connection that the broker must refuse: the handshake fails, or (TLS 1.3, where the
/// client finishes first) the broker's alert ends the connection before connection.start.
async fn assert_refused(broker: &TlsBroker, config: std::sync::Arc<rustls::ClientConfig>) {
    match tls_connect(broker.tls, config).await {
        Err(_) => {}
        Ok(stream) => {
            let got = AmqpClient::new(stream).start().await;
            assert!(
                matches!(got, Err(Recv::Closed)),
                "a refused client must not get connection.start: {got:?}"
            );
        }
    }
}

#[tokio::test]
async fn publish_and_get_over_tls_1_2_and_1_3_beside_the_plain_listener() {
    let pki = Pki::new();
    let mut broker = TlsBroker::start(&pki, "", "");
    for (version, expected) in [
        (&TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&TLS13, rustls::ProtocolVersion::TLSv1_3),
    ] {
        let mut client = tls_client(broker.tls, client_config(&pki, None, &[version])).await;
        assert_eq!(
            client.stream().get_ref().1.protocol_version(),
            Some(expected)
        );
        client.open_as_guest().await;
        client.publish_and_get(b"over tls").await;
    }
    let mut plain = plain_client(broker.plain).await;
    plain.open_as_guest().await;
    plain.publish_and_get(b"in the clear").await;
    broker.assert_running();
}

#[tokio::test]
async fn lapin_publishes_and_consumes_over_amqps() {
    let pki = Pki::new();
    let broker = TlsBroker::start(&pki, "", VERIFY_PEER_STRICT);
    let conn = lapin_amqps(broker.tls, &pki, Some(&pki.client), "")
        .await
        .expect("lapin over amqps with a client certificate");
    let ch = conn.create_channel().await.expect("channel");
    let queue = declare_tmp_queue(&ch).await;
    let mut consumer = consume_no_ack(&ch, &queue).await;
    publish(&ch, "", &queue, b"hello over amqps").await;
    assert_eq!(
        body_str(&next_delivery(&mut consumer).await),
        "hello over amqps"
    );
    conn.close(200, "bye".into()).await.expect("close");
}

#[tokio::test]
async fn fail_if_no_peer_cert_refuses_clients_without_a_trusted_certificate() {
    let pki = Pki::new();
    let mut broker = TlsBroker::start(&pki, "", VERIFY_PEER_STRICT);
    // Connections already open must not notice the refusals.
    let mut with_cert = tls_client(
        broker.tls,
        client_config(&pki, Some(&pki.client), ANY_VERSION),
    )
    .await;
    with_cert.open_as_guest().await;
    let mut plain = plain_client(broker.plain).await;
    plain.open_as_guest().await;

    for version in [&TLS12, &TLS13] {
        assert_refused(&broker, client_config(&pki, None, &[version])).await;
        assert_refused(
            &broker,
            client_config(&pki, Some(&pki.stranger), &[version]),
        )
        .await;
    }

    with_cert.publish_and_get(b"still served").await;
    plain.publish_and_get(b"still served").await;
    let mut fresh = tls_client(
        broker.tls,
        client_config(&pki, Some(&pki.client), &[&TLS12]),
    )
    .await;
    fresh.open_as_guest().await;
    broker.assert_running();
}

#[tokio::test]
async fn verify_peer_without_fail_if_no_peer_cert_makes_certificates_optional_but_checked() {
    let pki = Pki::new();
    let broker = TlsBroker::start(&pki, "", VERIFY_PEER_OPTIONAL);
    let mut anonymous = tls_client(broker.tls, client_config(&pki, None, ANY_VERSION)).await;
    anonymous.open_as_guest().await;
    let mut with_cert = tls_client(
        broker.tls,
        client_config(&pki, Some(&pki.client), ANY_VERSION),
    )
    .await;
    with_cert.open_as_guest().await;
    for version in [&TLS12, &TLS13] {
        assert_refused(
            &broker,
            client_config(&pki, Some(&pki.stranger), &[version]),
        )
        .await;
    }
    anonymous.publish_and_get(b"no certificate needed").await;
}

#[tokio::test]
async fn verify_none_asks_for_no_certificate() {
    let pki = Pki::new();
    let broker = TlsBroker::start(&pki, "", "verify = \"verify_none\"");
    // Not asked for, so not checked: even the stranger's certificate goes unseen.
    for identity in [None, Some(&pki.client), Some(&pki.stranger)] {
        let mut client = tls_client(broker.tls, client_config(&pki, identity, ANY_VERSION)).await;
        client.open_as_guest().await;
    }
}

#[tokio::test]
async fn plain_amqp_on_the_tls_port_is_closed_and_logged_once() {
    let pki = Pki::new();
    let mut broker = TlsBroker::start(&pki, "", "");
    let mut wrong = RawClient::connect(broker.tls).await;
    wrong.send_bytes(PROTOCOL_HEADER).await;
    let (bytes, closed) = wrong.read_raw_until_close(WAIT).await;
    assert!(closed, "the broker must close the connection");
    // At most a TLS alert record (content type 21), never AMQP.
    assert!(
        bytes.is_empty() || bytes[0] == 0x15,
        "expected nothing or a TLS alert, got {bytes:02x?}"
    );
    let log = log_with(&broker, "TLS handshake failed").await;
    assert_eq!(
        log.matches("TLS handshake failed").count(),
        1,
        "one line per failed handshake:\n{log}"
    );
    let mut client = tls_client(broker.tls, client_config(&pki, None, ANY_VERSION)).await;
    client.open_as_guest().await;
    broker.assert_running();
}

#[tokio::test]
async fn tls_on_the_plain_port_gets_the_amqp_header_and_is_closed() {
    let pki = Pki::new();
    let mut broker = TlsBroker::start(&pki, "", "");
    assert!(
        tls_connect(broker.plain, client_config(&pki, None, ANY_VERSION))
            .await
            .is_err(),
        "no TLS on the plain port"
    );
    // What the client saw: the header of the protocol the port speaks, then the close.
    let mut raw = RawClient::connect(broker.plain).await;
    raw.send_bytes(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        .await;
    let (bytes, closed) = raw.read_raw_until_close(WAIT).await;
    assert_eq!(bytes, PROTOCOL_HEADER);
    assert!(closed);
    let mut plain = plain_client(broker.plain).await;
    plain.open_as_guest().await;
    broker.assert_running();
}

#[tokio::test]
async fn a_stalled_tls_handshake_ends_at_handshake_timeout() {
    let pki = Pki::new();
    let broker = TlsBroker::start(&pki, "handshake_timeout = 1", "");
    let mut silent = TcpStream::connect(broker.tls).await.expect("connect");
    // Half a ClientHello, then nothing.
    silent
        .write_all(b"\x16\x03\x01\x02\x00")
        .await
        .expect("write");
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(WAIT, silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the broker must close a stalled handshake: {read:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(
        log_with(&broker, "TLS handshake timed out")
            .await
            .contains("TLS handshake timed out")
    );
}

#[tokio::test]
async fn shutdown_does_not_wait_for_a_stalled_tls_handshake() {
    let pki = Pki::new();
    let mut broker = TlsBroker::start(&pki, "handshake_timeout = 30", "");
    let mut stalled = TcpStream::connect(broker.tls).await.expect("connect");
    stalled.write_all(b"\x16\x03\x01").await.expect("write");
    let mut open = tls_client(broker.tls, client_config(&pki, None, ANY_VERSION)).await;
    open.open_as_guest().await;
    let started = std::time::Instant::now();
    let status = broker.terminate();
    assert!(status.success(), "{status:?}");
    // Well under the 5 s that shutdown gives open connections.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        open.closed_by_broker().await,
        "the open TLS connection is closed too"
    );
}

#[tokio::test]
async fn listen_tls_flag_adds_a_tls_listener() {
    let pki = Pki::new();
    let broker = TlsBroker::spawn(&pki.ssl_options(""), &["--listen-tls", "127.0.0.1:0"]);
    let mut client = tls_client(broker.tls, client_config(&pki, None, ANY_VERSION)).await;
    client.open_as_guest().await;
}

#[tokio::test]
async fn ssl_options_without_listen_tls_listen_on_the_default_amqps_port() {
    // 5671 is shared by everything on this machine: skip rather than fail when it is taken.
    match std::net::TcpListener::bind("127.0.0.1:5671") {
        Ok(probe) => drop(probe),
        Err(e) => {
            eprintln!("skipped: 127.0.0.1:5671 cannot be bound beforehand ({e})");
            return;
        }
    }
    let pki = Pki::new();
    // No listen_tls and no --listen-tls; the plain listener is 127.0.0.1:0.
    let mut broker = TlsBroker::spawn(&pki.ssl_options(VERIFY_PEER_STRICT), &[]);
    assert_eq!(broker.tls, "127.0.0.1:5671".parse().unwrap());
    let mut client = tls_client(
        broker.tls,
        client_config(&pki, Some(&pki.client), ANY_VERSION),
    )
    .await;
    client.open_as_guest().await;
    client.publish_and_get(b"on 5671").await;
    let log = log_with(&broker, "default amqps port").await;
    assert!(log.contains("default amqps port, 127.0.0.1:5671"), "{log}");
    broker.assert_running();
}

/// The start must fail (not panic) with a message that has each of `needles`.
fn assert_start_fails(top: &str, ssl_options: &str, needles: &[&str]) {
    let (status, log) = start_must_fail(top, ssl_options);
    assert!(!status.success(), "warren must not start:\n{log}");
    assert!(!log.contains("panicked"), "no panic:\n{log}");
    for needle in needles {
        assert!(log.contains(needle), "expected {needle:?} in:\n{log}");
    }
}

#[test]
fn invalid_tls_setups_stop_the_start_with_a_clear_message() {
    let pki = Pki::new();
    let ca = toml_path(&pki.ca_file());
    let cert = toml_path(&pki.path("server_certificate.pem"));
    let key = toml_path(&pki.path("server_key.pem"));
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "not a key at all").unwrap();
    let other_key = pki.path("other_key.pem");
    std::fs::write(&other_key, &pki.client.key_pem).unwrap();
    let missing = pki.path("missing.pem");

    assert_start_fails(
        "",
        &format!(
            "[ssl_options]\ncertfile = {}\nkeyfile = {key}",
            toml_path(&missing)
        ),
        &["ssl_options.certfile", "missing.pem"],
    );
    assert_start_fails(
        "",
        &format!(
            "[ssl_options]\ncertfile = {cert}\nkeyfile = {}",
            toml_path(&garbage)
        ),
        &["ssl_options.keyfile", "garbage.pem"],
    );
    assert_start_fails(
        "",
        &format!(
            "[ssl_options]\ncertfile = {cert}\nkeyfile = {}",
            toml_path(&other_key)
        ),
        &["ssl_options.keyfile", "does not go with"],
    );
    assert_start_fails(
        "",
        &format!("[ssl_options]\ncertfile = {cert}\nkeyfile = {key}\nverify = \"verify_peer\""),
        &["needs ssl_options.cacertfile"],
    );
    assert_start_fails(
        "",
        &format!(
            "[ssl_options]\ncacertfile = {ca}\ncertfile = {cert}\nkeyfile = {key}\nfail_if_no_peer_cert = true"
        ),
        &["fail_if_no_peer_cert"],
    );
    assert_start_fails("", "", &["needs ssl_options.certfile"]);
    assert_start_fails(
        "",
        &format!("[ssl_options]\ncertfile = {cert}\nkeyfile = {key}\nverify = \"sometimes\""),
        &["unknown variant `sometimes`"],
    );
    assert_start_fails(
        "auth_mechanisms = [\"PLAIN\", \"FOO\"]",
        &pki.ssl_options(""),
        &["unknown variant `FOO`"],
    );
}
