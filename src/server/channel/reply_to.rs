//! Direct reply-to on a channel: consuming the pseudo-queue `amq.rabbitmq.reply-to` gives the
//! channel a reply address (registered in the broker's [`DirectReplies`], which also delivers
//! the replies); cancelling the consumer or closing the channel gives it up.
//!
//! [`DirectReplies`]: crate::broker::publish::DirectReplies

use std::sync::Arc;

use amq_protocol::protocol::{AMQPClass, basic as b};
use warren_protocol::AmqpError;

use super::{Channel, ChannelContext};
use crate::broker::Broker;
use crate::broker::consumer::ReplyTarget;
use crate::broker::names;
use warren_protocol::method;

pub use crate::broker::publish::REPLY_PSEUDO_QUEUE as PSEUDO_QUEUE;
impl Channel {
    /// basic.consume on `amq.rabbitmq.reply-to`.
    pub(super) fn consume_reply_to(
        &mut self,
        m: b::Consume,
        ctx: &mut ChannelContext,
    ) -> Result<(), AmqpError> {
        if !m.no_ack {
            return Err(AmqpError::precondition("reply consumer cannot acknowledge")
                .on_method(method::BASIC_CONSUME));
        }
        if self.reply_address.is_some() {
            return Err(AmqpError::precondition("reply consumer already set")
                .on_method(method::BASIC_CONSUME));
        }
        let tag = if m.consumer_tag.as_str().is_empty() {
            names::consumer_tag()
        } else {
            m.consumer_tag.to_string()
        };
        self.shared.set_reply_consumer(Some(tag.clone()));
        let target: Arc<dyn ReplyTarget> = self.shared.clone();
        self.reply_address = Some(ctx.broker.replies.register(&target));
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
        if let Some(address) = self.reply_address.take() {
            broker.replies.forget(&address);
        }
        self.shared.set_reply_consumer(None);
    }
}
