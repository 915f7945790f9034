//! Direct reply-to (RabbitMQ's `amq.rabbitmq.reply-to`): the addresses of requesters waiting
//! for replies. A requester consumes the pseudo-queue `amq.rabbitmq.reply-to` in no-ack mode
//! and gets an address `amq.rabbitmq.reply-to.<key>`; a reply published to the default exchange
//! with that routing key goes straight to the requester, no queue involved.
//!
//! This file owns the registry only; consuming the pseudo-queue is the channel's business.

use std::sync::{Arc, Weak};

use dashmap::DashMap;

use crate::broker::consumer::ReplyTarget;
use crate::broker::names;

/// The queue name a requester consumes, and a request's `reply_to` asking for a direct reply.
pub const REPLY_PSEUDO_QUEUE: &str = "amq.rabbitmq.reply-to";
/// What every reply address starts with.
pub const REPLY_PREFIX: &str = "amq.rabbitmq.reply-to.";

/// Reply addresses and the requesters behind them (node-wide, as in RabbitMQ).
#[derive(Default)]
pub struct DirectReplies {
    targets: DashMap<String, Weak<dyn ReplyTarget>>,
}

impl DirectReplies {
    /// A new address for `target`, valid until [`Self::forget`] (or until the target is gone).
    pub fn register(&self, target: &Arc<dyn ReplyTarget>) -> String {
        let address = names::generate(REPLY_PREFIX);
        self.targets.insert(address.clone(), Arc::downgrade(target));
        address
    }

    pub fn forget(&self, address: &str) {
        self.targets.remove(address);
    }

    /// Hands a reply to the requester `routing_key` names: `None` if the routing key is not a
    /// reply address, `Some(false)` if nobody waits on it any more.
    pub fn deliver(
        &self,
        routing_key: &str,
        deliver: impl FnOnce(&dyn ReplyTarget),
    ) -> Option<bool> {
        if !routing_key.starts_with(REPLY_PREFIX) {
            return None;
        }
        let target = self.targets.get(routing_key).map(|t| t.clone());
        match target.and_then(|t| t.upgrade()) {
            Some(t) => {
                deliver(t.as_ref());
                Some(true)
            }
            None => Some(false),
        }
    }
}
