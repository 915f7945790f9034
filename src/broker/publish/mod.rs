//! The one way a message enters a vhost. [`VHost::publish`] takes a [`PublishRequest`] from
//! whoever publishes (an AMQP channel, the management API, a delayed exchange's schedule
//! when a message is due) and does everything RabbitMQ does to it: the checks (internal exchange,
//! `user_id`, `expiration`, CC/BCC headers), direct reply-to, routing, BCC stripping, the store
//! write and the enqueue. The caller gets a [`PublishOutcome`] and only maps it to its own
//! protocol: a basic.return for [`PublishOutcome::returned`], a nack for
//! [`PublishOutcome::rejected`], and a confirm or tx.commit-ok once
//! [`PublishOutcome::durable`]'s commit is done.
//!
//! A transaction checks a message when it arrives ([`VHost::check_publish`]) and routes it at
//! commit ([`VHost::route_publish`]); everyone else calls [`VHost::publish`], which is both.
//!
//! This module does not know about frames, channels or sockets, and keeps no state of its own
//! beyond what a publisher passes in ([`Publisher`], its reusable routing memory).

mod checks;
mod commit_ticket;
mod delayed;
mod direct_reply;
mod enqueue;
mod half;
mod route_memo;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use warren_protocol::{AmqpError, Properties, ShortStr};

pub use commit_ticket::CommitTicket;
pub use direct_reply::{DirectReplies, REPLY_PREFIX, REPLY_PSEUDO_QUEUE};
pub use enqueue::{Enqueued, enqueue, stored_message};

use super::exchange::Exchange;
use super::half::HalfRequest;
use super::message::{LazyHeaders, Message};
use super::queue::Queue;
use super::sender_selected::{SenderSelected, header_entries, sender_selected, without_bcc};
use super::vhost::{RouteScratch, VHost};
pub use crate::store::CommitListener;
use route_memo::RouteMemo;

/// One message to publish, as its publisher sent it.
pub struct PublishRequest<'a> {
    /// The exchange as named by the publisher ("" is the default exchange).
    pub exchange: ShortStr,
    pub routing_key: ShortStr,
    /// Return the message if no queue takes it.
    pub mandatory: bool,
    pub properties: Properties,
    pub body: Bytes,
    /// The authenticated user, which a `user_id` property must name (unless it is an
    /// impersonator).
    pub user: &'a crate::auth::User,
    /// The publisher's direct reply-to address, if it consumes `amq.rabbitmq.reply-to`: a
    /// `reply_to` of `amq.rabbitmq.reply-to` is rewritten to it.
    pub reply_address: Option<&'a str>,
}

/// A request that passed every check: its exchange found, its properties as they will be
/// delivered (reply-to rewritten), its CC/BCC keys read. Routed by [`VHost::route_publish`].
pub struct CheckedPublish {
    exchange: Arc<Exchange>,
    exchange_name: ShortStr,
    routing_key: ShortStr,
    mandatory: bool,
    properties: Properties,
    body: Bytes,
    selected: Option<SenderSelected>,
    /// A delayed message whose time has come (delayed.rs): routed now, counted as published
    /// already.
    due: bool,
    /// What it asks of half messages (half.rs), read once when it arrived.
    half: Option<HalfRequest>,
}

/// What became of a published message.
#[derive(Default)]
#[must_use]
pub struct PublishOutcome {
    /// How many queues took it (a direct reply handed to its requester counts as one).
    pub routed: usize,
    /// Mandatory and unroutable: the message to hand back (basic.return 312 NO_ROUTE).
    pub returned: Option<Returned>,
    /// A full queue refused it (`x-overflow reject-publish`): a confirm must be a nack.
    pub rejected: bool,
    /// The message was written to the store: it is safe once this ticket's commit is done.
    pub durable: Option<CommitTicket>,
}

/// A mandatory message no queue took, as it goes back to its publisher.
pub struct Returned {
    pub exchange: ShortStr,
    pub routing_key: ShortStr,
    pub properties: Properties,
    pub body: Bytes,
}

/// A publisher's reusable routing memory: the memo of its last destination and the buffers the
/// routing walk fills, so that a steady stream of publishes allocates nothing for routing. One
/// per publisher (per channel); [`Default`] for a one-off publish.
#[derive(Default)]
pub struct Publisher {
    memo: RouteMemo,
    queues: Vec<Arc<Queue>>,
    scratch: RouteScratch,
}

impl VHost {
    /// Checks, routes and enqueues one message: [`Self::check_publish`] then
    /// [`Self::route_publish`]. An error is RabbitMQ's answer to the publish (the channel
    /// closes with it).
    pub fn publish(
        &self,
        request: PublishRequest,
        publisher: &mut Publisher,
    ) -> Result<PublishOutcome, AmqpError> {
        let checked = self.check_publish(request, publisher)?;
        Ok(self.route_publish(checked, publisher))
    }

    /// Everything RabbitMQ refuses a publish for, checked when the message arrives (in a
    /// transaction too: a publish to a missing exchange fails at once, not at commit).
    pub fn check_publish(
        &self,
        request: PublishRequest,
        publisher: &mut Publisher,
    ) -> Result<CheckedPublish, AmqpError> {
        let PublishRequest {
            exchange: exchange_name,
            routing_key,
            mandatory,
            properties,
            body,
            user,
            reply_address,
        } = request;
        let exchange = publisher
            .memo
            .exchange(self, exchange_name.as_str())
            .ok_or_else(|| self.no_exchange(exchange_name.as_str()))?;
        checks::not_internal(&exchange, &self.name)?;
        checks::user_id(&properties, user)?;
        checks::expiration(&properties)?;
        let properties = checks::rewrite_reply_to(properties, reply_address)?;
        // CC / BCC headers: extra routing keys chosen by the publisher (a cheap raw scan first;
        // the table is parsed only when one of them is there).
        let selected = if properties.has_header_key(&["CC", "BCC"]) {
            sender_selected(&header_entries(&properties))?
        } else {
            None
        };
        let half = self.check_half(&properties)?;
        Ok(CheckedPublish {
            exchange,
            exchange_name,
            routing_key,
            mandatory,
            properties,
            body,
            selected,
            due: false,
            half,
        })
    }

    /// Routes a checked message to its queues and enqueues it there (storing it first when it
    /// is persistent and reaches a durable queue), or hands it to a direct reply-to requester,
    /// or returns it when it is mandatory and nothing takes it.
    pub fn route_publish(
        &self,
        mut checked: CheckedPublish,
        publisher: &mut Publisher,
    ) -> PublishOutcome {
        if let Some((schedule, delay)) = Self::delay_of(&checked) {
            return self.schedule_delayed(checked, schedule, delay, publisher);
        }
        if let Some(request) = checked.half.take() {
            return self.publish_half(checked, request, publisher);
        }
        let CheckedPublish {
            exchange,
            exchange_name,
            routing_key,
            mandatory,
            mut properties,
            body,
            selected,
            due,
            half: _,
        } = checked;
        if exchange.name.is_empty() {
            // The reply message is built only for a reply-to routing key: this is every
            // default-exchange publish's path.
            let sent = self.replies.deliver(&routing_key, |target| {
                target.deliver_reply(&Message {
                    exchange: exchange.name.clone(),
                    routing_key: routing_key.clone(),
                    properties: properties.clone(),
                    body: body.clone(),
                    store_id: None,
                })
            });
            if sent == Some(true) {
                exchange.counts.count_publish(0);
                return PublishOutcome {
                    routed: 1,
                    ..PublishOutcome::default()
                };
            }
        }
        let Publisher {
            memo,
            queues,
            scratch,
        } = publisher;
        if let Some(selected) = &selected {
            let mut keys: Vec<&str> = Vec::with_capacity(1 + selected.keys.len());
            keys.push(&routing_key);
            keys.extend(selected.keys.iter().map(String::as_str));
            let mut headers = LazyHeaders::new(&properties);
            self.route_keys(&exchange, &keys, &mut headers, queues, scratch);
        } else if exchange.name.is_empty() {
            // The default exchange: every queue is implicitly bound by its own name.
            queues.extend(memo.default_exchange_queue(self, &routing_key));
        } else {
            let mut headers = LazyHeaders::new(&properties);
            self.route(&exchange, &routing_key, &mut headers, queues, scratch);
        }
        if selected.is_some_and(|s| s.has_bcc) {
            // Nobody sees who was blind-copied.
            properties = without_bcc(&properties);
        }
        match due {
            false => exchange.counts.count_publish(queues.len()),
            true => exchange.counts.count_routed(queues.len()),
        }
        if queues.is_empty() {
            return PublishOutcome {
                returned: mandatory.then_some(Returned {
                    exchange: exchange_name,
                    routing_key,
                    properties,
                    body,
                }),
                ..PublishOutcome::default()
            };
        }
        let routed = queues.len();
        let store = self.store();
        let enqueued = enqueue(
            store,
            exchange.name.clone(),
            routing_key,
            properties,
            body,
            queues,
        );
        PublishOutcome {
            routed,
            returned: None,
            rejected: !enqueued.accepted,
            durable: CommitTicket::of(
                store.filter(|_| enqueued.stored).cloned(),
                enqueued.replicated,
            ),
        }
    }
}
