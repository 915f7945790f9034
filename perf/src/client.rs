//! A small AMQP 0-9-1 client connection on tokio: TCP connect, the handshake (protocol header,
//! start-ok with PLAIN, tune-ok accepting the server's values, open), channel 1 (and channels
//! 2..=K on request, [`Conn::open_channels`]), synchronous request/reply for setup methods,
//! heartbeats, and a reader / writer pair that producers split apart. Reads go into one reused
//! `BytesMut`; writes are batched by the callers into another.
//!
//! Clients announce the `connection.blocked` capability, so a broker that blocks publishers
//! under a resource alarm (RabbitMQ's memory or disk alarm) says so: the reader takes
//! `connection.blocked` / `connection.unblocked` out of the frame stream and counts them in a
//! [`Blocking`] shared by all the connections of a run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amq_protocol::protocol::{AMQPClass, channel, connection};
use amq_protocol::types::{AMQPValue, FieldTable, LongString};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use warren_protocol::{PROTOCOL_HEADER, encode};

use crate::Error;
use crate::config::{Uri, short_str};
use crate::wire::{Inbound, next_frame};

/// The channel every client uses.
pub const CHANNEL: u16 = 1;
const READ_CHUNK: usize = 64 * 1024;
/// Our own frame_max offer when the server says "no limit".
const DEFAULT_FRAME_MAX: u32 = 131_072;

/// `connection.blocked` / `connection.unblocked` notices, over all the connections of a run.
#[derive(Debug, Default)]
pub struct Blocking {
    /// connection.blocked notices received.
    pub blocked: AtomicU64,
    /// connection.unblocked notices received.
    pub unblocked: AtomicU64,
    /// Connections blocked right now.
    current: AtomicU64,
    /// Nanoseconds during which at least one connection was blocked (see [`Blocking::sample`]).
    blocked_ns: AtomicU64,
    last_sample: Mutex<Option<Instant>>,
    /// The reason given by the first connection.blocked.
    first_reason: Mutex<Option<String>>,
}

impl Blocking {
    fn on_blocked(&self, reason: &str, was_blocked: bool) {
        self.blocked.fetch_add(1, Ordering::Relaxed);
        if !was_blocked {
            self.current.fetch_add(1, Ordering::Relaxed);
        }
        let mut first = self.first_reason.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| reason.to_string());
    }

    fn on_unblocked(&self, was_blocked: bool) {
        self.unblocked.fetch_add(1, Ordering::Relaxed);
        if was_blocked {
            self.current.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Connections blocked right now.
    pub fn current(&self) -> u64 {
        self.current.load(Ordering::Relaxed)
    }

    /// Called every few milliseconds by the run: adds the time since the previous call to the
    /// blocked time if a connection is blocked now (so the figure is as fine as the calls).
    pub fn sample(&self, now: Instant) {
        let mut last = self.last_sample.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(prev) = *last
            && self.current() > 0
        {
            let ns = now.saturating_duration_since(prev).as_nanos() as u64;
            self.blocked_ns.fetch_add(ns, Ordering::Relaxed);
        }
        *last = Some(now);
    }

    /// Time during which at least one connection was blocked, as sampled.
    pub fn blocked_time(&self) -> Duration {
        Duration::from_nanos(self.blocked_ns.load(Ordering::Relaxed))
    }

    pub fn first_reason(&self) -> Option<String> {
        self.first_reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

pub struct Reader {
    rd: OwnedReadHalf,
    buf: BytesMut,
    frame_max: u32,
    blocking: Arc<Blocking>,
    /// This connection was told it is blocked and not yet that it is unblocked.
    blocked: bool,
}

impl Drop for Reader {
    fn drop(&mut self) {
        if self.blocked {
            self.blocking.current.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Reader {
    /// Reads more bytes from the socket; an EOF is an error (the server went away).
    pub async fn fill(&mut self) -> Result<(), Error> {
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
            self.buf.reserve(READ_CHUNK);
        }
        match self.rd.read_buf(&mut self.buf).await {
            Ok(0) => Err(Error::msg("connection closed by the server")),
            Ok(_) => Ok(()),
            Err(e) => Err(Error(format!("read: {e}"))),
        }
    }

    /// The next complete frame already buffered, if any. connection.blocked / unblocked are
    /// counted in the run's [`Blocking`] and not returned.
    pub fn frame(&mut self) -> Result<Option<(u16, Inbound)>, Error> {
        loop {
            let frame = next_frame(&mut self.buf, self.frame_max)?;
            match &frame {
                Some((_, Inbound::Method(AMQPClass::Connection(m)))) => match m {
                    connection::AMQPMethod::Blocked(b) => {
                        self.blocking.on_blocked(b.reason.as_str(), self.blocked);
                        self.blocked = true;
                    }
                    connection::AMQPMethod::Unblocked(_) => {
                        self.blocking.on_unblocked(self.blocked);
                        self.blocked = false;
                    }
                    _ => return Ok(frame),
                },
                _ => return Ok(frame),
            }
        }
    }
}

pub struct Writer {
    wr: OwnedWriteHalf,
    /// Frames queued for the next [`Writer::flush`].
    pub buf: BytesMut,
    last_write: Instant,
    heartbeat: Duration,
}

impl Writer {
    pub async fn flush(&mut self) -> Result<(), Error> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.wr
            .write_all(&self.buf)
            .await
            .map_err(|e| Error(format!("write: {e}")))?;
        self.buf.clear();
        self.last_write = Instant::now();
        Ok(())
    }

    pub async fn send(&mut self, method: &AMQPClass, channel: u16) -> Result<(), Error> {
        encode::method(&mut self.buf, channel, method);
        self.flush().await
    }

    /// Sends a heartbeat when nothing was written for half the negotiated interval.
    pub async fn heartbeat_if_idle(&mut self) -> Result<(), Error> {
        if !self.heartbeat.is_zero() && self.last_write.elapsed() >= self.heartbeat / 2 {
            encode::heartbeat(&mut self.buf);
            self.flush().await?;
        }
        Ok(())
    }

    /// How often [`Writer::heartbeat_if_idle`] should be called (a long time without heartbeats).
    pub fn heartbeat_check_interval(&self) -> Duration {
        if self.heartbeat.is_zero() {
            Duration::from_secs(3600)
        } else {
            (self.heartbeat / 4).max(Duration::from_millis(250))
        }
    }
}

pub struct Conn {
    pub reader: Reader,
    pub writer: Writer,
}

/// An error for a server-initiated close, after answering it with close-ok.
async fn server_close(writer: &mut Writer, ch: u16, method: &AMQPClass) -> Option<Error> {
    let (reply, ok) = match method {
        AMQPClass::Connection(connection::AMQPMethod::Close(c)) => (
            format!(
                "connection closed by server: {} {}",
                c.reply_code, c.reply_text
            ),
            AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {})),
        ),
        AMQPClass::Channel(channel::AMQPMethod::Close(c)) => (
            format!(
                "channel closed by server: {} {}",
                c.reply_code, c.reply_text
            ),
            AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {})),
        ),
        _ => return None,
    };
    let _ = writer.send(&ok, ch).await;
    Some(Error(reply))
}

/// The error to report for a close seen by a split-off reader (no writer to answer with).
pub fn close_error(method: &AMQPClass) -> Option<Error> {
    match method {
        AMQPClass::Connection(connection::AMQPMethod::Close(c)) => Some(Error(format!(
            "connection closed by server: {} {}",
            c.reply_code, c.reply_text
        ))),
        AMQPClass::Channel(channel::AMQPMethod::Close(c)) => Some(Error(format!(
            "channel closed by server: {} {}",
            c.reply_code, c.reply_text
        ))),
        _ => None,
    }
}

impl Conn {
    /// Connects, performs the handshake and opens channel 1.
    pub async fn open(uri: &Uri) -> Result<Conn, Error> {
        Conn::open_counting(uri, Arc::default()).await
    }

    /// [`Conn::open`], counting connection.blocked / unblocked notices in `blocking`.
    pub async fn open_counting(uri: &Uri, blocking: Arc<Blocking>) -> Result<Conn, Error> {
        let stream = TcpStream::connect(uri.addr())
            .await
            .map_err(|e| Error(format!("connect {}: {e}", uri.addr())))?;
        let _ = stream.set_nodelay(true);
        let (rd, wr) = stream.into_split();
        let mut conn = Conn {
            reader: Reader {
                rd,
                buf: BytesMut::with_capacity(READ_CHUNK),
                frame_max: 0,
                blocking,
                blocked: false,
            },
            writer: Writer {
                wr,
                buf: BytesMut::with_capacity(READ_CHUNK),
                last_write: Instant::now(),
                heartbeat: Duration::ZERO,
            },
        };
        conn.writer.buf.extend_from_slice(PROTOCOL_HEADER);
        conn.writer.flush().await?;
        let start = match conn.expect_method(0).await? {
            AMQPClass::Connection(connection::AMQPMethod::Start(s)) => s,
            other => return Err(Error(format!("expected connection.start, got {other:?}"))),
        };
        let mechanisms = String::from_utf8_lossy(start.mechanisms.as_bytes()).into_owned();
        if !mechanisms.split(' ').any(|m| m == "PLAIN") {
            return Err(Error(format!("server offers no PLAIN auth ({mechanisms})")));
        }
        let mut props = FieldTable::default();
        props.insert(
            short_str("product")?,
            AMQPValue::LongString(LongString::from(b"warren-perf".to_vec())),
        );
        let mut capabilities = FieldTable::default();
        capabilities.insert(short_str("connection.blocked")?, AMQPValue::Boolean(true));
        props.insert(
            short_str("capabilities")?,
            AMQPValue::FieldTable(capabilities),
        );
        let mut response = vec![0u8];
        response.extend_from_slice(uri.user.as_bytes());
        response.push(0);
        response.extend_from_slice(uri.password.as_bytes());
        let start_ok = connection::StartOk {
            client_properties: props,
            mechanism: short_str("PLAIN")?,
            response: LongString::from(response),
            locale: short_str("en_US")?,
        };
        let tune = match conn
            .call(
                AMQPClass::Connection(connection::AMQPMethod::StartOk(start_ok)),
                0,
            )
            .await?
        {
            AMQPClass::Connection(connection::AMQPMethod::Tune(t)) => t,
            other => return Err(Error(format!("expected connection.tune, got {other:?}"))),
        };
        let frame_max = if tune.frame_max == 0 {
            DEFAULT_FRAME_MAX
        } else {
            tune.frame_max
        };
        let tune_ok = connection::TuneOk {
            channel_max: tune.channel_max,
            frame_max,
            heartbeat: tune.heartbeat,
        };
        conn.writer
            .send(
                &AMQPClass::Connection(connection::AMQPMethod::TuneOk(tune_ok)),
                0,
            )
            .await?;
        conn.reader.frame_max = frame_max;
        conn.writer.heartbeat = Duration::from_secs(tune.heartbeat as u64);
        let open = connection::Open {
            virtual_host: short_str(&uri.vhost)?,
        };
        match conn
            .call(AMQPClass::Connection(connection::AMQPMethod::Open(open)), 0)
            .await?
        {
            AMQPClass::Connection(connection::AMQPMethod::OpenOk(_)) => {}
            other => return Err(Error(format!("expected connection.open-ok, got {other:?}"))),
        }
        match conn
            .call(
                AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
                CHANNEL,
            )
            .await?
        {
            AMQPClass::Channel(channel::AMQPMethod::OpenOk(_)) => {}
            other => return Err(Error(format!("expected channel.open-ok, got {other:?}"))),
        }
        Ok(conn)
    }

    /// Opens channels 2..=`last` one after the other (channel 1 is open already), each
    /// waiting for its channel.open-ok; `last` <= 1 opens nothing.
    pub async fn open_channels(&mut self, last: u16) -> Result<(), Error> {
        for ch in CHANNEL + 1..=last {
            match self
                .call(
                    AMQPClass::Channel(channel::AMQPMethod::Open(channel::Open {})),
                    ch,
                )
                .await
            {
                Ok(AMQPClass::Channel(channel::AMQPMethod::OpenOk(_))) => {}
                Ok(other) => {
                    return Err(Error(format!(
                        "channel {ch}: expected channel.open-ok, got {other:?}"
                    )));
                }
                Err(e) => return Err(Error(format!("channel {ch}: {e}"))),
            }
        }
        Ok(())
    }

    pub fn frame_max(&self) -> u32 {
        self.reader.frame_max
    }

    /// Waits for the next method frame, skipping heartbeats; a server close is an error.
    pub async fn expect_method(&mut self, ch: u16) -> Result<AMQPClass, Error> {
        loop {
            while let Some((_, frame)) = self.reader.frame()? {
                match frame {
                    Inbound::Heartbeat => {}
                    Inbound::Method(m) => {
                        if let Some(e) = server_close(&mut self.writer, ch, &m).await {
                            return Err(e);
                        }
                        return Ok(m);
                    }
                    other => return Err(Error(format!("unexpected frame {other:?}"))),
                }
            }
            self.reader.fill().await?;
        }
    }

    /// Sends a method on `ch` and waits for the reply.
    pub async fn call(&mut self, method: AMQPClass, ch: u16) -> Result<AMQPClass, Error> {
        self.writer.send(&method, ch).await?;
        self.expect_method(ch).await
    }

    /// Best-effort graceful close: connection.close, then close-ok within a second.
    pub async fn close(mut self) {
        let close = AMQPClass::Connection(connection::AMQPMethod::Close(connection::Close {
            reply_code: 200,
            reply_text: "bye".into(),
            class_id: 0,
            method_id: 0,
        }));
        if self.writer.send(&close, 0).await.is_err() {
            return;
        }
        let wait = async {
            loop {
                while let Ok(Some((_, frame))) = self.reader.frame() {
                    if let Inbound::Method(AMQPClass::Connection(
                        connection::AMQPMethod::CloseOk(_),
                    )) = frame
                    {
                        return;
                    }
                }
                if self.reader.fill().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
    }
}
