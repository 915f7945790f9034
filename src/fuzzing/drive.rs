//! Runs one client connection in-process, over an in-memory pipe, against a fresh broker (no
//! store), on a single-threaded runtime (so a run is deterministic: same bytes, same run).
//!
//! The client behaves as client libraries do where the protocol leaves it no choice: it reads
//! while it writes, answers the broker's channel.close with close-ok (and opens the channel
//! again), and answers connection.close with close-ok and stops. Between actions it lets the
//! broker run, so those answers follow the broker's frames as they would on a socket.
//!
//! Rules checked (a broken one panics, which is what the fuzzer and the property test look
//! for): after the client's end of stream the connection task ends by itself; everything the
//! broker wrote is AMQP frames (methods parsed by amq-protocol, content headers by warren's own
//! property walker — decoding every delivered header table into amq-protocol's types was a
//! fifth of the fuzzer's time); the connection leaves nothing behind in the broker (no
//! consumers, no exclusive queues).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use amq_protocol::frame::AMQPFrame;
use amq_protocol::protocol::{AMQPClass, channel, connection};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::watch;

use super::script::{Script, open_channel};
use crate::Config;
use crate::auth::Auth;
use crate::broker::Broker;
use crate::broker::queue::dead_letter::DeadLetterTally;
use crate::server::{ConnectionEnv, Stream, serve};

/// What one run saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Frames the broker wrote.
    pub frames: usize,
    /// Bytes the broker wrote.
    pub bytes: usize,
    /// Actions sent before the connection ended.
    pub actions: usize,
    /// The broker answered the protocol header with its own (a wrong header).
    pub refused_header: bool,
    /// Channels the broker closed (each answered and reopened).
    pub channel_closes: usize,
    /// The broker closed the connection.
    pub connection_closed: bool,
    /// Dead-letter copies the run's topology made the broker hold (bounded per cascade).
    pub dead_letters: DeadLetterTally,
}

/// How long the connection may take to end after the client's end of stream (a run takes
/// milliseconds; this only catches a connection that never ends).
const END_WITHIN: Duration = Duration::from_secs(30);

/// Plays `script` as one connection, then end of stream; checks the rules above.
pub fn run_script(script: &Script) -> Outcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(drive(script)),
        Err(e) => panic!("cannot build a runtime for the fuzz run: {e}"),
    }
}

async fn drive(script: &Script) -> Outcome {
    let tally_before = DeadLetterTally::on_this_thread();
    let config = Arc::new(Config::default());
    let broker = Arc::new(Broker::new(
        Auth::with_default_user("guest", "guest", "/"),
        config.max_message_size,
        config.queue_page_threshold,
    ));
    let (_shutdown_tx, shutdown) = watch::channel(false);
    let (_alarm_tx, alarm) = watch::channel(None);
    let env = ConnectionEnv {
        broker: broker.clone(),
        config,
        shutdown,
        alarm,
    };
    let (client_side, server_side) = tokio::io::duplex(64 * 1024);
    let (server_read, server_write) = tokio::io::split(server_side);
    let stream = Stream {
        read: Box::new(server_read),
        write: server_write,
        peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
        local: None,
        direct: None,
        tls: None,
    };
    let connection = tokio::spawn(serve(1, stream, env));

    let (from_broker, to_broker) = tokio::io::split(client_side);
    let mut client = Client {
        from_broker,
        to_broker,
        received: BytesMut::new(),
        eof: false,
        outcome: Outcome::default(),
    };
    if client.send(&script.opening).await {
        client.settle().await;
        for action in &script.actions {
            if client.outcome.connection_closed || !client.send(action).await {
                break;
            }
            client.outcome.actions += 1;
            client.settle().await;
        }
    }
    let _ = client.to_broker.shutdown().await;

    // The client goes on reading while the connection ends (a broker with unsent answers waits
    // for them to be taken, as it would on a socket).
    let ended = tokio::time::timeout(END_WITHIN, async {
        tokio::pin!(connection);
        loop {
            tokio::select! {
                ended = &mut connection => return ended,
                _ = client.read_some(), if !client.eof => {}
            }
        }
    })
    .await;
    match ended {
        Ok(Ok(())) => {}
        Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
        Err(_) => panic!(
            "the connection task was still running {END_WITHIN:?} after the client's end of stream"
        ),
    }
    client.read_to_end().await;
    check_nothing_left(&broker);
    // The runtime is current-thread: every dead letter of the run was made on this thread.
    client.outcome.dead_letters = DeadLetterTally::since(tally_before);
    client.outcome
}

struct Client {
    from_broker: ReadHalf<DuplexStream>,
    to_broker: WriteHalf<DuplexStream>,
    /// What the broker wrote and the client has not parsed yet.
    received: BytesMut,
    eof: bool,
    outcome: Outcome,
}

impl Client {
    /// Writes `bytes`, reading whatever the broker writes meanwhile (a client that stopped
    /// reading could deadlock against a broker that stopped reading it). False once the broker
    /// is gone.
    async fn send(&mut self, bytes: &[u8]) -> bool {
        let mut sent = 0;
        while sent < bytes.len() {
            tokio::select! {
                written = self.to_broker.write(&bytes[sent..]) => match written {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => sent += n,
                },
                read = self.from_broker.read_buf(&mut self.received), if !self.eof => {
                    if !matches!(read, Ok(n) if n > 0) {
                        self.eof = true;
                    }
                }
            }
        }
        true
    }

    /// Lets the broker run, takes what it wrote, and answers its closes.
    async fn settle(&mut self) {
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        while !self.eof {
            // Take what is there without waiting (a timer would cost a millisecond a poll).
            match poll_once(self.from_broker.read_buf(&mut self.received)) {
                Some(Ok(n)) if n > 0 => continue,
                Some(_) => self.eof = true,
                None => break,
            }
        }
        let mut answers = BytesMut::new();
        self.parse(&mut answers);
        if !answers.is_empty() {
            self.send(&answers).await;
        }
    }

    /// Waits for more of the broker's output.
    async fn read_some(&mut self) {
        match self.from_broker.read_buf(&mut self.received).await {
            Ok(n) if n > 0 => {}
            _ => self.eof = true,
        }
    }

    async fn read_to_end(&mut self) {
        while !self.eof {
            match self.from_broker.read_buf(&mut self.received).await {
                Ok(n) if n > 0 => {}
                _ => self.eof = true,
            }
        }
        self.parse(&mut BytesMut::new());
        assert!(
            self.received.is_empty(),
            "the broker's output ends in the middle of a frame: {:02x?}",
            &self.received[..self.received.len().min(64)]
        );
    }

    /// Parses every complete frame received; what the client must answer goes to `answers`.
    fn parse(&mut self, answers: &mut BytesMut) {
        if self.outcome.bytes == 0 && self.received.starts_with(warren_protocol::PROTOCOL_HEADER) {
            self.outcome.refused_header = true;
            self.outcome.bytes += 8;
            let _ = self.received.split_to(8);
        }
        loop {
            let (kind, used) = match frame_extent(&self.received) {
                Ok(Some(extent)) => extent,
                Ok(None) => return,
                Err(e) => panic!(
                    "the broker wrote bytes that are not a frame ({e}): {:02x?}",
                    &self.received[..self.received.len().min(64)]
                ),
            };
            let frame = self.received.split_to(used).freeze();
            self.outcome.bytes += used;
            self.outcome.frames += 1;
            match kind {
                FRAME_METHOD => match amq_protocol::frame::parse_frame(&frame[..]) {
                    Ok(([], method)) => self.answer(method, answers),
                    other => {
                        panic!("the broker wrote a method frame that does not parse: {other:?}")
                    }
                },
                FRAME_HEADER => {
                    // class, weight, body size, then the properties.
                    let properties = frame.slice(7 + 12..used - 1);
                    if let Err(e) = warren_protocol::Properties::parse(properties) {
                        panic!("the broker wrote a content header that does not parse: {e:?}");
                    }
                }
                _ => {}
            }
        }
    }

    fn answer(&mut self, frame: AMQPFrame, answers: &mut BytesMut) {
        match frame {
            AMQPFrame::Method(id, AMQPClass::Channel(channel::AMQPMethod::Close(_))) => {
                self.outcome.channel_closes += 1;
                let close_ok =
                    AMQPClass::Channel(channel::AMQPMethod::CloseOk(channel::CloseOk {}));
                warren_protocol::encode::method(answers, id, &close_ok);
                open_channel(answers, id);
            }
            AMQPFrame::Method(0, AMQPClass::Connection(connection::AMQPMethod::Close(_))) => {
                self.outcome.connection_closed = true;
                let close_ok =
                    AMQPClass::Connection(connection::AMQPMethod::CloseOk(connection::CloseOk {}));
                warren_protocol::encode::method(answers, 0, &close_ok);
            }
            _ => {}
        }
    }
}

/// Polls `future` once: its output if it is ready now.
fn poll_once<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// The connection is gone: so are its consumers and exclusive queues.
fn check_nothing_left(broker: &Broker) {
    for vhost in broker.vhosts() {
        for queue in vhost.queues() {
            assert_eq!(
                queue.consumer_count(),
                0,
                "queue '{}' kept a consumer of a closed connection",
                queue.name
            );
            assert!(
                queue.options.exclusive_owner.is_none(),
                "exclusive queue '{}' outlived its connection",
                queue.name
            );
        }
    }
}

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_HEARTBEAT: u8 = 8;

/// The type and length of the whole frame at the start of `buf`; `Ok(None)` while it is
/// incomplete, `Err` if it is not an AMQP frame (unknown type, a header too short for its
/// fields, no frame-end octet).
fn frame_extent(buf: &[u8]) -> Result<Option<(u8, usize)>, String> {
    let Some(header) = buf.get(..7) else {
        return Ok(None);
    };
    let kind = header[0];
    let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
    match kind {
        FRAME_METHOD | FRAME_BODY | FRAME_HEARTBEAT => {}
        FRAME_HEADER if size >= 14 => {}
        other => return Err(format!("frame type {other} of {size} bytes")),
    }
    let used = 7 + size + 1;
    match buf.get(used - 1) {
        None => Ok(None),
        Some(0xCE) => Ok(Some((kind, used))),
        Some(end) => Err(format!("frame end {end:#04x}")),
    }
}
