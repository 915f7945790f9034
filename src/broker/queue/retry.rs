//! Retry with back-off (`x-retry-delays`, or the `retry-delays` policy key; a warren extension):
//! on a classic queue with a list of delays in ms, a basic.reject or basic.nack with `requeue` does not put the message back
//! at once. It waits out the next delay of the list out of sight (in the queue's schedule,
//! delayed/schedule.rs, kept in the store like a delayed exchange's), then comes back at the
//! back of the queue with `x-delivery-count` counting its attempts; after the last delay it is
//! dead-lettered as `rejected` (or dropped without a dead-letter exchange).
//!
//! A queue without the argument requeues as RabbitMQ does. Messages that come back because
//! their channel closed, or through basic.recover, are requeued at once either way: only a
//! consumer's explicit "not now" counts as a failed attempt.
//!
//! This file owns the argument's reading and the retry path; the schedule does the waiting.

use std::sync::Arc;

use amq_protocol::types::AMQPValue;
use warren_protocol::Properties;
use warren_protocol::field_table;

use super::queue::Queue;
use crate::broker::consumer::Consumer;
use crate::broker::delayed::{Schedule, ScheduleSpec, Target, header_value, with_int_header};
use crate::broker::field_display::{as_i64, type_name};
use crate::broker::message::{Message, QueuedMessage};
use crate::broker::publish::enqueue;

/// Most delays a list may hold (the `retry-delays` policy key has the same rule).
pub const MAX_DELAYS: usize = 100;
/// Longest delay: ten years, as RabbitMQ's longest TTL.
pub const MAX_DELAY_MS: i64 = 365 * 24 * 3600 * 1000 * 10;

/// Reads `x-retry-delays`: an array of 1 to 100 integers from 0 to ten years (ms). The error is
/// the reason in RabbitMQ's style (`{unacceptable_type,longstr}`, `{invalid_delay,-5}`).
pub fn parse_delays(v: &AMQPValue) -> Result<Vec<u64>, String> {
    let AMQPValue::FieldArray(items) = v else {
        return Err(format!("{{unacceptable_type,{}}}", type_name(v)));
    };
    let items = items.as_slice();
    if items.is_empty() || items.len() > MAX_DELAYS {
        return Err(format!("{{invalid_length,{}}}", items.len()));
    }
    items
        .iter()
        .map(|item| match as_i64(item) {
            Some(ms) if (0..=MAX_DELAY_MS).contains(&ms) => Ok(ms as u64),
            Some(ms) => Err(format!("{{invalid_delay,{ms}}}")),
            None => Err(format!("{{unacceptable_type,{}}}", type_name(item))),
        })
        .collect()
}

/// How many attempts a message had: its `x-delivery-count` header (0 without one).
fn attempts(properties: &Properties) -> u64 {
    header_value(properties, "x-delivery-count")
        .and_then(field_table::integer)
        .and_then(|n| u64::try_from(n).ok())
        .unwrap_or(0)
}

impl Queue {
    /// basic.reject / basic.nack with requeue: with `x-retry-delays`, each message waits its
    /// next delay before it comes back, or is rejected once the delays are used up; without,
    /// [`Queue::requeue`].
    pub fn retry(self: &Arc<Self>, consumer: Option<&Arc<Consumer>>, messages: Vec<QueuedMessage>) {
        let Some(delays) = self.state.lock().settings.retry_delays.clone() else {
            return self.requeue(consumer, messages);
        };
        let Some(schedule) = self.retry_schedule() else {
            return self.requeue(consumer, messages);
        };
        let (mut waiting, mut exhausted) = (Vec::new(), Vec::new());
        for m in messages {
            let attempt = attempts(&m.message.properties);
            let next = usize::try_from(attempt).ok().and_then(|i| delays.get(i));
            match (next, next_attempt(&m.message, attempt + 1)) {
                (Some(&delay), Some(message)) => {
                    // Into the schedule before it leaves the queue's index: a crash in
                    // between delivers it twice, never loses it.
                    schedule.add(message, delay);
                    waiting.push(m);
                }
                _ => exhausted.push(m),
            }
        }
        if !waiting.is_empty() {
            self.settle_retried(consumer, &waiting);
        }
        if !exhausted.is_empty() {
            self.reject(consumer, &exhausted);
        }
    }

    /// A message's retry delay is over: back at the back of the queue (stored again if the
    /// queue keeps it).
    pub fn retry_due(self: &Arc<Self>, message: &Message) {
        let store = self.vhost_ref.upgrade().and_then(|v| v.store().cloned());
        let _ = enqueue(
            store.as_ref(),
            message.exchange.clone(),
            message.routing_key.clone(),
            message.properties.clone(),
            message.body.clone(),
            &mut vec![self.clone()],
        );
    }

    /// The schedule of this queue's retries, made on first use (or at start-up, when the
    /// store holds some: see [`Queue::restore_retries`]).
    fn retry_schedule(self: &Arc<Self>) -> Option<Arc<Schedule>> {
        if let Some(schedule) = self.retries.get() {
            return Some(schedule.clone());
        }
        let vhost = self.vhost_ref.upgrade()?;
        let store = vhost.store().map(|store| {
            let id = match &self.persistence {
                // A durable queue's retries live under its own id (in their own database).
                Some(p) => p.queue_id,
                None => store.next_queue_id(),
            };
            (store.clone(), id)
        });
        let spec = ScheduleSpec {
            store,
            durable: self.persistence.is_some(),
            restored: 0,
        };
        Some(
            self.retries
                .get_or_init(|| vhost.schedule_for(Target::Queue(Arc::downgrade(self)), spec))
                .clone(),
        )
    }

    /// At start-up: the store holds `count` messages of this (durable) queue waiting for a
    /// retry.
    pub fn restore_retries(self: &Arc<Self>, count: u64) {
        let (Some(vhost), Some(p)) = (self.vhost_ref.upgrade(), &self.persistence) else {
            return;
        };
        let spec = ScheduleSpec {
            store: Some((p.store.clone(), p.queue_id)),
            durable: true,
            restored: count,
        };
        let target = Target::Queue(Arc::downgrade(self));
        let _ = self.retries.set(vhost.schedule_for(target, spec));
    }

    /// Drops the messages waiting for a retry (purge) or everything (delete).
    pub(super) fn drop_retries(&self, deleted: bool) {
        match (self.retries.get(), deleted) {
            (Some(schedule), true) => schedule.delete(),
            (Some(schedule), false) => schedule.clear(),
            (None, _) => {}
        }
    }
}

/// The message as its next attempt carries it: `x-delivery-count` = `attempt`.
fn next_attempt(message: &Message, attempt: u64) -> Option<Arc<Message>> {
    let properties = with_int_header(
        &message.properties,
        b"x-delivery-count",
        attempt.try_into().ok()?,
    )?;
    Some(Arc::new(Message {
        exchange: message.exchange.clone(),
        routing_key: message.routing_key.clone(),
        properties,
        body: message.body.clone(),
        store_id: None,
    }))
}

#[cfg(test)]
mod tests {
    use amq_protocol::protocol::BasicProperties;
    use amq_protocol::types::FieldArray;

    use super::*;

    #[test]
    fn delays_are_a_list_of_non_negative_integers() {
        let list = |items: Vec<AMQPValue>| AMQPValue::FieldArray(FieldArray::from(items));
        assert_eq!(
            parse_delays(&list(vec![
                AMQPValue::LongInt(1000),
                AMQPValue::LongLongInt(0)
            ])),
            Ok(vec![1000, 0])
        );
        assert_eq!(
            parse_delays(&list(vec![])),
            Err("{invalid_length,0}".into())
        );
        assert_eq!(
            parse_delays(&list(vec![AMQPValue::LongInt(-5)])),
            Err("{invalid_delay,-5}".into())
        );
        assert!(parse_delays(&AMQPValue::LongInt(5)).is_err());
        assert!(parse_delays(&list(vec![AMQPValue::LongString("1s".into())])).is_err());
    }

    #[test]
    fn attempts_are_counted_in_x_delivery_count() {
        let plain = Properties::from_basic(&BasicProperties::default());
        assert_eq!(attempts(&plain), 0);
        let message = Message {
            exchange: Arc::from("x"),
            routing_key: warren_protocol::ShortStr::from_static("k").unwrap(),
            properties: plain,
            body: bytes::Bytes::from_static(b"b"),
            store_id: Some(3),
        };
        let once = next_attempt(&message, 1).unwrap();
        assert_eq!(attempts(&once.properties), 1);
        assert_eq!(once.store_id, None);
        let twice = next_attempt(&once, 2).unwrap();
        assert_eq!(attempts(&twice.properties), 2);
        let headers = twice.properties.headers().unwrap_or_default();
        assert_eq!(headers.inner().len(), 1, "one x-delivery-count, replaced");
    }
}
