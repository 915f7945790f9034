//! basic.* methods: consume, cancel, get, qos, ack, nack, reject, recover (basic.publish is in
//! publish.rs).

use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, basic as b};
use warren_protocol::AmqpError;

use super::shared::Settlement;
use super::{Channel, ChannelContext};
use super::{reply_to, streams};
use crate::auth::Access;
use crate::broker::consumer::Consumer;
use crate::broker::names;
use crate::broker::queue::ConsumerRemoved;
use warren_protocol::method;

impl Channel {
    pub(super) fn handle_basic_method(
        &mut self,
        method: b::AMQPMethod,
        ctx: &mut ChannelContext,
    ) -> Result<(), AmqpError> {
        match method {
            b::AMQPMethod::Consume(m) => self.consume(m, ctx),
            b::AMQPMethod::Cancel(m) => {
                self.cancel(m.consumer_tag.as_str(), ctx);
                if !m.nowait {
                    self.reply(
                        ctx,
                        AMQPClass::Basic(b::AMQPMethod::CancelOk(b::CancelOk {
                            consumer_tag: m.consumer_tag,
                        })),
                    );
                }
                Ok(())
            }
            b::AMQPMethod::Get(m) => {
                let name = self
                    .queue_name(m.queue.as_str())
                    .map_err(|e| e.on_method(method::BASIC_GET))?;
                self.access
                    .queue(ctx, &name, Access::Read)
                    .map_err(|e| e.on_method(method::BASIC_GET))?;
                let queue = ctx
                    .vhost
                    .existing_queue(&name, ctx.connection.id)
                    .map_err(|e| e.on_method(method::BASIC_GET))?;
                if queue.is_stream() {
                    return Err(
                        streams::not_supported("basic.get", &queue).on_method(method::BASIC_GET)
                    );
                }
                match queue.get(m.no_ack) {
                    Some((message, remaining)) => self
                        .shared
                        .deliver_get(&queue, message, m.no_ack, remaining),
                    None => {
                        self.shared.count_get_empty();
                        self.reply(
                            ctx,
                            AMQPClass::Basic(b::AMQPMethod::GetEmpty(b::GetEmpty {})),
                        )
                    }
                }
                Ok(())
            }
            b::AMQPMethod::Qos(m) => {
                if m.global {
                    self.shared.set_global_prefetch(m.prefetch_count as u32);
                } else {
                    self.consumer_prefetch = m.prefetch_count as u32;
                    self.shared
                        .settings
                        .set_consumer_prefetch(self.consumer_prefetch);
                }
                self.reply(ctx, AMQPClass::Basic(b::AMQPMethod::QosOk(b::QosOk {})));
                Ok(())
            }
            b::AMQPMethod::Ack(m) => self.settle(m.delivery_tag, m.multiple, Settlement::Remove),
            b::AMQPMethod::Nack(m) => self.settle(
                m.delivery_tag,
                m.multiple,
                if m.requeue {
                    Settlement::Retry
                } else {
                    Settlement::Reject
                },
            ),
            b::AMQPMethod::Reject(m) => self.settle(
                m.delivery_tag,
                false,
                if m.requeue {
                    Settlement::Retry
                } else {
                    Settlement::Reject
                },
            ),
            b::AMQPMethod::Recover(m) => {
                if !m.requeue {
                    return self.recover(false);
                }
                // recover-ok first, as RabbitMQ: clients may drop deliveries that precede it.
                self.reply(
                    ctx,
                    AMQPClass::Basic(b::AMQPMethod::RecoverOk(b::RecoverOk {})),
                );
                self.recover(true)
            }
            b::AMQPMethod::RecoverAsync(m) => self.recover(m.requeue),
            other => Err(AmqpError::command_invalid(format_args!(
                "unexpected method {other:?}"
            ))),
        }
    }

    fn consume(&mut self, m: b::Consume, ctx: &mut ChannelContext) -> Result<(), AmqpError> {
        if m.queue.as_str() == reply_to::PSEUDO_QUEUE {
            return self.consume_reply_to(m, ctx);
        }
        let name = self
            .queue_name(m.queue.as_str())
            .map_err(|e| e.on_method(method::BASIC_CONSUME))?;
        self.access
            .queue(ctx, &name, Access::Read)
            .map_err(|e| e.on_method(method::BASIC_CONSUME))?;
        let queue = ctx
            .vhost
            .existing_queue(&name, ctx.connection.id)
            .map_err(|e| e.on_method(method::BASIC_CONSUME))?;
        if queue.is_quorum() && self.shared.has_global_prefetch() {
            // RabbitMQ 3.10: a connection error (540), not a channel one.
            return Err(AmqpError::not_implemented(format_args!(
                "{} does not support global qos",
                names::queue(&queue.name, &ctx.vhost.name)
            ))
            .on_method(method::BASIC_CONSUME));
        }
        let stream_start = streams::consume_start(&queue, &m, self.consumer_prefetch)?;
        let tag = if m.consumer_tag.as_str().is_empty() {
            names::consumer_tag()
        } else {
            m.consumer_tag.to_string()
        };
        let consumer = Arc::new(
            Consumer::new(
                tag.clone(),
                m.no_ack,
                m.exclusive,
                self.consumer_prefetch,
                consumer_priority(&m.arguments, &names::queue(&queue.name, &ctx.vhost.name))?,
                ctx.connection.id,
                self.shared.clone(),
            )
            .unannounced(),
        );
        self.shared
            .add_consumer(queue.clone(), consumer.clone())
            .map_err(|e| e.on_method(method::BASIC_CONSUME))?;
        if let Err(e) = queue.add_consumer_from(consumer.clone(), stream_start) {
            self.shared.remove_consumer(&tag);
            return Err(e.on_method(method::BASIC_CONSUME));
        }
        if !m.nowait {
            self.reply(
                ctx,
                AMQPClass::Basic(b::AMQPMethod::ConsumeOk(b::ConsumeOk {
                    consumer_tag: tag.as_str().into(),
                })),
            );
        }
        consumer.announce();
        queue.resume(std::slice::from_ref(&consumer));
        Ok(())
    }

    fn cancel(&mut self, tag: &str, ctx: &mut ChannelContext) {
        if self.cancel_reply_to(tag, ctx.broker) {
            return;
        }
        if let Some(entry) = self.shared.remove_consumer(tag)
            && entry.queue.remove_consumer(tag, ctx.connection.id)
                == ConsumerRemoved::RemovedLastOfAutoDelete
        {
            ctx.vhost.remove_queue(&entry.queue);
        }
    }

    /// ack / nack / reject; inside a transaction the settlement waits for tx.commit.
    fn settle(&mut self, tag: u64, multiple: bool, how: Settlement) -> Result<(), AmqpError> {
        let entries = self.shared.take_settled(tag, multiple)?;
        if !matches!(how, Settlement::Remove)
            && let Some(stream) = entries.iter().find(|u| u.queue.is_stream())
        {
            return Err(streams::not_supported(
                "basic.nack and basic.reject",
                &stream.queue,
            ));
        }
        match &mut self.tx {
            Some(tx) => tx.settlements.push((entries, how)),
            None => self.shared.settle(entries, how),
        }
        Ok(())
    }

    /// basic.recover: RabbitMQ only implements requeue=true (540 otherwise, as RabbitMQ does).
    fn recover(&mut self, requeue: bool) -> Result<(), AmqpError> {
        if !requeue {
            return Err(
                AmqpError::not_implemented("requeue=false").on_method(method::BASIC_RECOVER)
            );
        }
        let entries = self.shared.take_all_unacked();
        self.shared.settle(entries, Settlement::Requeue);
        Ok(())
    }
}

/// `x-priority` on basic.consume (default 0); a non-integer is refused as RabbitMQ does.
fn consumer_priority(
    arguments: &amq_protocol::types::FieldTable,
    what: &str,
) -> Result<i32, AmqpError> {
    match arguments.inner().get("x-priority") {
        None => Ok(0),
        Some(v) => crate::broker::field_display::as_i64(v)
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| {
                AmqpError::precondition(format_args!(
                    "invalid arg 'x-priority' for {what}: \"expected integer, got {}\"",
                    crate::broker::field_display::type_name(v)
                ))
                .on_method(method::BASIC_CONSUME)
            }),
    }
}
