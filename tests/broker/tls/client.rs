//! The client side: rustls client configurations (which TLS versions, which client certificate),
//! [`AmqpClient`], a small AMQP client that speaks frames over any stream (TLS or plain) for
//! the handshake, publish and get, and a lapin connection over amqps.

use std::net::SocketAddr;
use std::sync::Arc;

use amq_protocol::frame::{AMQPFrame, parse_frame};
use amq_protocol::protocol::{AMQPClass, basic, connection};
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::common::*;

use super::pki::{Identity, Pki};

/// A rustls client trusting the test CA, limited to `versions`, presenting `identity`.
pub fn client_config(
    pki: &Pki,
    identity: Option<&Identity>,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der()).expect("trust the test CA");
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("TLS versions")
            .with_root_certificates(roots);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(id.cert_der(), id.key_der())
            .expect("client certificate"),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// TLS 1.2 and 1.3.
pub const ANY_VERSION: &[&SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A TLS connection to `addr` (checked against the certificate's 127.0.0.1 name).
pub async fn tls_connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    tokio::time::timeout(WAIT, TlsConnector::from(config).connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// A TLS connection that must succeed, with an AMQP client on it.
pub async fn tls_client(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> AmqpClient<TlsStream<TcpStream>> {
    AmqpClient::new(tls_connect(addr, config).await.expect("TLS handshake"))
}

/// An AMQP client on a plain socket.
pub async fn plain_client(addr: SocketAddr) -> AmqpClient<TcpStream> {
    AmqpClient::new(TcpStream::connect(addr).await.expect("tcp connect"))
}

/// Frames over a stream: enough AMQP for handshakes, publish and get.
pub struct AmqpClient<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AmqpClient<S> {
    pub fn new(stream: S) -> Self {
        AmqpClient {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn stream(&self) -> &S {
        &self.stream
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    pub async fn send_method(&mut self, channel: u16, class: AMQPClass) {
        self.send_bytes(&method_frame(channel, class))
            .await
            .expect("send a method");
    }

    /// The next frame, EOF (or a failed read: a TLS alert), or nothing within [`WAIT`].
    pub async fn recv(&mut self) -> Recv {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if !self.buf.is_empty() {
                match parse_frame(&self.buf[..]) {
                    Ok((rest, frame)) => {
                        let used = self.buf.len() - rest.len();
                        self.buf.drain(..used);
                        return Recv::Frame(frame);
                    }
                    Err(e) if e.is_incomplete() => {}
                    Err(e) => panic!("unparseable frame from the broker: {e:?}"),
                }
            }
            let mut chunk = vec![0u8; 65536];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Recv::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Recv::Closed,
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// The next method (heartbeats skipped); panics on anything else.
    pub async fn recv_method(&mut self) -> (u16, AMQPClass) {
        loop {
            match self.recv().await {
                Recv::Frame(AMQPFrame::Method(ch, class)) => return (ch, class),
                Recv::Frame(AMQPFrame::Heartbeat) => continue,
                other => panic!("expected a method, got {other:?}"),
            }
        }
    }

    /// Protocol header → connection.start; `Err` with what came instead (e.g. the broker closed
    /// the connection).
    pub async fn start(&mut self) -> Result<connection::Start, Recv> {
        if self.send_bytes(PROTOCOL_HEADER).await.is_err() {
            return Err(Recv::Closed);
        }
        match self.recv().await {
            Recv::Frame(AMQPFrame::Method(
                0,
                AMQPClass::Connection(connection::AMQPMethod::Start(start)),
            )) => Ok(start),
            other => Err(other),
        }
    }

    /// After connection.start: logs in with `mechanism` and opens vhost `/`; `Err((code, text))`
    /// when the broker closes the connection instead.
    pub async fn login(&mut self, mechanism: &str, response: Vec<u8>) -> Result<(), (u16, String)> {
        self.send_method(0, start_ok(mechanism, response)).await;
        let tune = match self.recv_method().await {
            (0, AMQPClass::Connection(connection::AMQPMethod::Tune(tune))) => tune,
            (0, AMQPClass::Connection(connection::AMQPMethod::Close(close))) => {
                let _ = self
                    .send_bytes(&method_frame(0, connection_close_ok()))
                    .await;
                return Err((close.reply_code, close.reply_text.to_string()));
            }
            other => panic!("expected connection.tune, got {other:?}"),
        };
        self.send_method(0, tune_ok(tune.channel_max, tune.frame_max, 0))
            .await;
        self.send_method(0, connection_open("/")).await;
        match self.recv_method().await {
            (0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))) => Ok(()),
            other => panic!("expected connection.open-ok, got {other:?}"),
        }
    }

    /// After connection.start: a start-ok RabbitMQ refuses with no connection.close (a mechanism
    /// it does not offer): nothing comes back and the socket is closed, after RabbitMQ's 3 s.
    pub async fn refused_silently(&mut self, mechanism: &str, response: Vec<u8>) {
        let sent = tokio::time::Instant::now();
        self.send_method(0, start_ok(mechanism, response)).await;
        let got = self.recv().await;
        assert!(
            matches!(got, Recv::Closed),
            "{mechanism}: no answer, the socket closed; got {got:?}"
        );
        let after = sent.elapsed();
        assert!(
            after >= std::time::Duration::from_millis(2900),
            "{mechanism}: closed after {after:?}, RabbitMQ waits 3 s"
        );
    }

    /// The whole handshake as guest (PLAIN), then channel 1.
    pub async fn open_as_guest(&mut self) {
        self.start().await.expect("connection.start");
        self.login("PLAIN", plain_response("guest", "guest"))
            .await
            .expect("guest logs in");
        self.open_channel().await;
    }

    pub async fn open_channel(&mut self) {
        self.send_method(1, channel_open()).await;
        let (ch, method) = self.recv_method().await;
        assert!(
            ch == 1 && matches!(method, AMQPClass::Channel(_)),
            "expected channel.open-ok, got {method:?}"
        );
    }

    /// On channel 1: an exclusive queue, one message published to it and got back.
    pub async fn publish_and_get(&mut self, body: &[u8]) {
        let queue = unique("tls");
        self.send_method(1, queue_declare_exclusive(&queue)).await;
        self.recv_method().await;
        self.send_bytes(&publish_frames(1, "", &queue, body))
            .await
            .expect("publish");
        self.send_method(1, basic_get_method(&queue, true)).await;
        match self.recv_method().await {
            (1, AMQPClass::Basic(basic::AMQPMethod::GetOk(_))) => {}
            other => panic!("expected basic.get-ok, got {other:?}"),
        }
        assert!(matches!(
            self.recv().await,
            Recv::Frame(AMQPFrame::Header(1, _))
        ));
        match self.recv().await {
            Recv::Frame(AMQPFrame::Body(1, got)) => assert_eq!(got, body),
            other => panic!("expected the body, got {other:?}"),
        }
    }

    /// Waits for the broker to close the socket (frames skipped); true if it did within
    /// [`WAIT`].
    pub async fn closed_by_broker(&mut self) -> bool {
        loop {
            match self.recv().await {
                Recv::Closed => return true,
                Recv::Timeout => return false,
                Recv::Frame(_) => continue,
            }
        }
    }
}

/// The mechanisms a connection.start offers.
pub fn mechanisms(start: &connection::Start) -> Vec<String> {
    start
        .mechanisms
        .to_string()
        .split(' ')
        .map(str::to_string)
        .collect()
}

/// lapin over amqps to `addr`, trusting the test CA and presenting `identity`; `query` is the
/// URI's query (e.g. `auth_mechanism=external`).
pub async fn lapin_amqps(
    addr: SocketAddr,
    pki: &Pki,
    identity: Option<&Identity>,
    query: &str,
) -> lapin::Result<lapin::Connection> {
    let mut uri = format!("amqps://guest:guest@127.0.0.1:{}/%2f", addr.port());
    if !query.is_empty() {
        uri = format!("{uri}?{query}");
    }
    let config = OwnedTLSConfig {
        identity: identity.map(|id| OwnedIdentity::PKCS8 {
            pem: id.cert_pem.clone().into_bytes(),
            key: id.key_pem.clone().into_bytes(),
        }),
        cert_chain: Some(pki.ca_pem.clone()),
    };
    let runtime = lapin::runtime::default_runtime().expect("tokio runtime for lapin");
    tokio::time::timeout(
        WAIT,
        lapin::Connection::connect_with_config(
            &uri,
            lapin::ConnectionProperties::default(),
            config,
            runtime,
        ),
    )
    .await
    .expect("lapin amqps connect timed out")
}
