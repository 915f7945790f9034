//! basic.* methods: publish (routing a completed message), consume, cancel, get, qos, ack,
//! nack, reject, recover.

use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, basic as b};
use bytes::Bytes;
use warren_protocol::content::Content;
use warren_protocol::reply::NO_ROUTE;
use warren_protocol::{AmqpError, Properties, Publish, encode};

use super::shared::Settlement;
use super::{Channel, ChannelContext};
use crate::broker::consumer::Consumer;
use crate::broker::enqueue::{Enqueued, enqueue};
use crate::broker::message::{LazyHeaders, Message};

use super::reply_to;
use crate::broker::exchange::Exchange;
use crate::broker::names;
use crate::broker::queue::ConsumerRemoved;
use crate::broker::sender_selected::{SenderSelected, sender_selected, without_bcc};

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
                    .map_err(|e| e.on(60, 70))?;
                let queue = ctx
                    .vhost
                    .existing_queue(&name, ctx.connection.id)
                    .map_err(|e| e.on(60, 70))?;
                match queue.get(m.no_ack) {
                    Some((message, remaining)) => self
                        .shared
                        .deliver_get(&queue, message, m.no_ack, remaining),
                    None => self.reply(
                        ctx,
                        AMQPClass::Basic(b::AMQPMethod::GetEmpty(b::GetEmpty {})),
                    ),
                }
                Ok(())
            }
            b::AMQPMethod::Qos(m) => {
                if m.global {
                    self.shared.set_global_prefetch(m.prefetch_count as u32);
                } else {
                    self.consumer_prefetch = m.prefetch_count as u32;
                }
                self.reply(ctx, AMQPClass::Basic(b::AMQPMethod::QosOk(b::QosOk {})));
                Ok(())
            }
            b::AMQPMethod::Ack(m) => self.settle(m.delivery_tag, m.multiple, Settlement::Remove),
            b::AMQPMethod::Nack(m) => self.settle(
                m.delivery_tag,
                m.multiple,
                if m.requeue {
                    Settlement::Requeue
                } else {
                    Settlement::Reject
                },
            ),
            b::AMQPMethod::Reject(m) => self.settle(
                m.delivery_tag,
                false,
                if m.requeue {
                    Settlement::Requeue
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

    /// basic.publish arrived: its header and body come next.
    pub(super) fn start_publish(&mut self, publish: Publish) -> Result<(), AmqpError> {
        if publish.immediate {
            return Err(AmqpError::not_implemented("immediate=true").on(60, 40));
        }
        self.assembler.start(publish);
        Ok(())
    }

    /// A message is complete: it is checked now, then routed now or, in a transaction, at
    /// commit.
    pub(super) fn publish(
        &mut self,
        content: Content<Publish>,
        ctx: &mut ChannelContext,
    ) -> Result<(), AmqpError> {
        let checked = self.check_publish(content, ctx)?;
        if let Some(tx) = &mut self.tx {
            tx.publishes.push(checked);
            return Ok(());
        }
        let confirm_seq = self.confirm_mode.then(|| self.shared.register_confirm());
        let outcome = self.route(checked, ctx);
        if let Some(seq) = confirm_seq {
            match (outcome.stored, &ctx.broker.store) {
                // A full queue with x-overflow reject-publish refused it.
                _ if !outcome.accepted => self.shared.settle_confirm(seq, false),
                // Confirmed once the store has committed it (and everything before it).
                (true, Some(store)) => store.notify_when_committed(self.shared.clone(), seq),
                _ => self.shared.settle_confirm(seq, true),
            }
        }
        Ok(())
    }

    /// Everything RabbitMQ refuses a publish for, checked when the message arrives (also in a
    /// transaction: a publish to a missing exchange fails at once, not at commit).
    fn check_publish(
        &mut self,
        content: Content<Publish>,
        ctx: &mut ChannelContext,
    ) -> Result<CheckedPublish, AmqpError> {
        let Content {
            method,
            properties,
            body,
        } = content;
        let exchange = self
            .route_cache
            .exchange(ctx.vhost, method.exchange.as_str())
            .ok_or_else(|| ctx.vhost.no_exchange(method.exchange.as_str()).on(60, 40))?;
        if exchange.options.internal {
            return Err(AmqpError::access_refused(format_args!(
                "cannot publish to internal {}",
                names::exchange(&exchange.name, &ctx.vhost.name)
            ))
            .on(60, 40));
        }
        if let Some(user_id) = properties.user_id()
            && user_id != ctx.user
        {
            return Err(AmqpError::precondition(format_args!(
                "user_id property set to '{user_id}' but authenticated user was '{}'",
                ctx.user
            ))
            .on(60, 40));
        }
        if let Some(expiration) = properties.expiration() {
            check_expiration(expiration)?;
        }
        let properties = self.rewrite_reply_to(properties)?;
        // CC / BCC headers: extra routing keys chosen by the publisher (a cheap raw scan first;
        // the table is parsed only when one of them is there).
        let selected = if properties.has_header_key(&["CC", "BCC"]) {
            sender_selected(properties.headers().as_ref()).map_err(|e| e.on(60, 40))?
        } else {
            None
        };
        Ok(CheckedPublish {
            exchange,
            method,
            properties,
            body,
            selected,
        })
    }

    /// Routes a checked message to its queues, or returns it (mandatory) when nothing matches.
    pub(super) fn route(&mut self, checked: CheckedPublish, ctx: &mut ChannelContext) -> Enqueued {
        let CheckedPublish {
            exchange,
            method,
            mut properties,
            body,
            selected,
        } = checked;
        if exchange.name.is_empty() {
            // The reply message is built only for a reply-to routing key: this is every
            // default-exchange publish's path.
            let sent = reply_to::deliver_reply(ctx.broker, &method.routing_key, |target| {
                target.deliver_reply(&Message {
                    exchange: exchange.name.clone(),
                    routing_key: method.routing_key.clone(),
                    properties: properties.clone(),
                    body: body.clone(),
                    store_id: None,
                })
            });
            if sent == Some(true) {
                return Enqueued {
                    stored: false,
                    accepted: true,
                };
            }
        }
        if let Some(selected) = &selected {
            let mut keys: Vec<&str> = Vec::with_capacity(1 + selected.keys.len());
            keys.push(&method.routing_key);
            keys.extend(selected.keys.iter().map(String::as_str));
            let mut headers = LazyHeaders::new(&properties);
            ctx.vhost.route_keys(
                &exchange,
                &keys,
                &mut headers,
                &mut self.route_out,
                &mut self.route_scratch,
            );
        } else if exchange.name.is_empty() {
            // The default exchange: every queue is implicitly bound by its own name.
            self.route_out.extend(
                self.route_cache
                    .default_exchange_queue(ctx.vhost, &method.routing_key),
            );
        } else {
            let mut headers = LazyHeaders::new(&properties);
            ctx.vhost.route(
                &exchange,
                &method.routing_key,
                &mut headers,
                &mut self.route_out,
                &mut self.route_scratch,
            );
        }
        if selected.is_some_and(|s| s.has_bcc) {
            // Nobody sees who was blind-copied.
            properties = without_bcc(&properties);
        }
        if self.route_out.is_empty() {
            if method.mandatory {
                let id = self.id;
                let frame_max = ctx
                    .connection
                    .frame_max
                    .load(std::sync::atomic::Ordering::Relaxed);
                ctx.connection.outbox.push(|out| {
                    encode::basic_return(
                        out,
                        id,
                        NO_ROUTE,
                        "NO_ROUTE",
                        method.exchange.as_str(),
                        method.routing_key.as_str(),
                    );
                    encode::content(out, id, properties.raw(), &body, frame_max);
                });
            }
            return Enqueued {
                stored: false,
                accepted: true,
            };
        }
        enqueue(
            ctx.broker.store.as_ref(),
            exchange.name.clone(),
            method.routing_key,
            properties,
            body,
            &mut self.route_out,
        )
    }

    fn consume(&mut self, m: b::Consume, ctx: &mut ChannelContext) -> Result<(), AmqpError> {
        if m.queue.as_str() == reply_to::PSEUDO_QUEUE {
            return self.consume_reply_to(m, ctx);
        }
        let name = self
            .queue_name(m.queue.as_str())
            .map_err(|e| e.on(60, 20))?;
        let queue = ctx
            .vhost
            .existing_queue(&name, ctx.connection.id)
            .map_err(|e| e.on(60, 20))?;
        let tag = if m.consumer_tag.as_str().is_empty() {
            names::consumer_tag()
        } else {
            m.consumer_tag.to_string()
        };
        let consumer = Arc::new(Consumer::new(
            tag.clone(),
            m.no_ack,
            m.exclusive,
            self.consumer_prefetch,
            consumer_priority(&m.arguments, &names::queue(&queue.name, &ctx.vhost.name))?,
            ctx.connection.id,
            self.shared.clone(),
        ));
        self.shared
            .add_consumer(queue.clone(), consumer.clone())
            .map_err(|e| e.on(60, 20))?;
        if let Err(e) = queue.add_consumer(consumer) {
            self.shared.remove_consumer(&tag);
            return Err(e.on(60, 20));
        }
        if !m.nowait {
            self.reply(
                ctx,
                AMQPClass::Basic(b::AMQPMethod::ConsumeOk(b::ConsumeOk {
                    consumer_tag: tag.as_str().into(),
                })),
            );
        }
        queue.dispatch();
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
        match &mut self.tx {
            Some(tx) => tx.settlements.push((entries, how)),
            None => self.shared.settle(entries, how),
        }
        Ok(())
    }

    /// basic.recover: RabbitMQ only implements requeue=true (540 otherwise, as RabbitMQ does).
    fn recover(&mut self, requeue: bool) -> Result<(), AmqpError> {
        if !requeue {
            return Err(AmqpError::not_implemented("requeue=false").on(60, 110));
        }
        let entries = self.shared.take_all_unacked();
        self.shared.settle(entries, Settlement::Requeue);
        Ok(())
    }
}

/// A publish that passed [`Channel::check_publish`]: its exchange, and its properties as they
/// will be delivered (reply-to rewritten).
pub(super) struct CheckedPublish {
    exchange: Arc<Exchange>,
    method: Publish,
    properties: Properties,
    body: Bytes,
    /// Extra routing keys from CC / BCC headers.
    selected: Option<SenderSelected>,
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
                .on(60, 20)
            }),
    }
}

/// The `expiration` property must be a non-negative integer of milliseconds; RabbitMQ refuses
/// anything else with 406 and says why in Erlang's terms.
fn check_expiration(expiration: &str) -> Result<(), AmqpError> {
    let digits = expiration.strip_prefix('-').unwrap_or(expiration);
    let leading = digits.bytes().take_while(u8::is_ascii_digit).count();
    let reason = if leading == 0 {
        "no_integer".to_string()
    } else if leading < digits.len() {
        format!("{{leftover_string,\"{}\"}}", &digits[leading..])
    } else if expiration.starts_with('-') {
        format!("{{value_negative,{expiration}}}")
    } else {
        return Ok(());
    };
    Err(
        AmqpError::precondition(format_args!("invalid expiration '{expiration}': {reason}"))
            .on(60, 40),
    )
}
