//! Permission checks as a channel makes them, where RabbitMQ's channel makes them: configure
//! to declare or delete, write to publish or to be a binding's destination, read to consume,
//! get, purge or be a binding's source; topic permissions on topic exchanges' routing keys.
//! The rules and texts are [`crate::auth`]'s; this file adds a small per-channel memory of
//! checks that passed (as RabbitMQ's channel keeps one), forgotten whenever any permission
//! changes, so a publisher pays for one regular expression per exchange, not per message.

use crate::auth::{Access, ResourceKind};
use crate::broker::exchange::{Exchange, ExchangeKind};
use warren_protocol::AmqpError;

use super::ChannelContext;

/// RabbitMQ keeps the last 12 checks that passed.
const REMEMBERED: usize = 12;

#[derive(Default)]
pub struct AccessMemory {
    /// `Auth::generation` when these were checked.
    generation: u64,
    passed: Vec<(ResourceKind, Access, Box<str>)>,
    /// Per access (configure, write, read): the user's expression matches every name, so the
    /// check is a flag test (a publisher with `.*` pays nothing per message).
    unrestricted: Option<[bool; 3]>,
    /// Whether the user has topic permissions in this vhost (most have none).
    has_topic_rules: Option<bool>,
}

impl AccessMemory {
    fn refresh(&mut self, ctx: &ChannelContext) {
        let generation = ctx.broker.auth.generation();
        if generation != self.generation {
            self.generation = generation;
            self.passed.clear();
            self.unrestricted = None;
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
        let unrestricted = *self.unrestricted.get_or_insert_with(|| {
            ctx.broker
                .auth
                .permissions(&ctx.user.name, &ctx.vhost.name)
                .map_or([false; 3], |p| p.unrestricted())
        });
        let index = match access {
            Access::Configure => 0,
            Access::Write => 1,
            Access::Read => 2,
        };
        if unrestricted[index] {
            return Ok(());
        }
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
        self.topic_unless(ctx, exchange, routing_key, access, |_| false)
    }

    /// basic.publish's topic write check. RabbitMQ refuses a publish to an internal exchange
    /// before it looks at topic permissions, so an internal one is left to the broker's
    /// publish checks, which refuse every publish to it with that text.
    pub fn publish_topic(
        &mut self,
        ctx: &ChannelContext,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), AmqpError> {
        self.topic_unless(ctx, exchange, routing_key, Access::Write, |x| {
            x.options.internal
        })
    }

    fn topic_unless(
        &mut self,
        ctx: &ChannelContext,
        exchange: &str,
        routing_key: &str,
        access: Access,
        skip: impl Fn(&Exchange) -> bool,
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
        let is_topic = ctx
            .vhost
            .exchange(exchange)
            .is_some_and(|x| x.kind() == ExchangeKind::Topic && !skip(&x));
        if !is_topic {
            return Ok(());
        }
        ctx.broker
            .auth
            .check_topic(user, vhost, exchange, routing_key, access)
    }
}

impl AccessMemory {
    /// exchange.declare: configure on the exchange; a new one with an alternate exchange also
    /// needs read on itself and write on the alternate (RabbitMQ's checks).
    pub fn may_declare_exchange(
        &mut self,
        ctx: &ChannelContext,
        name: &str,
        arguments: &amq_protocol::types::FieldTable,
    ) -> Result<(), AmqpError> {
        self.exchange(ctx, name, Access::Configure)?;
        if ctx.vhost.exchange(name).is_none()
            && let Some(alternate) = text_argument(arguments, "alternate-exchange")
        {
            self.exchange(ctx, name, Access::Read)?;
            self.exchange(ctx, &alternate, Access::Write)?;
        }
        Ok(())
    }

    /// queue.declare: configure on the queue (a reserved `amq.*` name is refused by the vhost
    /// first); a new one with a dead-letter exchange also needs read on itself and write on
    /// the dead-letter exchange, checked after the vhost's queue limit (RabbitMQ's order).
    pub fn may_declare_queue(
        &mut self,
        ctx: &ChannelContext,
        name: &str,
        server_named: bool,
        arguments: &amq_protocol::types::FieldTable,
    ) -> Result<(), AmqpError> {
        if name.starts_with("amq.") && !server_named {
            return Ok(());
        }
        self.queue(ctx, name, Access::Configure)?;
        if ctx.vhost.queue(name).is_none()
            && let Some(dlx) = text_argument(arguments, "x-dead-letter-exchange")
        {
            ctx.vhost.check_queue_limit(name)?;
            self.queue(ctx, name, Access::Read)?;
            self.exchange(ctx, &dlx, Access::Write)?;
        }
        Ok(())
    }

    /// bind / unbind: write on the destination, read on the source, and topic read on the
    /// routing key of a topic source. A default-exchange end is refused by the vhost, after
    /// the destination's check, as RabbitMQ orders them.
    pub fn may_bind(
        &mut self,
        ctx: &ChannelContext,
        source: &str,
        to: BindTo,
        destination: &str,
        routing_key: &str,
    ) -> Result<(), AmqpError> {
        match to {
            BindTo::Queue => self.queue(ctx, destination, Access::Write)?,
            BindTo::Exchange => self.exchange(ctx, destination, Access::Write)?,
        }
        let destination_is_default = to == BindTo::Exchange && destination.is_empty();
        if source.is_empty() || destination_is_default {
            return Ok(());
        }
        self.exchange(ctx, source, Access::Read)?;
        self.topic(ctx, source, routing_key, Access::Read)
    }
}

/// What a binding's destination is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BindTo {
    Queue,
    Exchange,
}

/// A string argument (long or short string), e.g. `alternate-exchange`.
fn text_argument(arguments: &amq_protocol::types::FieldTable, key: &str) -> Option<String> {
    use amq_protocol::types::AMQPValue;
    match arguments.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_string()),
        _ => None,
    }
}
