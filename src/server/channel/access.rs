//! Permission checks as a channel makes them, where RabbitMQ's channel makes them: configure
//! to declare or delete, write to publish or to be a binding's destination, read to consume,
//! get, purge or be a binding's source; topic permissions on topic exchanges' routing keys.
//! The rules and texts are [`crate::auth`]'s; this file adds a small per-channel memory of
//! checks that passed (as RabbitMQ's channel keeps one), forgotten whenever any permission
//! changes, so a publisher pays for one regular expression per exchange, not per message.

use crate::auth::{Access, ResourceKind};
use crate::broker::exchange::ExchangeKind;
use warren_protocol::AmqpError;

use super::ChannelContext;

/// RabbitMQ keeps the last 12 checks that passed.
const REMEMBERED: usize = 12;

#[derive(Default)]
pub struct AccessMemory {
    /// `Auth::generation` when these were checked.
    generation: u64,
    passed: Vec<(ResourceKind, Access, Box<str>)>,
    /// Whether the user has topic permissions in this vhost (most have none).
    has_topic_rules: Option<bool>,
}

impl AccessMemory {
    fn refresh(&mut self, ctx: &ChannelContext) {
        let generation = ctx.broker.auth.generation();
        if generation != self.generation {
            self.generation = generation;
            self.passed.clear();
            self.has_topic_rules = None;
        }
    }

    /// `access` on a queue or exchange, or 403 with RabbitMQ's text.
    pub fn check(
        &mut self,
        ctx: &ChannelContext,
        kind: ResourceKind,
        name: &str,
        access: Access,
    ) -> Result<(), AmqpError> {
        self.refresh(ctx);
        if self
            .passed
            .iter()
            .any(|(k, a, n)| *k == kind && *a == access && **n == *name)
        {
            return Ok(());
        }
        ctx.broker
            .auth
            .check_resource(&ctx.user.name, &ctx.vhost.name, kind, name, access)?;
        if self.passed.len() == REMEMBERED {
            self.passed.remove(0);
        }
        self.passed.push((kind, access, name.into()));
        Ok(())
    }

    pub fn queue(
        &mut self,
        ctx: &ChannelContext,
        name: &str,
        access: Access,
    ) -> Result<(), AmqpError> {
        self.check(ctx, ResourceKind::Queue, name, access)
    }

    pub fn exchange(
        &mut self,
        ctx: &ChannelContext,
        name: &str,
        access: Access,
    ) -> Result<(), AmqpError> {
        self.check(ctx, ResourceKind::Exchange, name, access)
    }

    /// `access` on `routing_key` if `exchange` exists and is a topic exchange.
    pub fn topic(
        &mut self,
        ctx: &ChannelContext,
        exchange: &str,
        routing_key: &str,
        access: Access,
    ) -> Result<(), AmqpError> {
        self.topic_unless(ctx, exchange, routing_key, access, false)
    }

    /// basic.publish: write on `routing_key` if `exchange` exists and is a topic exchange that
    /// is not internal. An internal one is the publish checks' to refuse: RabbitMQ refuses it
    /// ("cannot publish to internal exchange") before it looks at the routing key.
    pub fn topic_publish(
        &mut self,
        ctx: &ChannelContext,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), AmqpError> {
        self.topic_unless(ctx, exchange, routing_key, Access::Write, true)
    }

    fn topic_unless(
        &mut self,
        ctx: &ChannelContext,
        exchange: &str,
        routing_key: &str,
        access: Access,
        skip_internal: bool,
    ) -> Result<(), AmqpError> {
        self.refresh(ctx);
        let user = &ctx.user.name;
        let vhost = &*ctx.vhost.name;
        let has_rules = *self
            .has_topic_rules
            .get_or_insert_with(|| ctx.broker.auth.has_topic_permissions(user, vhost));
        if !has_rules {
            return Ok(());
        }
        let is_topic = ctx.vhost.exchange(exchange).is_some_and(|x| {
            x.kind() == ExchangeKind::Topic && !(skip_internal && x.options.internal)
        });
        if !is_topic {
            return Ok(());
        }
        ctx.broker
            .auth
            .check_topic(user, vhost, exchange, routing_key, access)
    }
}
