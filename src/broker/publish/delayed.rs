//! Publishing through a delayed-message exchange (`x-delayed-message`): a message with an
//! `x-delay` above zero goes to the exchange's schedule instead of its queues, and comes back
//! through [`VHost::route_due`] when it is due — routed then, against the bindings that exist
//! then, by the same [`VHost::route_publish`] as any other publish.
//!
//! `mandatory` cannot be honoured at the due time (the publisher may be gone, and AMQP has no
//! late basic.return). The plugin returns every mandatory delayed message at once, though it
//! still delivers it later; warren returns one at publish time only when no binding matches it
//! then, and does not schedule it. One that matched then but finds no queue at its due time is
//! dropped, as any unroutable message without `mandatory`.

use std::sync::Arc;

use bytes::Bytes;
use warren_protocol::{Properties, ShortStr};

use super::{CheckedPublish, CommitTicket, PublishOutcome, Publisher, Returned};
use crate::broker::delayed::{Schedule, x_delay};
use crate::broker::exchange::Exchange;
use crate::broker::message::{LazyHeaders, Message};
use crate::broker::sender_selected::{SenderSelected, header_entries, sender_selected};
use crate::broker::vhost::VHost;

impl VHost {
    /// What a delayed exchange's schedule wants of a message: its delay, when it must be
    /// scheduled rather than routed now (not if it is a due one coming back).
    pub(super) fn delay_of(checked: &CheckedPublish) -> Option<(Arc<Schedule>, u64)> {
        let schedule = checked.exchange.schedule()?;
        if checked.due {
            return None;
        }
        Some((schedule.clone(), x_delay(&checked.properties)?))
    }

    /// Hands `checked` to `schedule` for `delay` ms (or returns it, when it is mandatory and
    /// nothing would route it now).
    pub(super) fn schedule_delayed(
        &self,
        checked: CheckedPublish,
        schedule: Arc<Schedule>,
        delay: u64,
        publisher: &mut Publisher,
    ) -> PublishOutcome {
        let CheckedPublish {
            exchange,
            exchange_name,
            routing_key,
            mandatory,
            properties,
            body,
            selected,
            due: _,
            half: _,
        } = checked;
        if mandatory
            && !self.matches_now(&exchange, &routing_key, &properties, &selected, publisher)
        {
            exchange.counts.count_publish(0);
            return PublishOutcome {
                returned: Some(Returned {
                    exchange: exchange_name,
                    routing_key,
                    properties,
                    body,
                }),
                ..PublishOutcome::default()
            };
        }
        let message = Arc::new(Message {
            exchange: exchange.name.clone(),
            routing_key,
            properties,
            body,
            store_id: None,
        });
        let logged = schedule.add(message, delay).logged;
        exchange.counts.count_publish(0);
        PublishOutcome {
            routed: 1,
            durable: self
                .store()
                .filter(|_| logged)
                .map(|store| CommitTicket::store(store.clone())),
            ..PublishOutcome::default()
        }
    }

    /// Whether some queue would take the message if it were routed now.
    fn matches_now(
        &self,
        exchange: &Arc<Exchange>,
        routing_key: &ShortStr,
        properties: &Properties,
        selected: &Option<SenderSelected>,
        publisher: &mut Publisher,
    ) -> bool {
        let mut keys: Vec<&str> = vec![routing_key.as_str()];
        if let Some(selected) = selected {
            keys.extend(selected.keys.iter().map(String::as_str));
        }
        let mut headers = LazyHeaders::new(properties);
        let Publisher {
            queues, scratch, ..
        } = publisher;
        self.route_keys(exchange, &keys, &mut headers, queues, scratch);
        let matched = !queues.is_empty();
        queues.clear();
        matched
    }

    /// A delayed message is due: routes it now through the exchange named so (its delayed
    /// exchange, or after that was deleted, one re-declared under its name; with none it goes
    /// nowhere, as with the plugin). Its headers go as they
    /// came, `x-delay` included: the plugin on RabbitMQ 3.10 means to negate `x-delay` but
    /// sends a client's own property bytes unchanged (observed through lapin and pika), and the
    /// `due` mark keeps this exchange from delaying it again.
    pub fn route_due(&self, exchange: &str, message: &Message, publisher: &mut Publisher) {
        if let Some(checked) = self.checked_again(message, message.properties.clone(), exchange) {
            // Nobody waits for this one: no return (not mandatory), no confirm.
            let _ = self.route_publish(checked, publisher);
        }
    }

    /// A message that comes back from a schedule (delayed, or a half message committed or
    /// checked), ready to be routed through `exchange` with `properties`: not mandatory,
    /// counted as published already, its CC / BCC headers read again. `None` if the exchange
    /// is gone.
    pub(crate) fn checked_again(
        &self,
        message: &Message,
        properties: Properties,
        exchange: &str,
    ) -> Option<CheckedPublish> {
        let exchange = self.exchange(exchange)?;
        let selected = if properties.has_header_key(&["CC", "BCC"]) {
            sender_selected(&header_entries(&properties)).ok().flatten()
        } else {
            None
        };
        Some(CheckedPublish {
            exchange_name: ShortStr::from_bytes(Bytes::copy_from_slice(exchange.name.as_bytes()))?,
            exchange,
            routing_key: message.routing_key.clone(),
            mandatory: false,
            properties,
            body: message.body.clone(),
            selected,
            due: true,
            half: None,
        })
    }
}
