//! basic.publish on a channel: assembling the message (method, header, body frames), handing it
//! to the broker ([`VHost::publish`](crate::broker::vhost::VHost)), and answering the outcome
//! in AMQP: basic.return for a returned message, and in confirm mode an ack once the message
//! is safe (at once, or after the store's commit) or a nack when a queue refused it.
//! Transactions keep the checked message for tx.commit (tx.rs).

use warren_protocol::content::Content;
use warren_protocol::method::BASIC_PUBLISH;
use warren_protocol::reply::NO_ROUTE;
use warren_protocol::{AmqpError, Publish, encode};

use super::{Channel, ChannelContext};
use crate::auth::Access;
use crate::broker::publish::{
    CheckedPublish, CommitTicket, PublishOutcome, PublishRequest, Returned,
};

impl Channel {
    /// basic.publish arrived: its header and body come next.
    pub(super) fn start_publish(&mut self, publish: Publish) -> Result<(), AmqpError> {
        if publish.immediate {
            return Err(AmqpError::not_implemented("immediate=true").on_method(BASIC_PUBLISH));
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
        self.shared.count_received();
        if let Some(tx) = &mut self.tx {
            tx.publishes.push(checked);
            return Ok(());
        }
        let confirm_seq = self.confirm_mode.then(|| self.shared.register_confirm());
        let outcome = ctx.vhost.route_publish(checked, &mut self.publisher);
        self.shared.count_routed(&outcome);
        self.return_if_unroutable(&outcome, ctx);
        if let Some(seq) = confirm_seq {
            match outcome {
                // A full queue with x-overflow reject-publish refused it.
                PublishOutcome { rejected: true, .. } => self.shared.settle_confirm(seq, false),
                // Confirmed once the store has committed it (and everything before it).
                PublishOutcome {
                    durable: Some(ticket),
                    ..
                } => ticket.when_committed(self.shared.clone(), seq),
                _ => self.shared.settle_confirm(seq, true),
            }
        }
        Ok(())
    }

    /// The broker's checks, made when the message arrives (in a transaction too).
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
        let exchange = method.exchange.as_str();
        self.access
            .exchange(ctx, exchange, Access::Write)
            .and_then(|()| {
                self.access
                    .publish_topic(ctx, exchange, &method.routing_key)
            })
            .map_err(|e| e.on_method(BASIC_PUBLISH))?;
        let request = PublishRequest {
            exchange: method.exchange,
            routing_key: method.routing_key,
            mandatory: method.mandatory,
            properties,
            body,
            user: ctx.user,
            reply_address: self.reply_address.as_deref(),
        };
        ctx.vhost
            .check_publish(request, &mut self.publisher)
            .map_err(|e| e.on_method(BASIC_PUBLISH))
    }

    /// tx.commit: routes the transaction's messages. The ticket, if any, is the last stored
    /// message's: the store commits in order, so its commit covers the others.
    pub(super) fn commit_publishes(
        &mut self,
        publishes: Vec<CheckedPublish>,
        ctx: &mut ChannelContext,
    ) -> Option<CommitTicket> {
        let mut last_ticket: Option<CommitTicket> = None;
        for checked in publishes {
            let outcome = ctx.vhost.route_publish(checked, &mut self.publisher);
            self.shared.count_routed(&outcome);
            self.return_if_unroutable(&outcome, ctx);
            if let Some(ticket) = outcome.durable {
                last_ticket = Some(match last_ticket {
                    Some(earlier) => earlier.and(ticket),
                    None => ticket,
                });
            }
        }
        last_ticket
    }

    /// basic.return (312 NO_ROUTE) with the message, for a mandatory message nothing took.
    fn return_if_unroutable(&self, outcome: &PublishOutcome, ctx: &ChannelContext) {
        let Some(Returned {
            exchange,
            routing_key,
            properties,
            body,
        }) = &outcome.returned
        else {
            return;
        };
        let id = self.id;
        let frame_max = ctx
            .connection
            .frame_max
            .load(std::sync::atomic::Ordering::Relaxed);
        ctx.connection.outbox.push(|out| {
            encode::basic_return(out, id, NO_ROUTE, "NO_ROUTE", exchange, routing_key);
            encode::content(out, id, properties.raw(), body, frame_max);
        });
    }
}
