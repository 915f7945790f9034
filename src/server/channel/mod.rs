//! One AMQP channel as its connection task sees it: method dispatch, content assembly,
//! publisher confirms, transactions, and the close handshake. Methods are handled in
//! [`declare`] (exchange.* and queue.*) and [`basic`] (basic.*); [`shared`] is the part queues
//! reach for deliveries; [`confirms`] and [`tx`] hold the confirm and transaction state.
//!
//! Every handler returns `Result<_, AmqpError>`: a 4xx error closes this channel, a 5xx error
//! the connection (the connection task decides by the error's scope).

mod about;
mod access;
mod basic;
mod confirms;
mod content;
mod declare;
mod publish;
mod reply_to;
mod shared;
mod streams;
mod tx;

use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, channel as chan, confirm, tx as txm};
use warren_protocol::codec::Frame;
use warren_protocol::content::ContentAssembler;
use warren_protocol::{AmqpError, Publish};

pub use shared::ChannelShared;
use shared::Settlement;

use crate::broker::Broker;
use crate::broker::publish::Publisher;
use crate::broker::queue::ConsumerRemoved;
use crate::broker::queue::Queue;
use crate::broker::vhost::VHost;
use crate::server::connection::{ConnectionShared, short_text};
use warren_protocol::method;

/// What a channel handler may touch beyond the channel itself.
pub struct ChannelContext<'a> {
    pub broker: &'a Broker,
    pub vhost: &'a Arc<VHost>,
    pub user: &'a crate::auth::User,
    pub connection: &'a Arc<ConnectionShared>,
    /// Exclusive queues declared on this connection (deleted when it closes).
    pub exclusive_queues: &'a mut Vec<Arc<Queue>>,
}

pub struct Channel {
    id: u16,
    shared: Arc<ChannelShared>,
    assembler: ContentAssembler<Publish>,
    /// We sent channel.close and wait for close-ok; everything else is dropped.
    closing: bool,
    /// basic.qos global=false: the prefetch given to consumers created from now on.
    consumer_prefetch: u32,
    /// confirm.select was sent: published messages get confirms (tracked in `shared`).
    confirm_mode: bool,
    tx: Option<tx::Transaction>,
    /// The last queue declared on this channel, used when a method names the queue "".
    last_queue: Option<String>,
    /// This channel's direct reply-to address while it consumes `amq.rabbitmq.reply-to`.
    reply_address: Option<String>,
    /// This channel's routing memory, reused from one publish to the next.
    publisher: Publisher,
    /// Permission checks that passed lately.
    access: access::AccessMemory,
}

impl Channel {
    pub fn new(id: u16, connection: Arc<ConnectionShared>) -> Self {
        Channel {
            id,
            shared: Arc::new(ChannelShared::new(id, connection)),
            assembler: ContentAssembler::default(),
            closing: false,
            consumer_prefetch: 0,
            confirm_mode: false,
            tx: None,
            last_queue: None,
            reply_address: None,
            publisher: Publisher::default(),
            access: access::AccessMemory::default(),
        }
    }

    pub fn shared(&self) -> &Arc<ChannelShared> {
        &self.shared
    }

    fn reply(&self, ctx: &ChannelContext, class: AMQPClass) {
        let id = self.id;
        ctx.connection
            .outbox
            .push(|out| warren_protocol::encode::method(out, id, &class));
    }

    /// Handles one frame for this channel; `Ok(false)` once the channel is closed for good.
    pub fn handle_frame(
        &mut self,
        frame: Frame,
        ctx: &mut ChannelContext,
    ) -> Result<bool, AmqpError> {
        if self.closing {
            return Ok(self.handle_while_closing(frame, ctx));
        }
        match frame {
            Frame::Method { method, .. } => {
                self.assembler
                    .check_method_allowed()
                    .map_err(|e| e.on_method(method::BASIC_PUBLISH))?;
                self.handle_method(method, ctx)
            }
            Frame::Publish { publish, .. } => {
                self.assembler
                    .check_method_allowed()
                    .map_err(|e| e.on_method(method::BASIC_PUBLISH))?;
                self.start_publish(publish)?;
                Ok(true)
            }
            Frame::Header {
                class_id,
                body_size,
                properties,
                ..
            } => {
                // The frame sequence (and the header's class) is checked before the size, as
                // RabbitMQ does.
                let in_publish = !self.assembler.is_idle();
                let header = self.assembler.header(class_id, body_size, properties);
                let header = header.map_err(|e| {
                    if in_publish {
                        e.on_method(method::BASIC_PUBLISH)
                    } else {
                        e
                    }
                })?;
                if body_size > ctx.broker_max_message_size() {
                    self.assembler.reset();
                    return Err(AmqpError::precondition(format_args!(
                        "message size {body_size} is larger than configured max size {}",
                        ctx.broker_max_message_size()
                    )));
                }
                if let Some(content) = header {
                    self.publish(content, ctx)?;
                }
                Ok(true)
            }
            Frame::Body { payload, .. } => {
                let in_publish = !self.assembler.is_idle();
                let body = self.assembler.body(payload).map_err(|e| {
                    if in_publish {
                        e.on_method(method::BASIC_PUBLISH)
                    } else {
                        e
                    }
                })?;
                if let Some(content) = body {
                    self.publish(content, ctx)?;
                }
                Ok(true)
            }
            Frame::Heartbeat { .. } => Ok(true),
        }
    }

    fn handle_while_closing(&mut self, frame: Frame, ctx: &ChannelContext) -> bool {
        match frame {
            Frame::Method { method, .. } => match method {
                AMQPClass::Channel(chan::AMQPMethod::CloseOk(_)) => false,
                // Both sides closed at once: answer the client's close, but the channel stays
                // closing until the client's close-ok for ours (as RabbitMQ; a client that
                // reuses the id before that would otherwise meet a 504).
                AMQPClass::Channel(chan::AMQPMethod::Close(_)) => {
                    self.reply(
                        ctx,
                        AMQPClass::Channel(chan::AMQPMethod::CloseOk(chan::CloseOk {})),
                    );
                    true
                }
                _ => true,
            },
            _ => true,
        }
    }

    fn handle_method(
        &mut self,
        method: AMQPClass,
        ctx: &mut ChannelContext,
    ) -> Result<bool, AmqpError> {
        match method {
            AMQPClass::Channel(m) => return self.handle_channel_method(m, ctx),
            AMQPClass::Exchange(m) => self.handle_exchange_method(m, ctx)?,
            AMQPClass::Queue(m) => self.handle_queue_method(m, ctx)?,
            AMQPClass::Basic(m) => self.handle_basic_method(m, ctx)?,
            AMQPClass::Confirm(confirm::AMQPMethod::Select(select)) => {
                self.confirm_select(select.nowait, ctx)?
            }
            AMQPClass::Tx(m) => match m {
                txm::AMQPMethod::Select(_) => self.tx_select(ctx)?,
                txm::AMQPMethod::Commit(_) => self.tx_commit(ctx)?,
                txm::AMQPMethod::Rollback(_) => self.tx_rollback(ctx)?,
                other => {
                    return Err(AmqpError::command_invalid(format_args!(
                        "unexpected method {other:?}"
                    )));
                }
            },
            other => {
                return Err(AmqpError::command_invalid(format_args!(
                    "method {:?} is not allowed on channel {}",
                    other.get_amqp_class_id(),
                    self.id
                )));
            }
        }
        Ok(true)
    }

    fn handle_channel_method(
        &mut self,
        method: chan::AMQPMethod,
        ctx: &mut ChannelContext,
    ) -> Result<bool, AmqpError> {
        match method {
            chan::AMQPMethod::Open(_) => {
                Err(AmqpError::channel_error("second 'channel.open' seen"))
            }
            chan::AMQPMethod::Close(_) => {
                self.release(ctx);
                self.reply(
                    ctx,
                    AMQPClass::Channel(chan::AMQPMethod::CloseOk(chan::CloseOk {})),
                );
                Ok(false)
            }
            chan::AMQPMethod::CloseOk(_) => Err(AmqpError::command_invalid("unimplemented method")
                .on_method(method::CHANNEL_CLOSE_OK)),
            chan::AMQPMethod::OpenOk(_) => Err(AmqpError::command_invalid("unimplemented method")
                .on_method(method::CHANNEL_OPEN_OK)),
            // RabbitMQ 3.x no longer implements flow control requested by clients.
            chan::AMQPMethod::Flow(flow) if !flow.active => {
                Err(AmqpError::not_implemented("active=false").on_method(method::CHANNEL_FLOW))
            }
            chan::AMQPMethod::Flow(flow) => {
                self.shared.set_flow(flow.active);
                self.reply(
                    ctx,
                    AMQPClass::Channel(chan::AMQPMethod::FlowOk(chan::FlowOk {
                        active: flow.active,
                    })),
                );
                Ok(true)
            }
            chan::AMQPMethod::FlowOk(_) => Ok(true),
        }
    }

    /// Sends channel.close for a soft error and releases the channel's resources; the channel
    /// then waits for close-ok.
    pub fn close_with_error(
        &mut self,
        e: &AmqpError,
        connection: &ConnectionShared,
        ctx: &mut ChannelContext,
    ) {
        tracing::debug!(channel = self.id, "closing channel: {e}");
        self.release(ctx);
        self.closing = true;
        let close = AMQPClass::Channel(chan::AMQPMethod::Close(chan::Close {
            reply_code: e.code,
            reply_text: short_text(&e.text),
            class_id: e.class_id,
            method_id: e.method_id,
        }));
        let id = self.id;
        connection
            .outbox
            .push(|out| warren_protocol::encode::method(out, id, &close));
    }

    /// Requeues unacked deliveries and detaches consumers (channel or connection closing).
    pub fn release(&mut self, ctx: &mut ChannelContext) {
        self.assembler.reset();
        self.tx = None;
        self.forget_reply_to(ctx.broker);
        for entry in self.shared.close() {
            let outcome = entry
                .queue
                .remove_consumer(&entry.consumer.tag, ctx.connection.id);
            if outcome == ConsumerRemoved::RemovedLastOfAutoDelete {
                ctx.vhost.remove_queue(&entry.queue);
            }
        }
        let unacked = self.shared.take_all_unacked();
        self.shared.settle(unacked, Settlement::Requeue);
        self.shared.close_confirms();
    }

    /// Called after each batch of frames read from the socket: sends pending confirms.
    pub fn end_of_batch(&self) {
        self.shared.flush_confirms();
    }

    /// The queue a method names; "" means the last queue declared on this channel.
    fn queue_name(&self, name: &str) -> Result<String, AmqpError> {
        if !name.is_empty() {
            return Ok(name.to_string());
        }
        self.last_queue
            .clone()
            .ok_or_else(|| AmqpError::not_found("no previously declared queue"))
    }
}

impl ChannelContext<'_> {
    fn broker_max_message_size(&self) -> u64 {
        self.broker.max_message_size
    }
}
