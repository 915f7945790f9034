//! One task per client connection: it reads frames, drives the handshake, routes frames to
//! channels, keeps heartbeats, and closes the connection (connection.close with a reply code,
//! then the socket) on any hard error. Outgoing bytes go through the connection's [`Outbox`],
//! drained by a separate writer task.
//!
//! Frames are handled synchronously between reads: everything decoded from one read is processed
//! before the next read, and publisher confirms are flushed once per such batch.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use amq_protocol::protocol::{AMQPClass, channel as chan, connection};
use parking_lot::Mutex;
use tokio::io::AsyncWrite;
use tokio::sync::watch;
use warren_protocol::codec::Frame;
use warren_protocol::{AmqpError, ErrorScope, PROTOCOL_HEADER};

use super::channel::{Channel, ChannelContext};
pub use super::closing::short_text;
use super::closing::{
    await_close_ok, close_silently, forced_close, linger_until_peer_closes, send_connection_close,
};
pub use super::connection_shared::ConnectionShared;
use super::flow::PublisherFlow;
pub use super::frame_reader::{FrameReader, ReadError, ReadHalf};
use super::handshake::{self, Negotiated};
use super::outbox::Outbox;
use super::tls::TlsPeer;
use crate::Config;
use crate::alarms::Alarm;
use crate::broker::Broker;
use crate::broker::churn::Churn;
use crate::broker::message_counts::MessageCounts;
use crate::broker::queue::Queue;
use warren_protocol::method;

/// Where a connection's bytes come from and go to, and who is at the other end.
pub struct Stream<W> {
    pub read: ReadHalf,
    pub write: W,
    pub peer: SocketAddr,
    /// The broker's end of the socket (`None` for in-memory streams).
    pub local: Option<SocketAddr>,
    /// On a plain TCP listener: the socket's descriptor, for writes off the runtime
    /// (outbox.rs). Valid while `write` lives: only the writer task, which owns `write`, lends
    /// it to the outbox.
    pub direct: Option<std::os::fd::RawFd>,
    /// On a TLS listener: what the TLS handshake learnt of the client (its certificate's name).
    pub tls: Option<TlsPeer>,
}

/// The broker-wide things every connection needs.
#[derive(Clone)]
pub struct ConnectionEnv {
    pub broker: Arc<Broker>,
    pub config: Arc<Config>,
    pub shutdown: watch::Receiver<bool>,
    pub alarm: watch::Receiver<Option<Alarm>>,
}

/// Serves one client connection from its first byte to its end.
pub async fn serve<W: AsyncWrite + Send + Unpin + 'static>(
    id: u64,
    stream: Stream<W>,
    env: ConnectionEnv,
) {
    let ConnectionEnv {
        broker,
        config,
        shutdown,
        alarm,
    } = env;
    let Stream {
        read: read_half,
        write: write_half,
        peer,
        local,
        direct,
        tls,
    } = stream;
    let shared = Arc::new(ConnectionShared {
        id,
        outbox: Outbox::default(),
        frame_max: AtomicU32::new(config.frame_max),
        consumer_cancel_notify: false.into(),
        channels: Mutex::new(HashMap::new()),
        commit_failures: tokio::sync::Notify::new(),
        ack_deadlines_armed: Default::default(),
        ack_deadlines: tokio::sync::Notify::new(),
        forced_reason: Mutex::new(None),
        forced: tokio::sync::Notify::new(),
        received: Arc::default(),
        closed_channels: MessageCounts::default(),
    });
    let write_timeout = Duration::from_secs(config.write_timeout.max(1));
    let writer = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let resume_target = shared.clone();
            super::outbox::drain(
                &shared.outbox,
                write_half,
                direct,
                write_timeout,
                move || resume_target.resume_deliveries(),
            )
            .await;
        })
    };
    // Until tune-ok settles frame_max, frames are limited to the spec's minimum, as RabbitMQ
    // does: an unauthenticated peer cannot make us buffer more than 4 KB of one frame.
    let mut reader = FrameReader::new(
        read_half,
        handshake::FRAME_MIN_SIZE,
        shared.received.clone(),
    );

    let handshake_deadline = Duration::from_secs(config.handshake_timeout);
    let negotiated = match tokio::time::timeout(handshake_deadline, async {
        if !reader.protocol_header().await? {
            return Ok(None);
        }
        let me = handshake::Peer {
            id,
            addr: peer,
            local,
            control: shared.clone(),
        };
        handshake::run(
            &mut reader,
            &shared.outbox,
            &broker,
            &config,
            me,
            tls.as_ref(),
        )
        .await
        .map(Some)
    })
    .await
    {
        Ok(Ok(Some(n))) => n,
        Ok(Ok(None)) => {
            tracing::debug!(%peer, "bad protocol header");
            shared.outbox.push(|b| b.extend_from_slice(PROTOCOL_HEADER));
            shared.outbox.close();
            let _ = writer.await;
            return;
        }
        Ok(Err(ReadError::Protocol(e))) => {
            send_connection_close(&shared, &e);
            await_close_ok(&mut reader).await;
            shared.outbox.close();
            let _ = writer.await;
            return;
        }
        Ok(Err(ReadError::SilentClose(e))) => {
            tracing::info!(%peer, "closing connection without connection.close: {e}");
            close_silently(&mut reader, shutdown).await;
            shared.outbox.close();
            let _ = writer.await;
            return;
        }
        Ok(Err(ReadError::Closed)) | Err(_) => {
            shared.outbox.close();
            let _ = writer.await;
            return;
        }
    };
    tracing::debug!(%peer, user = %negotiated.user.name, "connection open");
    shared
        .frame_max
        .store(negotiated.frame_max, Ordering::Relaxed);
    shared
        .consumer_cancel_notify
        .store(negotiated.consumer_cancel_notify, Ordering::Relaxed);

    let flow = PublisherFlow::new(alarm, negotiated.connection_blocked);
    let mut conn = Connection {
        shared: shared.clone(),
        broker,
        negotiated,
        channels: HashMap::default(),
        exclusive_queues: Vec::new(),
        flow,
    };
    let outcome = conn.run(&mut reader, shutdown.clone()).await;
    match outcome {
        Err(ReadError::Protocol(e)) => {
            tracing::info!(%peer, "closing connection: {e}");
            conn.release_all();
            send_connection_close(&shared, &e);
            await_close_ok(&mut reader).await;
        }
        Err(ReadError::Closed | ReadError::SilentClose(_)) => conn.release_all(),
        Ok(()) => {
            conn.release_all();
            linger_until_peer_closes(&mut reader, &shared.outbox, shutdown).await;
        }
    }
    shared.outbox.close();
    let _ = writer.await;
    tracing::debug!(%peer, "connection closed");
}

/// The (class, method) ids of a method frame, (0, 0) for other frames: reported in close frames.
fn method_ids(frame: &Frame) -> (u16, u16) {
    match frame {
        Frame::Method { method, .. } => (method.get_amqp_class_id(), method.get_amqp_method_id()),
        Frame::Publish { .. } => (60, 40),
        _ => (0, 0),
    }
}

/// What channel handlers may touch, built from the connection's parts (borrowed field by field
/// so the caller can hold a channel of `Connection::channels` at the same time).
fn channel_context<'a>(
    broker: &'a Broker,
    negotiated: &'a Negotiated,
    connection: &'a Arc<ConnectionShared>,
    exclusive_queues: &'a mut Vec<Arc<Queue>>,
) -> ChannelContext<'a> {
    ChannelContext {
        broker,
        vhost: &negotiated.vhost,
        user: &negotiated.user,
        connection,
        exclusive_queues,
    }
}

struct Connection {
    shared: Arc<ConnectionShared>,
    broker: Arc<Broker>,
    negotiated: Negotiated,
    // Looked up for every frame: ahash, not SipHash.
    /// Boxed: a table sized for a few channels then holds pointers, not spare `Channel`s (an
    /// idle connection's one or two channels cost their size, not a table of three).
    channels: HashMap<u16, Box<Channel>, ahash::RandomState>,
    exclusive_queues: Vec<Arc<Queue>>,
    flow: PublisherFlow,
}

impl Connection {
    async fn run(
        &mut self,
        reader: &mut FrameReader,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), ReadError> {
        let heartbeat = Duration::from_secs(self.negotiated.heartbeat as u64);
        // Check twice per interval: send a heartbeat if we wrote nothing, give up on a peer
        // silent for two intervals.
        let mut ticker = tokio::time::interval(if heartbeat.is_zero() {
            Duration::from_secs(3600)
        } else {
            heartbeat / 2
        });
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_read = Instant::now();
        let mut last_written = self.shared.outbox.written();
        // Checks acknowledgement deadlines every second, only while deliveries have them.
        let mut ack_timeouts: Option<tokio::time::Interval> = None;
        loop {
            // Stop decoding while the peer has not taken our answers: what it sent stays in
            // the read buffer (and in its socket) until the writer catches up.
            while !self.shared.outbox.over_read_limit() {
                let Some(frame) = reader.decode()? else { break };
                if self.handle_frame(frame).map_err(ReadError::Protocol)? {
                    return Ok(());
                }
            }
            for channel in self.channels.values_mut() {
                channel.end_of_batch();
            }
            if self.shared.outbox.over_read_limit() {
                tokio::select! {
                    _ = self.shared.outbox.wait_drained() => {}
                    _ = self.shared.outbox.failed() => return Err(ReadError::Closed),
                    _ = self.shared.forced.notified() => return Err(forced_close(&self.shared)),
                    _ = shutdown.changed() => {
                        return Err(ReadError::Protocol(AmqpError::new(warren_protocol::reply::CONNECTION_FORCED, "broker shutdown")));
                    }
                }
                // Not reading, so the client's silence proves nothing.
                last_read = Instant::now();
                continue;
            }
            if let Some(alarm) = self.flow.must_pause() {
                // A resource alarm: stop reading this publisher's socket until it clears.
                self.flow.blocked(alarm, &self.shared.outbox);
                tokio::select! {
                    _ = self.flow.changed() => {}
                    _ = self.shared.outbox.failed() => return Err(ReadError::Closed),
                    // A failing store is what raises the disk alarm: close now, not later.
                    _ = self.shared.commit_failures.notified() => self.close_channels_with_failed_commits(),
                    _ = self.shared.forced.notified() => return Err(forced_close(&self.shared)),
                    _ = ticker.tick(), if !heartbeat.is_zero() => {
                        // We are not reading, so the client's silence proves nothing.
                        last_read = Instant::now();
                        if self.shared.outbox.written() == last_written {
                            self.shared.outbox.push(warren_protocol::encode::heartbeat);
                        }
                        last_written = self.shared.outbox.written();
                    }
                    _ = shutdown.changed() => {
                        return Err(ReadError::Protocol(AmqpError::new(warren_protocol::reply::CONNECTION_FORCED, "broker shutdown")));
                    }
                }
                continue;
            }
            self.flow.unblocked(&self.shared.outbox);
            if let Some(store) = self.broker.store().filter(|s| s.over_flow_limit()).cloned() {
                // The store is behind (store/flow.rs): read nothing more from this client —
                // publishes, or acks that delete paged messages — until it catches up; no
                // connection.blocked, as RabbitMQ's credit flow. (While the store fails, the
                // disk alarm blocks publishers instead and consumers go on.)
                tokio::select! {
                    _ = store.wait_for_checkpoint() => {}
                    _ = self.shared.outbox.failed() => return Err(ReadError::Closed),
                    _ = self.shared.forced.notified() => return Err(forced_close(&self.shared)),
                    _ = ticker.tick(), if !heartbeat.is_zero() => {
                        if self.shared.outbox.written() == last_written {
                            self.shared.outbox.push(warren_protocol::encode::heartbeat);
                        }
                        last_written = self.shared.outbox.written();
                    }
                    _ = shutdown.changed() => {
                        return Err(ReadError::Protocol(AmqpError::new(warren_protocol::reply::CONNECTION_FORCED, "broker shutdown")));
                    }
                }
                last_read = Instant::now();
                continue;
            }
            tokio::select! {
                filled = reader.fill() => {
                    filled?;
                    last_read = Instant::now();
                }
                // An alarm going on blocks an idle publisher at once, as RabbitMQ does.
                _ = self.flow.changed() => {}
                _ = self.shared.outbox.failed() => return Err(ReadError::Closed),
                _ = next_tick(&mut ack_timeouts) => {
                    self.close_timed_out_channels();
                    if !self.awaits_acks_with_deadlines() {
                        ack_timeouts = None;
                    }
                }
                _ = self.shared.ack_deadlines.notified(), if ack_timeouts.is_none() => {
                    let second = Duration::from_secs(1);
                    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + second, second);
                    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    ack_timeouts = Some(every);
                }
                _ = self.shared.commit_failures.notified() => self.close_channels_with_failed_commits(),
                _ = self.shared.forced.notified() => return Err(forced_close(&self.shared)),
                _ = ticker.tick(), if !heartbeat.is_zero() => {
                    if last_read.elapsed() > heartbeat * 2 {
                        tracing::warn!(connection = self.shared.id, "missed heartbeats from client, timeout: {}s", heartbeat.as_secs());
                        return Err(ReadError::Closed);
                    }
                    let written = self.shared.outbox.written();
                    if written == last_written {
                        self.shared.outbox.push(warren_protocol::encode::heartbeat);
                    }
                    last_written = self.shared.outbox.written();
                }
                _ = shutdown.changed() => {
                    return Err(ReadError::Protocol(AmqpError::new(warren_protocol::reply::CONNECTION_FORCED, "broker shutdown")));
                }
            }
        }
    }

    /// Handles one frame; `Ok(true)` when the connection is finished (close handshake done).
    fn handle_frame(&mut self, frame: Frame) -> Result<bool, AmqpError> {
        if matches!(frame, Frame::Publish { .. }) {
            self.flow.on_publish();
        }
        let channel_id = frame.channel();
        if channel_id == 0 {
            return self.handle_channel_zero(frame);
        }
        let ids = method_ids(&frame);
        if let Frame::Method { method, .. } = &frame {
            match method {
                AMQPClass::Channel(chan::AMQPMethod::Open(_)) => {
                    return self.open_channel(channel_id).map(|_| false);
                }
                AMQPClass::Connection(_) => {
                    return Err(AmqpError::command_invalid("unimplemented method").on(ids.0, ids.1));
                }
                _ => {}
            }
        }
        let Some(channel) = self.channels.get_mut(&channel_id) else {
            return Err(AmqpError::channel_error("expected 'channel.open'").on(ids.0, ids.1));
        };
        let mut ctx = channel_context(
            &self.broker,
            &self.negotiated,
            &self.shared,
            &mut self.exclusive_queues,
        );
        match channel.handle_frame(frame, &mut ctx) {
            Ok(still_open) => {
                if !still_open {
                    self.remove_channel(channel_id);
                }
                Ok(false)
            }
            Err(e) if e.scope() == ErrorScope::Channel => {
                channel.close_with_error(&e, &self.shared, &mut ctx);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn handle_channel_zero(&mut self, frame: Frame) -> Result<bool, AmqpError> {
        match frame {
            Frame::Heartbeat { .. } => Ok(false),
            Frame::Method { method, .. } => match method {
                AMQPClass::Connection(connection::AMQPMethod::Close(close)) => {
                    tracing::debug!(
                        connection = self.shared.id,
                        "client closed: {} {}",
                        close.reply_code,
                        close.reply_text
                    );
                    self.release_all();
                    let ok = AMQPClass::Connection(connection::AMQPMethod::CloseOk(
                        connection::CloseOk {},
                    ));
                    self.shared
                        .outbox
                        .push(|b| warren_protocol::encode::method(b, 0, &ok));
                    Ok(true)
                }
                AMQPClass::Connection(connection::AMQPMethod::CloseOk(_)) => Ok(true),
                AMQPClass::Connection(connection::AMQPMethod::UpdateSecret(update)) => {
                    // The new secret must be valid for this user (for a password user, its
                    // password); RabbitMQ's words when it is not.
                    let user = &self.negotiated.user.name;
                    if !self
                        .broker
                        .auth
                        .check_secret(user, update.new_secret.as_bytes())
                    {
                        tracing::error!("secret update was refused for user '{user}'");
                        return Err(AmqpError::not_allowed(
                            "New secret was refused by one of the backends",
                        )
                        .on_method(method::CONNECTION_UPDATE_SECRET));
                    }
                    tracing::info!("user '{user}' updated secret, reason: {}", update.reason);
                    let ok = AMQPClass::Connection(connection::AMQPMethod::UpdateSecretOk(
                        connection::UpdateSecretOk {},
                    ));
                    self.shared
                        .outbox
                        .push(|b| warren_protocol::encode::method(b, 0, &ok));
                    Ok(false)
                }
                AMQPClass::Connection(
                    connection::AMQPMethod::Blocked(_) | connection::AMQPMethod::Unblocked(_),
                ) => Ok(false),
                other => Err(AmqpError::channel_error(
                    "unexpected method in connection state running",
                )
                .on(other.get_amqp_class_id(), other.get_amqp_method_id())),
            },
            Frame::Publish { .. } => Err(AmqpError::channel_error(
                "unexpected method in connection state running",
            )
            .on_method(method::BASIC_PUBLISH)),
            _ => Err(AmqpError::unexpected_frame("content frame on channel 0")),
        }
    }

    fn open_channel(&mut self, id: u16) -> Result<(), AmqpError> {
        // As RabbitMQ: channel_max limits how many channels are open, not their numbers.
        let max = self.negotiated.channel_max as usize;
        if max != 0 && self.channels.len() >= max {
            return Err(AmqpError::not_allowed(format_args!(
                "number of channels opened ({}) has reached the negotiated channel_max ({max})",
                self.channels.len()
            )));
        }
        if self.channels.contains_key(&id) {
            return Err(AmqpError::channel_error("second 'channel.open' seen")
                .on_method(method::CHANNEL_OPEN));
        }
        // The user's limit as it is now, not as it was at login: RabbitMQ looks the user up at
        // every channel.open.
        let user = &self.negotiated.user.name;
        let max_channels = self
            .broker
            .auth
            .user(user)
            .and_then(|u| u.limits.max_channels);
        if let Some(limit) = max_channels
            && self.broker.connections.channels_of_user(user) >= limit
        {
            return Err(AmqpError::not_allowed(format_args!(
                "number of channels opened for user '{user}' has reached the maximum allowed user limit of ({limit})"
            )));
        }
        let channel = Channel::new(id, self.shared.clone());
        self.shared
            .channels
            .lock()
            .insert(id, channel.shared().clone());
        self.channels.insert(id, Box::new(channel));
        self.count_channels();
        Churn::bump(&self.broker.churn.channel_created);
        let ok = AMQPClass::Channel(chan::AMQPMethod::OpenOk(chan::OpenOk {}));
        self.shared
            .outbox
            .push(|b| warren_protocol::encode::method(b, id, &ok));
        Ok(())
    }

    fn remove_channel(&mut self, id: u16) {
        if self.channels.remove(&id).is_some() {
            Churn::bump(&self.broker.churn.channel_closed);
        }
        self.shared.forget_channel(id);
        self.count_channels();
    }

    /// Tells the broker's registry how many channels are open (user `max-channels`).
    fn count_channels(&self) {
        self.negotiated
            .registration
            .entry
            .channels
            .store(self.channels.len() as u32, Ordering::Relaxed);
    }

    /// Connection is going away: requeue every channel's unacked messages, cancel consumers,
    /// delete exclusive queues.
    fn release_all(&mut self) {
        // Nothing declared while releasing: a scratch list for the context.
        let mut no_new_queues = Vec::new();
        let mut ctx = channel_context(
            &self.broker,
            &self.negotiated,
            &self.shared,
            &mut no_new_queues,
        );
        for (id, mut channel) in self.channels.drain() {
            channel.release(&mut ctx);
            self.shared.forget_channel(id);
            Churn::bump(&self.broker.churn.channel_closed);
        }
        self.count_channels();
        for queue in self.exclusive_queues.drain(..) {
            self.negotiated.vhost.remove_queue(&queue);
        }
    }
}

#[path = "connection_channel_errors.rs"]
mod channel_errors;

/// The next tick of `interval`, or never without one.
async fn next_tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}
