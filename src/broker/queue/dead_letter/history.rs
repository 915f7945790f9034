//! A dead letter's copy of a message: its properties with the `x-death` history brought up to
//! date, `x-first-death-*` set once, `expiration` gone and, when the queue names its own
//! dead-letter routing key, the `CC` header gone too — rewritten as bytes (entries this
//! death does not change are copied as they are, not decoded and encoded again), plus what
//! routing the copy needs: its sender-selected keys and the queues it has visited.
//!
//! The history's rules, as RabbitMQ 3.10's `rabbit_dead_letter`: one table per (queue,
//! reason) — count, reason, queue, time, exchange, routing-keys, and original-expiration when
//! the message had one — newest first; a death that matches an entry increments its count and
//! moves it to the front. Routing is the cascade's (mod.rs), not this file's.

use std::ops::Range;

use warren_protocol::Properties;
use warren_protocol::field_table::{self, Entry, Writer};
use warren_protocol::properties::Property;

use super::Reason;
use crate::broker::message::Message;
use crate::broker::sender_selected::{header_entries, sender_selected};

/// The copy that leaves a queue, and what its routing needs.
pub(super) struct DeadLetterCopy {
    pub properties: Properties,
    /// The `CC` and `BCC` keys to route by as well (none when the routing key is replaced).
    pub sender_selected: Vec<String>,
    visits: Visits,
}

impl DeadLetterCopy {
    /// Coming back to `queue` is a cycle to break unless a client rejected the message since
    /// its last visit there: every entry from the newest up to and including that queue's
    /// (RabbitMQ's `is_cycle`).
    pub fn is_cycle(&self, queue: &str) -> bool {
        let visits = &self.visits;
        let name = |range: &Range<usize>| &visits.names[range.clone()];
        match visits
            .entries
            .iter()
            .position(|(r, _)| name(r) == queue.as_bytes())
        {
            None => false,
            Some(last_visit) => visits.entries[..=last_visit]
                .iter()
                .all(|(_, rejected)| !rejected),
        }
    }
}

/// The queues of a history, newest first, each with whether a client rejected the message
/// there; the names share one buffer.
#[derive(Default)]
struct Visits {
    names: Vec<u8>,
    entries: Vec<(Range<usize>, bool)>,
}

impl Visits {
    fn push(&mut self, queue: &[u8], reason: &[u8]) {
        let start = self.names.len();
        self.names.extend_from_slice(queue);
        self.entries
            .push((start..self.names.len(), reason == b"rejected"));
    }
}

/// One entry of the old history: its fields, queue and reason.
struct Death<'a> {
    fields: Vec<Entry<'a>>,
    queue: &'a [u8],
    reason: &'a [u8],
}

fn text<'a>(fields: &[Entry<'a>], key: &str) -> &'a [u8] {
    field_table::get(fields, key)
        .and_then(field_table::long_str)
        .unwrap_or_default()
}

/// The copy of `message` that leaves `queue` for `reason` at `now` (seconds since the epoch);
/// `None` if the rewritten properties do not parse (headers nested to the depth limit).
pub(super) fn dead_letter_copy(
    message: &Message,
    queue: &str,
    reason: Reason,
    routing_key_replaced: bool,
    now: u64,
) -> Option<DeadLetterCopy> {
    let headers = header_entries(&message.properties);
    let deaths: Vec<Death> = field_table::get(&headers, "x-death")
        .and_then(field_table::array_elements)
        .unwrap_or_default()
        .into_iter()
        .filter_map(field_table::nested_table)
        .filter_map(field_table::entries)
        .map(|fields| Death {
            queue: text(&fields, "queue"),
            reason: text(&fields, "reason"),
            fields,
        })
        .collect();
    let reason_text = reason.as_str().as_bytes();
    let same = deaths
        .iter()
        .position(|d| d.queue == queue.as_bytes() && d.reason == reason_text);

    let mut w = Writer::new();
    let table = w.begin_table();
    w.entries_where(&headers, |key| {
        key != b"x-death" && !(routing_key_replaced && key == b"CC")
    });
    if field_table::get(&headers, "x-first-death-reason").is_none() {
        w.key(b"x-first-death-reason").long_str(reason_text);
        w.key(b"x-first-death-queue").long_str(queue.as_bytes());
        w.key(b"x-first-death-exchange")
            .long_str(message.exchange.as_bytes());
    }
    w.key(b"x-death");
    let history = w.begin_value(b'A');
    match same {
        Some(i) => write_counted_again(&mut w, &deaths[i])?,
        None => write_new_death(&mut w, message, queue, reason, &headers, now)?,
    }
    let mut visits = Visits::default();
    visits.push(queue.as_bytes(), reason_text);
    for (_, death) in deaths.iter().enumerate().filter(|(i, _)| Some(*i) != same) {
        let entry = w.begin_value(b'F');
        w.entries_where(&death.fields, |_| true);
        w.end(entry)?;
        if !death.queue.is_empty() {
            visits.push(death.queue, death.reason);
        }
    }
    w.end(history)?;
    w.end(table)?;

    let sender_selected = match routing_key_replaced {
        true => Vec::new(),
        // A CC or BCC that is not an array would have refused the publish: none then.
        false => sender_selected(&headers)
            .ok()
            .flatten()
            .map_or_else(Vec::new, |s| s.keys),
    };
    Some(DeadLetterCopy {
        properties: message
            .properties
            .with_headers(&w.out, &[Property::Expiration])?,
        sender_selected,
        visits,
    })
}

/// A death in a queue for a reason it already had: its entry with the count one higher.
fn write_counted_again(w: &mut Writer, death: &Death) -> Option<()> {
    let count = field_table::get(&death.fields, "count").and_then(field_table::integer);
    let entry = w.begin_value(b'F');
    w.key(b"count")
        .long_long(count.unwrap_or(0).saturating_add(1));
    w.entries_where(&death.fields, |key| key != b"count");
    w.end(entry)
}

/// The first death in a queue for a reason: count, reason, queue, time, exchange, the routing
/// keys (its own, then its `CC` ones) and its expiration if it had one.
fn write_new_death(
    w: &mut Writer,
    message: &Message,
    queue: &str,
    reason: Reason,
    headers: &[Entry],
    now: u64,
) -> Option<()> {
    let entry = w.begin_value(b'F');
    w.key(b"count").long_long(1);
    w.key(b"reason").long_str(reason.as_str().as_bytes());
    w.key(b"queue").long_str(queue.as_bytes());
    w.key(b"time").timestamp(now);
    w.key(b"exchange").long_str(message.exchange.as_bytes());
    w.key(b"routing-keys");
    let keys = w.begin_value(b'A');
    w.long_str(message.routing_key.as_bytes());
    let cc = field_table::get(headers, "CC").and_then(field_table::array_elements);
    for element in cc.unwrap_or_default() {
        w.raw(element);
    }
    w.end(keys)?;
    if let Some(expiration) = message.properties.expiration() {
        w.key(b"original-expiration")
            .long_str(expiration.as_bytes());
    }
    w.end(entry)
}

#[cfg(test)]
mod tests {
    use amq_protocol::protocol::BasicProperties;
    use amq_protocol::types::{AMQPValue, FieldArray, FieldTable};

    use super::*;
    use crate::broker::queue::test_support::x_death;
    use warren_protocol::ShortStr;

    /// A message whose history another broker wrote: a 32-bit count, a field of its own and
    /// an element that is not a table.
    fn message_with_foreign_history() -> Message {
        let mut death = FieldTable::default();
        death.insert("queue".into(), AMQPValue::LongString("q1".into()));
        death.insert("reason".into(), AMQPValue::LongString("expired".into()));
        death.insert("count".into(), AMQPValue::LongInt(5));
        death.insert("extra".into(), AMQPValue::Boolean(true));
        let mut headers = FieldTable::default();
        headers.insert("app".into(), AMQPValue::LongString("v".into()));
        headers.insert(
            "x-death".into(),
            AMQPValue::FieldArray(FieldArray::from(vec![
                AMQPValue::FieldTable(death),
                AMQPValue::LongString("junk".into()),
            ])),
        );
        let basic = BasicProperties::default()
            .with_headers(headers)
            .with_expiration("500".into())
            .with_message_id("m1".into());
        Message {
            exchange: "ex".into(),
            routing_key: ShortStr::from_static("rk").expect("short"),
            properties: Properties::from_basic(&basic),
            body: bytes::Bytes::new(),
            store_id: None,
        }
    }

    fn deaths(copy: &DeadLetterCopy) -> Vec<FieldTable> {
        let basic = copy.properties.to_basic();
        let headers = basic.headers().clone().expect("headers");
        assert_eq!(
            headers.inner().get("app"),
            Some(&AMQPValue::LongString("v".into()))
        );
        assert_eq!(basic.expiration(), &None, "expiration removed");
        assert_eq!(basic.message_id(), &Some("m1".into()), "others copied");
        x_death(&headers)
    }

    #[test]
    fn a_matching_foreign_entry_counts_on_and_keeps_its_own_fields() {
        let message = message_with_foreign_history();
        let copy = dead_letter_copy(&message, "q1", Reason::Expired, false, 7).unwrap();
        let deaths = deaths(&copy);
        assert_eq!(deaths.len(), 1, "the element that is not a table is gone");
        let d = deaths[0].inner();
        assert_eq!(d.get("count"), Some(&AMQPValue::LongLongInt(6)));
        assert_eq!(d.get("extra"), Some(&AMQPValue::Boolean(true)));
        assert!(copy.is_cycle("q1"));
    }

    #[test]
    fn a_new_death_goes_first_and_a_rejection_breaks_the_cycle() {
        let message = message_with_foreign_history();
        let copy = dead_letter_copy(&message, "q2", Reason::Rejected, false, 7).unwrap();
        let deaths = deaths(&copy);
        assert_eq!(deaths.len(), 2);
        let new = deaths[0].inner();
        assert_eq!(new.get("queue"), Some(&AMQPValue::LongString("q2".into())));
        assert_eq!(new.get("count"), Some(&AMQPValue::LongLongInt(1)));
        assert_eq!(new.get("time"), Some(&AMQPValue::Timestamp(7)));
        assert_eq!(
            new.get("original-expiration"),
            Some(&AMQPValue::LongString("500".into()))
        );
        assert_eq!(deaths[1].inner().get("count"), Some(&AMQPValue::LongInt(5)));
        assert!(!copy.is_cycle("q1"), "rejected in q2 since q1");
        assert!(!copy.is_cycle("q2"), "a rejection is never a cycle");
        assert!(!copy.is_cycle("q3"));
    }
}
