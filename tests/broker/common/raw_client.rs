//! [`RawClient`]: an AMQP client on a plain socket that sends whatever frames a test builds and
//! shows it every frame the broker sends, for tests of the wire protocol itself.

use std::net::SocketAddr;
use std::time::Duration;

use amq_protocol::frame::{AMQPFrame, parse_frame};
use amq_protocol::protocol::{AMQPClass, basic, channel, connection};
use amq_protocol::types::{AMQPValue, FieldTable};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{
    PROTOCOL_HEADER, WAIT, channel_close_ok, channel_open, connection_close_ok, connection_open,
    content_header_frame, encode, method_frame, plain_response, start_ok, tune_ok,
};

/// What a raw read produced.
#[derive(Debug)]
// Short-lived values in tests: boxing the frame would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum Recv {
    Frame(AMQPFrame),
    /// The server closed the socket (EOF or reset).
    Closed,
    /// Nothing arrived in time.
    Timeout,
}

/// A minimal AMQP client speaking frames over a plain socket.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    /// frame_max used to split bodies this client sends.
    pub frame_max: u32,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> RawClient {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("tcp connect timed out")
            .expect("tcp connect");
        stream.set_nodelay(true).ok();
        RawClient {
            stream,
            buf: Vec::new(),
            frame_max: 131_072,
        }
    }

    /// The socket, for tests that go on writing raw bytes without this client's help.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("raw write");
        self.stream.flush().await.expect("raw flush");
    }

    /// Like send_bytes but tolerates the server having closed the socket.
    pub async fn try_send_bytes(&mut self, bytes: &[u8]) -> bool {
        self.stream.write_all(bytes).await.is_ok() && self.stream.flush().await.is_ok()
    }

    pub async fn send(&mut self, frame: &AMQPFrame) {
        self.send_bytes(&encode(frame)).await
    }

    pub async fn send_method(&mut self, channel: u16, class: AMQPClass) {
        self.send_bytes(&method_frame(channel, class)).await
    }

    /// Reads whatever raw bytes arrive until EOF or `wait` passes.
    pub async fn read_raw_until_close(&mut self, wait: Duration) -> (Vec<u8>, bool) {
        let mut out = std::mem::take(&mut self.buf);
        let deadline = tokio::time::Instant::now() + wait;
        let mut chunk = [0u8; 4096];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return (out, false),
                Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
                Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Next frame (heartbeats included), EOF, or timeout.
    pub async fn recv_within(&mut self, wait: Duration) -> Recv {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if !self.buf.is_empty() {
                let parsed = match parse_frame(&self.buf[..]) {
                    Ok((rest, frame)) => Some((self.buf.len() - rest.len(), frame)),
                    Err(e) if e.is_incomplete() => None,
                    Err(e) => panic!(
                        "server sent an unparseable frame ({e:?}): {:02x?}",
                        &self.buf[..self.buf.len().min(64)]
                    ),
                };
                if let Some((used, frame)) = parsed {
                    self.buf.drain(..used);
                    return Recv::Frame(frame);
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

    /// Next non-heartbeat frame; panics on EOF or timeout.
    pub async fn recv(&mut self) -> AMQPFrame {
        loop {
            match self.recv_within(WAIT).await {
                Recv::Frame(AMQPFrame::Heartbeat) => continue,
                Recv::Frame(f) => return f,
                other => panic!("expected a frame, got {other:?}"),
            }
        }
    }

    /// Next method frame (skipping heartbeats); panics on anything else.
    pub async fn recv_method(&mut self) -> (u16, AMQPClass) {
        match self.recv().await {
            AMQPFrame::Method(ch, class) => (ch, class),
            other => panic!("expected a method frame, got {other:?}"),
        }
    }

    /// The next frame, which must be a content header on channel `ch`: the body size it
    /// announces.
    pub async fn recv_content_header(&mut self, ch: u16) -> u64 {
        match self.recv().await {
            AMQPFrame::Header(c, h) if c == ch => h.body_size,
            other => panic!("expected content header on channel {ch}, got {other:?}"),
        }
    }

    /// The next frame, which must be a content body frame on channel `ch`: its bytes.
    pub async fn recv_content_body(&mut self, ch: u16) -> Vec<u8> {
        match self.recv().await {
            AMQPFrame::Body(c, bytes) if c == ch => bytes,
            other => panic!("expected content body on channel {ch}, got {other:?}"),
        }
    }

    /// Sends the protocol header and returns connection.start.
    pub async fn start(&mut self) -> connection::Start {
        self.send_bytes(PROTOCOL_HEADER).await;
        match self.recv_method().await {
            (0, AMQPClass::Connection(connection::AMQPMethod::Start(start))) => start,
            other => panic!("expected connection.start, got {other:?}"),
        }
    }

    pub async fn recv_tune(&mut self) -> connection::Tune {
        match self.recv_method().await {
            (0, AMQPClass::Connection(connection::AMQPMethod::Tune(tune))) => tune,
            other => panic!("expected connection.tune, got {other:?}"),
        }
    }

    /// Full handshake as guest/guest (PLAIN) to vhost `/`, accepting the
    /// server's tune proposal.
    pub async fn handshake(&mut self) -> connection::Tune {
        self.start().await;
        let tune = self.start_ok_as_guest().await;
        self.frame_max = tune.frame_max;
        self.tune_ok_and_open(tune.channel_max, tune.frame_max, 0)
            .await;
        tune
    }

    /// After connection.start: start-ok as guest/guest (PLAIN); returns the server's
    /// connection.tune.
    pub async fn start_ok_as_guest(&mut self) -> connection::Tune {
        self.send_method(0, start_ok("PLAIN", plain_response("guest", "guest")))
            .await;
        self.recv_tune().await
    }

    /// After connection.tune: tune-ok with these values, connection.open of vhost `/`, and its
    /// open-ok.
    pub async fn tune_ok_and_open(&mut self, channel_max: u16, frame_max: u32, heartbeat: u16) {
        self.send_method(0, tune_ok(channel_max, frame_max, heartbeat))
            .await;
        self.send_method(0, connection_open("/")).await;
        self.expect_open_ok().await;
    }

    pub async fn expect_open_ok(&mut self) {
        match self.recv_method().await {
            (0, AMQPClass::Connection(connection::AMQPMethod::OpenOk(_))) => {}
            other => panic!("expected connection.open-ok, got {other:?}"),
        }
    }

    pub async fn open_channel(&mut self, ch: u16) {
        self.send_method(ch, channel_open()).await;
        match self.recv_method().await {
            (c, AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))) if c == ch => {}
            other => panic!("expected channel.open-ok on {ch}, got {other:?}"),
        }
    }

    /// Sends a method and returns the next method the server sends.
    pub async fn rpc(&mut self, ch: u16, class: AMQPClass) -> (u16, AMQPClass) {
        self.send_method(ch, class).await;
        self.recv_method().await
    }

    /// Publishes a message in properly sized frames.
    pub async fn publish(
        &mut self,
        ch: u16,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        immediate: bool,
        body: &[u8],
    ) {
        let mut bytes = method_frame(
            ch,
            AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
                exchange: exchange.into(),
                routing_key: routing_key.into(),
                mandatory,
                immediate,
            })),
        );
        bytes.extend(content_header_frame(ch, body.len() as u64));
        let max = (self.frame_max as usize).saturating_sub(8).max(1);
        for chunk in body.chunks(max) {
            bytes.extend(encode(&AMQPFrame::Body(ch, chunk.to_vec())));
        }
        self.send_bytes(&bytes).await;
    }

    /// Reads until the server's connection.close (skipping other frames),
    /// answers close-ok and returns (code, text, class_id, method_id).
    pub async fn expect_connection_close(&mut self) -> (u16, String, u16, u16) {
        loop {
            match self.recv_within(WAIT).await {
                Recv::Frame(AMQPFrame::Method(
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::Close(c)),
                )) => {
                    let _ = self
                        .try_send_bytes(&method_frame(0, connection_close_ok()))
                        .await;
                    return (
                        c.reply_code,
                        c.reply_text.as_str().to_string(),
                        c.class_id,
                        c.method_id,
                    );
                }
                Recv::Frame(_) => continue,
                other => panic!("expected connection.close, got {other:?}"),
            }
        }
    }

    /// Reads until the server's channel.close on `ch`, answers close-ok and
    /// returns (code, text, class_id, method_id).
    pub async fn expect_channel_close(&mut self, ch: u16) -> (u16, String, u16, u16) {
        loop {
            match self.recv_within(WAIT).await {
                Recv::Frame(AMQPFrame::Method(
                    c,
                    AMQPClass::Channel(channel::AMQPMethod::Close(close)),
                )) if c == ch => {
                    self.send_method(ch, channel_close_ok()).await;
                    return (
                        close.reply_code,
                        close.reply_text.as_str().to_string(),
                        close.class_id,
                        close.method_id,
                    );
                }
                Recv::Frame(AMQPFrame::Method(
                    0,
                    AMQPClass::Connection(connection::AMQPMethod::Close(c)),
                )) => {
                    panic!("expected channel.close on {ch}, got connection.close {c:?}")
                }
                Recv::Frame(_) => continue,
                other => panic!("expected channel.close on {ch}, got {other:?}"),
            }
        }
    }

    /// Waits for the server to close the socket, skipping any frames.
    pub async fn expect_eof(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_within(left).await {
                Recv::Closed => return,
                Recv::Frame(_) => continue,
                Recv::Timeout => panic!("server did not close the socket within {wait:?}"),
            }
        }
    }
}

/// A long-string server property of a connection.start (`product`, `version`, ...); fails the
/// test if it is missing or of another type.
pub fn server_property(start: &connection::Start, key: &str) -> String {
    match start.server_properties.inner().get(key) {
        Some(AMQPValue::LongString(s)) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        other => panic!("server property {key}: expected a long string, got {other:?}"),
    }
}

/// One capability a connection.start advertises (None if it does not name it).
pub fn capability(start: &connection::Start, name: &str) -> Option<AMQPValue> {
    server_capabilities(start).inner().get(name).cloned()
}

/// The `capabilities` table of a connection.start's server properties.
pub fn server_capabilities(start: &connection::Start) -> FieldTable {
    match start.server_properties.inner().get("capabilities") {
        Some(AMQPValue::FieldTable(t)) => t.clone(),
        other => panic!("capabilities missing: {other:?}"),
    }
}
