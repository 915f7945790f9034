//! Shared harness: a broker per test (or an external one via
//! `WARREN_TEST_AMQP_URL`), lapin helpers and a raw-socket AMQP client for
//! tests that need to see or craft individual frames.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    net::{SocketAddr, ToSocketAddrs},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use amq_protocol::frame::{AMQPContentHeader, AMQPFrame, ProtocolVersion, gen_frame, parse_frame};
use amq_protocol::protocol::{AMQPClass, BasicProperties, basic, channel, connection};
use amq_protocol::types::{AMQPValue, FieldTable, LongString, ShortString};
use futures_lite::StreamExt;
use lapin::{Channel, Connection, ConnectionProperties, ErrorKind, message::Delivery};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Environment variable naming an external broker to run the suite against.
pub const EXTERNAL_URL_ENV: &str = "WARREN_TEST_AMQP_URL";

/// Default time to wait for something the broker should do "now".
pub const WAIT: Duration = Duration::from_secs(5);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name that is unique across tests, test runs and processes, so that the
/// suite can run against one shared RabbitMQ.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// Whether the suite runs against an external broker (e.g. RabbitMQ).
pub fn external() -> bool {
    std::env::var(EXTERNAL_URL_ENV)
        .map(|u| !u.is_empty())
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------
// Broker process
// ---------------------------------------------------------------------------

/// One broker for one test: the warren binary in a fresh data directory, or
/// the external broker named by `WARREN_TEST_AMQP_URL`.
pub struct TestBroker {
    child: Option<Child>,
    data_dir: Option<PathBuf>,
    addr: SocketAddr,
    uri: String,
}

impl TestBroker {
    pub fn start() -> TestBroker {
        if let Ok(url) = std::env::var(EXTERNAL_URL_ENV)
            && !url.is_empty()
        {
            return Self::external(url);
        }
        Self::spawn(&[])
    }

    /// Spawns the warren binary with extra command-line arguments (after `--listen 127.0.0.1:0
    /// --data-dir DIR`), whatever `WARREN_TEST_AMQP_URL` says: for tests of warren's own CLI.
    pub fn spawn(extra_args: &[&str]) -> TestBroker {
        let data_dir = std::env::temp_dir().join(unique("warren-test"));
        std::fs::create_dir_all(&data_dir).expect("create broker data dir");
        Self::spawn_on(data_dir, true, extra_args)
    }

    /// Spawns the warren binary on an existing data directory (`--data-dir data_dir`), e.g. to
    /// restart a broker on the state a previous one left. Unlike [`TestBroker::spawn`], the
    /// directory is NOT deleted when the broker is dropped: the caller owns it.
    #[allow(dead_code)]
    pub fn spawn_in(data_dir: &std::path::Path, extra_args: &[&str]) -> TestBroker {
        std::fs::create_dir_all(data_dir).expect("create broker data dir");
        Self::spawn_on(data_dir.to_path_buf(), false, extra_args)
    }

    fn spawn_on(data_dir: PathBuf, delete_on_drop: bool, extra_args: &[&str]) -> TestBroker {
        let bin = env!("CARGO_BIN_EXE_warren");
        let show_log = std::env::var_os("WARREN_TEST_LOG").is_some();
        let mut child = Command::new(bin)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if show_log {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // Keep draining stdout for the child's whole life so it never blocks
        // (or dies of SIGPIPE) writing to it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => {
                        let _ = tx.send(line);
                    }
                    Err(_) => break,
                }
            }
        });
        let mut broker = TestBroker {
            child: Some(child),
            data_dir: delete_on_drop.then_some(data_dir),
            addr: "127.0.0.1:0".parse().unwrap(),
            uri: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.trim().strip_prefix("warren: listening on ") {
                        broker.addr = rest
                            .trim()
                            .parse()
                            .unwrap_or_else(|e| panic!("bad listen line {line:?}: {e}"));
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("broker did not print 'warren: listening on' within 20 s")
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let status = broker.child.as_mut().unwrap().wait();
                    panic!("broker exited before listening: {status:?}")
                }
            }
        }
        broker.uri = format!("amqp://guest:guest@{}/%2f", broker.addr);
        broker
    }

    fn external(url: String) -> TestBroker {
        // amqp://user:pass@host:port/vhost
        let rest = url
            .strip_prefix("amqp://")
            .unwrap_or_else(|| panic!("{EXTERNAL_URL_ENV} must be an amqp:// URL"));
        let authority = rest.split('/').next().unwrap_or("");
        let hostport = authority.rsplit('@').next().unwrap_or("");
        let hostport = if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:5672")
        };
        let addr = hostport
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("cannot resolve {hostport}"));
        TestBroker {
            child: None,
            data_dir: None,
            addr,
            uri: url,
        }
    }

    /// Spawns warren with a TOML configuration file holding `toml` (plus the usual
    /// `--listen`/`--data-dir`), whatever `WARREN_TEST_AMQP_URL` says.
    pub fn spawn_with_config(toml: &str) -> TestBroker {
        let path = std::env::temp_dir().join(format!("{}.toml", unique("warren-config")));
        std::fs::write(&path, toml).expect("write config file");
        let broker = Self::spawn(&["--config", path.to_str().expect("utf-8 temp path")]);
        let _ = std::fs::remove_file(&path);
        broker
    }

    /// The resident memory of a spawned broker process, in kB (None for an external broker).
    pub fn rss_kb(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn uri(&self) -> String {
        self.uri.clone()
    }

    /// A lapin connection as guest to vhost `/`.
    pub async fn connect(&self) -> Connection {
        tokio::time::timeout(
            WAIT,
            Connection::connect(&self.uri, ConnectionProperties::default()),
        )
        .await
        .expect("lapin connect timed out")
        .expect("lapin connect")
    }

    /// A lapin connection plus one open channel.
    pub async fn channel(&self) -> (Connection, Channel) {
        let conn = self.connect().await;
        let ch = conn.create_channel().await.expect("create channel");
        (conn, ch)
    }

    /// A raw client that has completed the handshake (guest, vhost `/`).
    pub async fn raw_open(&self) -> RawClient {
        let mut raw = RawClient::connect(self.addr).await;
        raw.handshake().await;
        raw
    }

    /// Whether a spawned broker process is still alive (always true for an
    /// external broker).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Sends `signal` (e.g. "TERM") to the broker process and waits up to 10 s for it to exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        let child = self
            .child
            .as_mut()
            .expect("only a spawned broker can be signalled");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("wait for broker") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "broker still running 10 s after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Crashes the broker: SIGKILL, then waits for the process to be gone.
    #[allow(dead_code)]
    pub fn kill9(&mut self) {
        let child = self
            .child
            .as_mut()
            .expect("only a spawned broker can be killed");
        child.kill().expect("SIGKILL the broker");
        child.wait().expect("wait for the killed broker");
    }

    /// Asserts that the broker survived whatever the test did and still
    /// accepts and serves a fresh connection.
    pub async fn assert_alive(&mut self) {
        assert!(self.is_running(), "broker process died");
        let conn = self.connect().await;
        let ch = conn
            .create_channel()
            .await
            .expect("channel on fresh connection");
        let q = ch
            .queue_declare(
                "".into(),
                lapin::options::QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue.declare on fresh connection");
        assert!(q.name().as_str().starts_with("amq.gen-"));
        conn.close(200, "bye".into())
            .await
            .expect("close fresh connection");
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.data_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

// ---------------------------------------------------------------------------
// lapin helpers
// ---------------------------------------------------------------------------

/// The AMQP reply code and text carried by a lapin error, if it is one.
pub fn amqp_error(err: &lapin::Error) -> Option<(u16, String)> {
    match err.kind() {
        ErrorKind::ProtocolError(e) => Some((e.get_id(), e.get_message().as_str().to_string())),
        _ => None,
    }
}

/// Unwraps the AMQP error (code, text) of a failed lapin call.
#[track_caller]
pub fn expect_amqp_error<T: std::fmt::Debug>(res: lapin::Result<T>) -> (u16, String) {
    match res {
        Ok(v) => panic!("expected an AMQP error, got Ok({v:?})"),
        Err(e) => amqp_error(&e).unwrap_or_else(|| panic!("expected an AMQP error, got {e:?}")),
    }
}

pub fn table(entries: Vec<(&str, AMQPValue)>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(k.into(), v);
    }
    t
}

pub fn long_str(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}

/// Declares a non-durable, auto-named-by-caller queue with default options.
pub async fn declare_queue(ch: &Channel, name: &str) {
    ch.queue_declare(name.into(), Default::default(), FieldTable::default())
        .await
        .unwrap_or_else(|e| panic!("declare queue {name}: {e:?}"));
}

/// Publishes `body` without properties and waits until lapin sent it.
pub async fn publish(ch: &Channel, exchange: &str, routing_key: &str, body: &[u8]) {
    publish_props(ch, exchange, routing_key, body, BasicProperties::default()).await
}

pub async fn publish_props(
    ch: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    // The PublisherConfirm is dropped: without confirm.select it resolves
    // immediately; with it, wait_for_confirms collects it.
    drop(
        ch.basic_publish(
            exchange.into(),
            routing_key.into(),
            Default::default(),
            body,
            props,
        )
        .await
        .expect("basic.publish"),
    );
}

/// basic.get with no-ack; returns the body, or None on get-empty.
pub async fn get_body(ch: &Channel, queue: &str) -> Option<Vec<u8>> {
    ch.basic_get(
        queue.into(),
        lapin::options::BasicGetOptions { no_ack: true },
    )
    .await
    .expect("basic.get")
    .map(|m| m.delivery.data)
}

/// Drains a queue with no-ack basic.get and returns the bodies as strings.
pub async fn drain_bodies(ch: &Channel, queue: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(body) = get_body(ch, queue).await {
        out.push(String::from_utf8(body).unwrap());
        assert!(out.len() < 10_000, "queue {queue} never drains");
    }
    out
}

/// Publishing is asynchronous: a round-trip on the same channel guarantees
/// the broker has processed everything published before it (RabbitMQ
/// processes a channel's methods in order; routing is done by then).
/// The round-trip is a passive declare of amq.direct, which changes nothing
/// (unlike e.g. basic.qos, which would reset the channel's prefetch).
pub async fn sync(ch: &Channel) {
    ch.exchange_declare(
        "amq.direct".into(),
        lapin::ExchangeKind::Direct,
        lapin::options::ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("sync round-trip (passive declare of amq.direct)");
}

/// Current message count of a queue (passive declare).
pub async fn message_count(ch: &Channel, queue: &str) -> u32 {
    ch.queue_declare(
        queue.into(),
        lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap_or_else(|e| panic!("passive declare {queue}: {e:?}"))
    .message_count()
}

/// Waits until a queue holds `n` ready messages (routing/requeue from other
/// channels or connections is asynchronous with respect to this channel).
pub async fn wait_message_count(ch: &Channel, queue: &str, n: u32) {
    let deadline = Instant::now() + WAIT;
    loop {
        let c = message_count(ch, queue).await;
        if c == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "queue {queue} has {c} messages, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Next delivery of a consumer, failing the test after `WAIT`.
pub async fn next_delivery(consumer: &mut lapin::Consumer) -> Delivery {
    match tokio::time::timeout(WAIT, consumer.next()).await {
        Err(_) => panic!("no delivery within {WAIT:?}"),
        Ok(None) => panic!("consumer ended instead of delivering"),
        Ok(Some(Err(e))) => panic!("consumer error: {e:?}"),
        Ok(Some(Ok(d))) => d,
    }
}

/// Asserts the consumer gets nothing for `wait`.
pub async fn assert_no_delivery(consumer: &mut lapin::Consumer, wait: Duration) {
    if let Ok(Some(item)) = tokio::time::timeout(wait, consumer.next()).await {
        match item {
            Ok(d) => panic!("unexpected delivery {:?}", String::from_utf8_lossy(&d.data)),
            Err(e) => panic!("unexpected consumer error {e:?}"),
        }
    }
}

/// The next item of a consumer that is expected to fail with an AMQP error
/// (e.g. its channel was closed by the broker).
pub async fn consumer_error(consumer: &mut lapin::Consumer) -> (u16, String) {
    loop {
        match tokio::time::timeout(WAIT, consumer.next()).await {
            Err(_) => panic!("consumer saw no error within {WAIT:?}"),
            Ok(None) => panic!("consumer ended without an error"),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => {
                return amqp_error(&e).unwrap_or_else(|| panic!("non-AMQP consumer error {e:?}"));
            }
        }
    }
}

/// Watches a channel for a broker-initiated channel.close.
///
/// lapin reports a channel.close to the channel's consumers, so this keeps
/// an idle consumer on an empty exclusive queue. Unlike "do another RPC and
/// look at its error", this does not race with lapin processing the close.
pub struct ChannelErrorWatch(lapin::Consumer);

impl ChannelErrorWatch {
    pub async fn new(ch: &Channel) -> ChannelErrorWatch {
        let q = ch
            .queue_declare(
                "".into(),
                lapin::options::QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare watch queue");
        let consumer = ch
            .basic_consume(
                q.name().clone(),
                "".into(),
                lapin::options::BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("consume watch queue");
        ChannelErrorWatch(consumer)
    }

    /// The (code, text) of the channel.close the broker sends.
    pub async fn error(mut self) -> (u16, String) {
        consumer_error(&mut self.0).await
    }
}

// ---------------------------------------------------------------------------
// Raw client
// ---------------------------------------------------------------------------

pub const PROTOCOL_HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";

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

/// Encodes one frame.
pub fn encode(frame: &AMQPFrame) -> Vec<u8> {
    let (buf, _) = gen_frame(frame)(Vec::new().into())
        .expect("serialise frame")
        .into_inner();
    buf
}

pub fn method_frame(channel: u16, class: AMQPClass) -> Vec<u8> {
    encode(&AMQPFrame::Method(channel, class))
}

/// A frame built by hand: type, channel, payload, end byte.
pub fn raw_frame(frame_type: u8, channel: u16, payload: &[u8], end: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.push(frame_type);
    v.extend_from_slice(&channel.to_be_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v.push(end);
    v
}

/// Client properties announcing the capabilities a modern client has.
pub fn client_properties() -> FieldTable {
    let caps = table(vec![
        ("authentication_failure_close", AMQPValue::Boolean(true)),
        ("basic.nack", AMQPValue::Boolean(true)),
        ("connection.blocked", AMQPValue::Boolean(true)),
        ("consumer_cancel_notify", AMQPValue::Boolean(true)),
        ("publisher_confirms", AMQPValue::Boolean(true)),
    ]);
    table(vec![
        ("product", long_str("warren-tests")),
        ("capabilities", AMQPValue::FieldTable(caps)),
    ])
}

pub fn plain_response(user: &str, pass: &str) -> Vec<u8> {
    format!("\0{user}\0{pass}").into_bytes()
}

/// AMQPLAIN response: a field table *without* its 4-byte length prefix,
/// holding LOGIN and PASSWORD as long strings (what RabbitMQ's clients send).
pub fn amqplain_response(user: &str, pass: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for (k, val) in [("LOGIN", user), ("PASSWORD", pass)] {
        v.push(k.len() as u8);
        v.extend_from_slice(k.as_bytes());
        v.push(b'S');
        v.extend_from_slice(&(val.len() as u32).to_be_bytes());
        v.extend_from_slice(val.as_bytes());
    }
    v
}

pub fn start_ok(mechanism: &str, response: Vec<u8>) -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::StartOk(connection::StartOk {
        client_properties: client_properties(),
        mechanism: mechanism.into(),
        response: LongString::from(response),
        locale: "en_US".into(),
    }))
}

pub fn tune_ok(channel_max: u16, frame_max: u32, heartbeat: u16) -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::TuneOk(connection::TuneOk {
        channel_max,
        frame_max,
        heartbeat,
    }))
}

pub fn connection_open(vhost: &str) -> AMQPClass {
    AMQPClass::Connection(connection::AMQPMethod::Open(connection::Open {
        virtual_host: vhost.into(),
    }))
}

pub fn channel_open() -> AMQPClass {
    AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {}))
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
        self.send_method(0, start_ok("PLAIN", plain_response("guest", "guest")))
            .await;
        let tune = self.recv_tune().await;
        self.send_method(0, tune_ok(tune.channel_max, tune.frame_max, 0))
            .await;
        self.frame_max = tune.frame_max;
        self.send_method(0, connection_open("/")).await;
        self.expect_open_ok().await;
        tune
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
        bytes.extend(encode(&AMQPFrame::Header(
            ch,
            AMQPContentHeader {
                class_id: 60,
                body_size: body.len() as u64,
                properties: BasicProperties::default(),
            },
        )));
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
                        .try_send_bytes(&method_frame(
                            0,
                            AMQPClass::Connection(connection::AMQPMethod::CloseOk(
                                connection::CloseOk {},
                            )),
                        ))
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
                    self.send_method(
                        ch,
                        AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
                    )
                    .await;
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

pub fn short(s: &str) -> ShortString {
    s.into()
}

pub fn version_0_9_1() -> ProtocolVersion {
    ProtocolVersion::amqp_0_9_1()
}

/// basic.publish + content header (no properties) + one body frame, as raw bytes.
pub fn publish_frames(channel: u16, exchange: &str, routing_key: &str, body: &[u8]) -> Vec<u8> {
    let mut out = method_frame(
        channel,
        AMQPClass::Basic(basic::AMQPMethod::Publish(basic::Publish {
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            mandatory: false,
            immediate: false,
        })),
    );
    out.extend(encode(&AMQPFrame::Header(
        channel,
        AMQPContentHeader {
            class_id: 60,
            body_size: body.len() as u64,
            properties: BasicProperties::default(),
        },
    )));
    out.extend(raw_frame(3, channel, body, 0xCE));
    out
}
