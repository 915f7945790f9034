//! Publishes that hold, commit or roll back half messages (broker/half.rs says what they
//! mean): a hold is stored and confirmed but not routed; a commit routes the held message
//! through the same [`VHost::route_publish`] as any other publish, and its confirm waits for
//! that message's store write; a rollback drops it. A commit or rollback is not routed itself.

use std::sync::Arc;

use warren_protocol::{AmqpError, Properties};

use super::{CheckedPublish, CommitTicket, PublishOutcome, Publisher};
use crate::broker::half::{HalfRequest, half_request, plain};
use crate::broker::message::Message;
use crate::broker::vhost::VHost;

impl VHost {
    /// What `properties` ask of half messages (read once, when the message arrives), refusing
    /// a hold without a `message_id`, or with one already pending, as the other publish checks.
    pub(super) fn check_half(
        &self,
        properties: &Properties,
    ) -> Result<Option<HalfRequest>, AmqpError> {
        let request = half_request(properties);
        if request != Some(HalfRequest::Hold) {
            return Ok(request);
        }
        match properties.short_str(warren_protocol::properties::Property::MessageId) {
            None | Some("") => Err(AmqpError::precondition("a half message needs a message_id")),
            Some(id) if self.half_pending(id) => Err(AmqpError::precondition(format_args!(
                "half message '{id}' is pending already"
            ))),
            Some(_) => Ok(request),
        }
    }

    /// Holds, commits or rolls back as `request` says.
    pub(super) fn publish_half(
        &self,
        checked: CheckedPublish,
        request: HalfRequest,
        publisher: &mut Publisher,
    ) -> PublishOutcome {
        checked.exchange.counts.count_publish(0);
        let settled = PublishOutcome {
            routed: 1,
            ..PublishOutcome::default()
        };
        match request {
            HalfRequest::Hold => {
                let message = Arc::new(Message {
                    exchange: checked.exchange.name.clone(),
                    routing_key: checked.routing_key,
                    properties: checked.properties,
                    body: checked.body,
                    store_id: None,
                });
                let logged = self.hold_half(message);
                PublishOutcome {
                    durable: self
                        .store()
                        .filter(|_| logged)
                        .map(|store| CommitTicket::store(store.clone())),
                    ..settled
                }
            }
            HalfRequest::Commit(id) => self.settle_half(&id, true, publisher),
            HalfRequest::Rollback(id) => self.settle_half(&id, false, publisher),
        }
    }

    /// Routes (`commit`) or drops the half message `id`; nothing if none is pending.
    fn settle_half(&self, id: &str, commit: bool, publisher: &mut Publisher) -> PublishOutcome {
        let mut outcome = PublishOutcome {
            routed: 1,
            ..PublishOutcome::default()
        };
        let Some(schedule) = self.halves.get().cloned() else {
            return outcome;
        };
        let Some((key, message)) = schedule.take_message_id(id) else {
            tracing::debug!(vhost = %self.name, "half message '{id}': nothing pending to settle");
            return outcome;
        };
        if commit
            && let Some(routed) =
                self.checked_again(&message, plain(&message.properties), &message.exchange)
        {
            outcome.durable = self.route_publish(routed, publisher).durable;
        }
        // Out of the store after the routed copy was written: never lost.
        schedule.forget(key, &message);
        outcome
    }
}
