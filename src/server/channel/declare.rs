//! exchange.* and queue.* methods: declare, delete, bind, unbind, purge. Validation of names
//! and equivalence lives in the vhost; this file turns methods into vhost calls and replies.

use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, exchange as ex, queue as q};
use warren_protocol::AmqpError;

use super::{Channel, ChannelContext, access};
use crate::auth::Access;
use crate::broker::exchange::{Binding, Destination, ExchangeKind, ExchangeOptions};
use crate::broker::queue::QueueDeclaration;
use warren_protocol::method;

impl Channel {
    pub(super) fn handle_exchange_method(
        &mut self,
        method: ex::AMQPMethod,
        ctx: &mut ChannelContext,
    ) -> Result<(), AmqpError> {
        match method {
            ex::AMQPMethod::Declare(m) => {
                let Some(kind) = ExchangeKind::parse(m.kind.as_str()) else {
                    if m.passive {
                        ctx.vhost
                            .passive_declare_exchange(m.exchange.as_str())
                            .map_err(|e| e.on_method(method::EXCHANGE_DECLARE))?;
                    } else {
                        return Err(AmqpError::command_invalid(format_args!(
                            "unknown exchange type '{}'",
                            m.kind
                        ))
                        .on_method(method::EXCHANGE_DECLARE));
                    }
                    return self.reply_unless(
                        m.nowait,
                        ctx,
                        ex::AMQPMethod::DeclareOk(ex::DeclareOk {}),
                    );
                };
                let name = m.exchange.as_str();
                if !m.passive && !name.is_empty() {
                    self.access
                        .may_declare_exchange(ctx, name, &m.arguments)
                        .map_err(|e| e.on_method(method::EXCHANGE_DECLARE))?;
                }
                let options = ExchangeOptions {
                    kind,
                    durable: m.durable,
                    auto_delete: m.auto_delete,
                    internal: m.internal,
                    arguments: m.arguments,
                };
                ctx.vhost
                    .declare_exchange(name, options, m.passive)
                    .map_err(|e| e.on_method(method::EXCHANGE_DECLARE))?;
                self.reply_unless(m.nowait, ctx, ex::AMQPMethod::DeclareOk(ex::DeclareOk {}))
            }
            ex::AMQPMethod::Delete(m) => {
                let name = m.exchange.as_str();
                // "" and amq.* are refused by the vhost, before any permission, as RabbitMQ.
                if !name.is_empty() && !name.starts_with("amq.") {
                    self.access
                        .exchange(ctx, name, Access::Configure)
                        .map_err(|e| e.on_method(method::EXCHANGE_DELETE))?;
                }
                ctx.vhost
                    .delete_exchange(m.exchange.as_str(), m.if_unused)
                    .map_err(|e| e.on_method(method::EXCHANGE_DELETE))?;
                self.reply_unless(m.nowait, ctx, ex::AMQPMethod::DeleteOk(ex::DeleteOk {}))
            }
            ex::AMQPMethod::Bind(m) => {
                self.access
                    .may_bind(
                        ctx,
                        m.source.as_str(),
                        access::BindTo::Exchange,
                        m.destination.as_str(),
                        m.routing_key.as_str(),
                    )
                    .map_err(|e| e.on_method(method::EXCHANGE_BIND))?;
                let binding = Binding {
                    destination: Destination::Exchange(Arc::from(m.destination.as_str())),
                    routing_key: m.routing_key.to_string(),
                    arguments: m.arguments,
                };
                ctx.vhost
                    .bind(m.source.as_str(), binding, ctx.connection.id)
                    .map_err(|e| e.on_method(method::EXCHANGE_BIND))?;
                self.reply_unless(m.nowait, ctx, ex::AMQPMethod::BindOk(ex::BindOk {}))
            }
            ex::AMQPMethod::Unbind(m) => {
                self.access
                    .may_bind(
                        ctx,
                        m.source.as_str(),
                        access::BindTo::Exchange,
                        m.destination.as_str(),
                        m.routing_key.as_str(),
                    )
                    .map_err(|e| e.on_method(method::EXCHANGE_UNBIND))?;
                let binding = Binding {
                    destination: Destination::Exchange(Arc::from(m.destination.as_str())),
                    routing_key: m.routing_key.to_string(),
                    arguments: m.arguments,
                };
                ctx.vhost
                    .unbind(m.source.as_str(), &binding, ctx.connection.id)
                    .map_err(|e| e.on_method(method::EXCHANGE_UNBIND))?;
                self.reply_unless(m.nowait, ctx, ex::AMQPMethod::UnbindOk(ex::UnbindOk {}))
            }
            other => Err(AmqpError::command_invalid(format_args!(
                "unexpected method {other:?}"
            ))),
        }
    }

    fn reply_unless(
        &self,
        nowait: bool,
        ctx: &ChannelContext,
        method: ex::AMQPMethod,
    ) -> Result<(), AmqpError> {
        if !nowait {
            self.reply(ctx, AMQPClass::Exchange(method));
        }
        Ok(())
    }

    fn reply_queue_unless(
        &self,
        nowait: bool,
        ctx: &ChannelContext,
        method: q::AMQPMethod,
    ) -> Result<(), AmqpError> {
        if !nowait {
            self.reply(ctx, AMQPClass::Queue(method));
        }
        Ok(())
    }

    pub(super) fn handle_queue_method(
        &mut self,
        method: q::AMQPMethod,
        ctx: &mut ChannelContext,
    ) -> Result<(), AmqpError> {
        let conn_id = ctx.connection.id;
        match method {
            q::AMQPMethod::Declare(m) => {
                // Even a passive declare takes "" literally (no "last queue" shortcut), as
                // RabbitMQ: it is 404 for queue ''.
                let mut name = m.queue.to_string();
                let server_named = name.is_empty() && !m.passive;
                if server_named {
                    name = crate::broker::names::queue_name();
                }
                if !m.passive {
                    self.access
                        .may_declare_queue(ctx, &name, server_named, &m.arguments)
                        .map_err(|e| e.on_method(method::QUEUE_DECLARE))?;
                }
                let options = QueueDeclaration {
                    durable: m.durable,
                    exclusive_owner: m.exclusive.then_some(conn_id),
                    auto_delete: m.auto_delete,
                    arguments: m.arguments,
                };
                let declared = if server_named {
                    ctx.vhost.declare_server_named_queue(name, options, conn_id)
                } else {
                    ctx.vhost.declare_queue(&name, options, m.passive, conn_id)
                }
                .map_err(|e| e.on_method(method::QUEUE_DECLARE))?;
                let queue = declared.queue;
                if queue.options.exclusive_owner == Some(conn_id)
                    && !ctx.exclusive_queues.iter().any(|x| Arc::ptr_eq(x, &queue))
                {
                    ctx.exclusive_queues.push(queue.clone());
                }
                self.last_queue = Some(queue.name.to_string());
                self.reply_queue_unless(
                    m.nowait,
                    ctx,
                    q::AMQPMethod::DeclareOk(q::DeclareOk {
                        queue: queue.name.as_ref().into(),
                        message_count: declared.message_count,
                        // RabbitMQ 3.10 answers 0 for a stream, consumers or not.
                        consumer_count: if queue.is_stream() {
                            0
                        } else {
                            declared.consumer_count
                        },
                    }),
                )
            }
            q::AMQPMethod::Bind(m) => {
                let binding = self
                    .queue_binding(
                        ctx,
                        m.queue.as_str(),
                        m.exchange.as_str(),
                        m.routing_key.as_str(),
                        m.arguments,
                    )
                    .map_err(|e| e.on_method(method::QUEUE_BIND))?;
                ctx.vhost
                    .bind(m.exchange.as_str(), binding, conn_id)
                    .map_err(|e| e.on_method(method::QUEUE_BIND))?;
                self.reply_queue_unless(m.nowait, ctx, q::AMQPMethod::BindOk(q::BindOk {}))
            }
            q::AMQPMethod::Unbind(m) => {
                let binding = self
                    .queue_binding(
                        ctx,
                        m.queue.as_str(),
                        m.exchange.as_str(),
                        m.routing_key.as_str(),
                        m.arguments,
                    )
                    .map_err(|e| e.on_method(method::QUEUE_UNBIND))?;
                ctx.vhost
                    .unbind(m.exchange.as_str(), &binding, conn_id)
                    .map_err(|e| e.on_method(method::QUEUE_UNBIND))?;
                self.reply(
                    ctx,
                    AMQPClass::Queue(q::AMQPMethod::UnbindOk(q::UnbindOk {})),
                );
                Ok(())
            }
            q::AMQPMethod::Purge(m) => {
                let name = self
                    .queue_name(m.queue.as_str())
                    .map_err(|e| e.on_method(method::QUEUE_PURGE))?;
                self.access
                    .queue(ctx, &name, Access::Read)
                    .map_err(|e| e.on_method(method::QUEUE_PURGE))?;
                let queue = ctx
                    .vhost
                    .existing_queue(&name, conn_id)
                    .map_err(|e| e.on_method(method::QUEUE_PURGE))?;
                if queue.is_stream() {
                    return Err(super::streams::not_supported("queue.purge", &queue)
                        .on_method(method::QUEUE_PURGE));
                }
                let message_count = queue.purge();
                self.reply_queue_unless(
                    m.nowait,
                    ctx,
                    q::AMQPMethod::PurgeOk(q::PurgeOk { message_count }),
                )
            }
            q::AMQPMethod::Delete(m) => {
                let name = self
                    .queue_name(m.queue.as_str())
                    .map_err(|e| e.on_method(method::QUEUE_DELETE))?;
                self.access
                    .queue(ctx, &name, Access::Configure)
                    .map_err(|e| e.on_method(method::QUEUE_DELETE))?;
                // Our own consumers of the queue hear basic.cancel after the delete-ok.
                self.shared.defer_cancels();
                let deleted = ctx
                    .vhost
                    .delete_queue(&name, m.if_unused, m.if_empty, conn_id)
                    .map_err(|e| e.on_method(method::QUEUE_DELETE));
                if let Ok(message_count) = deleted {
                    ctx.exclusive_queues.retain(|x| *x.name != *name);
                    self.reply_queue_unless(
                        m.nowait,
                        ctx,
                        q::AMQPMethod::DeleteOk(q::DeleteOk { message_count }),
                    )?;
                }
                self.shared.send_deferred_cancels();
                deleted.map(|_| ())
            }
            other => Err(AmqpError::command_invalid(format_args!(
                "unexpected method {other:?}"
            ))),
        }
    }
}

impl Channel {
    /// queue.bind / queue.unbind's binding: the queue named (or the last declared), the
    /// routing-key shortcut, and the permissions that binding needs.
    fn queue_binding(
        &mut self,
        ctx: &ChannelContext,
        queue_sent: &str,
        exchange: &str,
        routing_key: &str,
        arguments: amq_protocol::types::FieldTable,
    ) -> Result<Binding, AmqpError> {
        let queue = self.queue_name(queue_sent)?;
        let routing_key = shortcut_routing_key(queue_sent, routing_key, &queue);
        self.access
            .may_bind(ctx, exchange, access::BindTo::Queue, &queue, &routing_key)?;
        Ok(Binding {
            destination: Destination::Queue(Arc::from(queue.as_str())),
            routing_key,
            arguments,
        })
    }
}

/// queue.bind / queue.unbind naming neither the queue nor a routing key use the last declared
/// queue with its name as the key (RabbitMQ's shortcut); otherwise the key is as sent.
fn shortcut_routing_key(queue_sent: &str, routing_key: &str, queue: &str) -> String {
    if queue_sent.is_empty() && routing_key.is_empty() {
        queue.to_string()
    } else {
        routing_key.to_string()
    }
}
