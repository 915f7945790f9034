//! Direct reply-to (RabbitMQ's `amq.rabbitmq.reply-to`): a requester consumes the pseudo-queue
//! `amq.rabbitmq.reply-to` in no-ack mode; its requests carry `reply_to: amq.rabbitmq.reply-to`,
//! which the broker rewrites to a routable `amq.rabbitmq.reply-to.<key>` naming the requester's
//! channel; a reply published to the default exchange with that routing key goes straight to the
//! requester's consumer — no queue involved.

use std::sync::{Arc, Weak};

use amq_protocol::protocol::{AMQPClass, basic as b};
use warren_protocol::{AmqpError, Properties};

use super::{Channel, ChannelContext};
use crate::broker::Broker;
use crate::broker::consumer::ReplyTarget;
use crate::broker::names;

pub const PSEUDO_QUEUE: &str = "amq.rabbitmq.reply-to";
const PREFIX: &str = "amq.rabbitmq.reply-to.";

impl Channel {
    /// basic.consume on `amq.rabbitmq.reply-to`.
    pub(super) fn consume_reply_to(
        &mut self,
        m: b::Consume,
        ctx: &mut ChannelContext,
    ) -> Result<(), AmqpError> {
        if !m.no_ack {
            return Err(AmqpError::precondition("reply consumer cannot acknowledge").on(60, 20));
        }
        if self.reply_key.is_some() {
            return Err(AmqpError::precondition("reply consumer already set").on(60, 20));
        }
        let tag = if m.consumer_tag.as_str().is_empty() {
            names::consumer_tag()
        } else {
            m.consumer_tag.to_string()
        };
        let key = names::generate(PREFIX);
        self.shared.set_reply_consumer(Some(tag.clone()));
        let target: Arc<dyn ReplyTarget> = self.shared.clone();
        ctx.broker
            .replies
            .insert(key.clone(), Arc::downgrade(&target));
        self.reply_key = Some(key);
        if !m.nowait {
            self.reply(
                ctx,
                AMQPClass::Basic(b::AMQPMethod::ConsumeOk(b::ConsumeOk {
                    consumer_tag: tag.as_str().into(),
                })),
            );
        }
        Ok(())
    }

    /// Cancels the reply consumer if `tag` is it.
    pub(super) fn cancel_reply_to(&mut self, tag: &str, broker: &Broker) -> bool {
        if self.shared.reply_consumer().as_deref() != Some(tag) {
            return false;
        }
        self.forget_reply_to(broker);
        true
    }

    pub(super) fn forget_reply_to(&mut self, broker: &Broker) {
        if let Some(key) = self.reply_key.take() {
            broker.replies.remove(&key);
        }
        self.shared.set_reply_consumer(None);
    }

    /// A request asking for a direct reply gets this channel's routable reply-to.
    pub(super) fn rewrite_reply_to(&self, properties: Properties) -> Result<Properties, AmqpError> {
        if properties.reply_to() != Some(PSEUDO_QUEUE) {
            return Ok(properties);
        }
        let Some(key) = &self.reply_key else {
            return Err(AmqpError::precondition("fast reply consumer does not exist").on(60, 40));
        };
        let basic = properties.to_basic().with_reply_to(key.as_str().into());
        Ok(Properties::from_basic(&basic))
    }
}

/// Delivers a reply published to the default exchange with an `amq.rabbitmq.reply-to.<key>`
/// routing key; `None` if the routing key is not a reply-to address, `Some(false)` if nobody
/// waits for it any more.
pub fn deliver_reply(
    broker: &Broker,
    routing_key: &str,
    deliver: impl FnOnce(&dyn ReplyTarget),
) -> Option<bool> {
    if !routing_key.starts_with(PREFIX) {
        return None;
    }
    let target: Option<Weak<dyn ReplyTarget>> = broker.replies.get(routing_key).map(|t| t.clone());
    match target.and_then(|t| t.upgrade()) {
        Some(t) => {
            deliver(t.as_ref());
            Some(true)
        }
        None => Some(false),
    }
}
