//! Opening a connection: the protocol header, connection.start, PLAIN and AMQPLAIN
//! authentication, and what the broker does with a wrong header, user, password, mechanism or
//! vhost.

use std::time::Duration;

use amq_protocol::types::{AMQPValue, FieldTable};

use crate::common::*;

async fn assert_header_rejected(sent: &[u8]) {
    let broker = TestBroker::start();
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.send_bytes(sent).await;
    let (bytes, closed) = raw.read_raw_until_close(WAIT).await;
    assert_eq!(
        bytes, PROTOCOL_HEADER,
        "server must answer with the header it supports"
    );
    assert!(
        closed,
        "server must close the socket after a bad protocol header"
    );
}

#[tokio::test]
async fn wrong_protocol_version_gets_supported_header_and_close() {
    assert_header_rejected(b"AMQP\x00\x00\x09\x00").await;
}

#[tokio::test]
async fn garbage_protocol_header_gets_supported_header_and_close() {
    assert_header_rejected(b"GET / HTTP/1.1\r\n\r\n").await;
}

fn bool_cap(caps: &FieldTable, name: &str) -> bool {
    match caps.inner().get(name) {
        Some(AMQPValue::Boolean(b)) => *b,
        other => panic!("capability {name} missing or not a boolean: {other:?}"),
    }
}

#[tokio::test]
async fn connection_start_advertises_server_properties_and_capabilities() {
    let (_broker, _raw, start) = broker_with_raw_start().await;
    assert_eq!((start.version_major, start.version_minor), (0, 9));
    for key in ["product", "version", "platform"] {
        assert!(!server_property(&start, key).is_empty(), "{key} is empty");
    }
    let caps = server_capabilities(&start);
    for cap in [
        "publisher_confirms",
        "exchange_exchange_bindings",
        "basic.nack",
        "consumer_cancel_notify",
        "per_consumer_qos",
        "authentication_failure_close",
        "connection.blocked",
    ] {
        assert!(bool_cap(&caps, cap), "capability {cap} must be true");
    }
    let mechanisms = start.mechanisms.to_string();
    let mechanisms: Vec<&str> = mechanisms.split(' ').collect();
    assert!(mechanisms.contains(&"PLAIN"), "mechanisms: {mechanisms:?}");
    assert!(
        mechanisms.contains(&"AMQPLAIN"),
        "mechanisms: {mechanisms:?}"
    );
    assert!(start.locales.to_string().split(' ').any(|l| l == "en_US"));
}

#[tokio::test]
async fn plain_authentication_opens_connection() {
    let (_broker, mut raw, _) = broker_with_raw_start().await;
    let tune = raw.start_ok_as_guest().await;
    raw.tune_ok_and_open(tune.channel_max, tune.frame_max, 0)
        .await;
    raw.open_channel(1).await;
}

#[tokio::test]
async fn amqplain_authentication_opens_connection() {
    let (_broker, mut raw, _) = broker_with_raw_start().await;
    raw.send_method(0, start_ok("AMQPLAIN", amqplain_response("guest", "guest")))
        .await;
    let tune = raw.recv_tune().await;
    raw.tune_ok_and_open(tune.channel_max, tune.frame_max, 0)
        .await;
    raw.open_channel(1).await;
}

#[tokio::test]
async fn wrong_password_is_refused_with_403_access_refused() {
    let (_broker, mut raw, _) = broker_with_raw_start().await;
    raw.send_method(
        0,
        start_ok("PLAIN", plain_response("guest", "not-the-password")),
    )
    .await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(code, 403);
    assert!(
        text.starts_with("ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN"),
        "{text}"
    );
    raw.expect_eof(WAIT).await;
}

#[tokio::test]
async fn wrong_amqplain_password_is_refused_with_403_access_refused() {
    let (_broker, mut raw, _) = broker_with_raw_start().await;
    raw.send_method(0, start_ok("AMQPLAIN", amqplain_response("guest", "nope")))
        .await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(code, 403);
    assert!(
        text.starts_with(
            "ACCESS_REFUSED - Login was refused using authentication mechanism AMQPLAIN"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_user_is_refused_with_403_access_refused() {
    let (_broker, mut raw, _) = broker_with_raw_start().await;
    raw.send_method(
        0,
        start_ok("PLAIN", plain_response(&unique("nobody"), "guest")),
    )
    .await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(
        (code, text),
        access_refused(
            "Login was refused using authentication mechanism PLAIN. For details see the broker logfile."
        )
    );
}

/// The handshake must not proceed: as RabbitMQ (503 "invalid authentication
/// mechanism" or 502 for a response it cannot parse, before the connection has
/// started), no connection.close either: the socket is closed after 3 s.
async fn assert_start_ok_refused(mechanism: &str, response: Vec<u8>) {
    let (_broker, mut raw, _) = broker_with_raw_start().await;
    let sent = std::time::Instant::now();
    raw.send_method(0, start_ok(mechanism, response)).await;
    match raw.recv_within(Duration::from_secs(10)).await {
        Recv::Closed => {}
        Recv::Frame(f) => panic!("nothing may come back, got {f:?}"),
        Recv::Timeout => panic!("connection neither refused nor closed"),
    }
    let after = sent.elapsed();
    assert!(
        after >= Duration::from_millis(2900),
        "closed after {after:?}; RabbitMQ waits 3 s"
    );
}

#[tokio::test]
async fn unknown_auth_mechanism_is_refused() {
    assert_start_ok_refused("X-UNKNOWN", plain_response("guest", "guest")).await;
}

#[tokio::test]
async fn malformed_plain_response_is_refused() {
    assert_start_ok_refused("PLAIN", b"no-nul-separators".to_vec()).await;
}

#[tokio::test]
async fn plain_response_with_an_authzid_is_refused() {
    // RabbitMQ's PLAIN takes no authorization identity: the response must start with NUL.
    assert_start_ok_refused("PLAIN", b"guest\0guest\0guest".to_vec()).await;
}

#[tokio::test]
async fn plain_credentials_that_are_not_utf8_are_bad_credentials_403() {
    // Bytes to RabbitMQ: they name no user, a 403 as any wrong login (not a bad response).
    for response in [&b"\0\xff\xfe\0guest"[..], b"\0guest\0\xff"] {
        let (_broker, mut raw, _) = broker_with_raw_start().await;
        raw.send_method(0, start_ok("PLAIN", response.to_vec()))
            .await;
        let (code, text, _, _) = raw.expect_connection_close().await;
        assert_eq!(code, 403, "{response:?}");
        assert!(
            text.starts_with(
                "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN"
            ),
            "{text}"
        );
    }
}

#[tokio::test]
async fn lapin_connect_with_wrong_password_fails() {
    let broker = TestBroker::start();
    let uri = broker.uri().replacen("guest:guest@", "guest:wrong@", 1);
    let res = tokio::time::timeout(
        WAIT,
        lapin::Connection::connect(&uri, lapin::ConnectionProperties::default()),
    )
    .await
    .expect("connect attempt must finish");
    assert!(res.is_err(), "connection with a wrong password must fail");
}

#[tokio::test]
async fn unknown_vhost_is_refused_with_530_not_allowed() {
    let broker = TestBroker::start();
    let vhost = unique("no-such-vhost");
    let mut raw = RawClient::connect(broker.addr()).await;
    raw.start().await;
    let tune = raw.start_ok_as_guest().await;
    raw.send_method(0, tune_ok(tune.channel_max, tune.frame_max, 0))
        .await;
    raw.send_method(0, connection_open(&vhost)).await;
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(
        (code, text),
        not_allowed(format!("vhost {vhost} not found"))
    );
}
