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

use warren_protocol::Properties;
use warren_protocol::field_table::{self, Entry, Writer};
use warren_protocol::properties::Property;

use super::Reason;
use crate::broker::message::Message;

/// The copy that leaves a queue, and what its routing needs.
pub(super) struct DeadLetterCopy {
    pub properties: Properties,
    /// The `CC` and `BCC` keys to route by as well (none when the routing key is replaced).
    pub sender_selected: Vec<String>,
    /// The queues of the history, newest first: (where in `visit_names`, a client rejected it).
    visits: Vec<(std::ops::Range<usize>, bool)>,
    visit_names: Vec<u8>,
}

impl DeadLetterCopy {
    /// Coming back to `queue` is a cycle to break unless a client rejected the message since
    /// its last visit there: every entry from the newest up to and including that queue's
    /// (RabbitMQ's `is_cycle`).
    pub fn is_cycle(&self, queue: &str) -> bool {
        let name = |range: &std::ops::Range<usize>| &self.visit_names[range.clone()];
        match self
            .visits
            .iter()
            .position(|(r, _)| name(r) == queue.as_bytes())
        {
            None => false,
            Some(last_visit) => self.visits[..=last_visit]
                .iter()
                .all(|(_, rejected)| !rejected),
        }
    }

    fn visited(&mut self, queue: &[u8], reason: &[u8]) {
        let start = self.visit_names.len();
        self.visit_names.extend_from_slice(queue);
        let range = start..self.visit_names.len();
        self.visits.push((range, reason == b"rejected"));
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
/// `None` if its headers do not read as a table (they were checked on the way in, so never).
pub(super) fn dead_letter_copy(
    message: &Message,
    queue: &str,
    reason: Reason,
    routing_key_replaced: bool,
    now: u64,
) -> Option<DeadLetterCopy> {
    let headers = match message.properties.headers_raw() {
        Some(table) => field_table::entries(table)?,
        None => Vec::new(),
    };
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

    let mut copy = DeadLetterCopy {
        properties: Properties::default(),
        sender_selected: Vec::new(),
        visits: Vec::with_capacity(deaths.len() + 1),
        visit_names: Vec::new(),
    };
    let mut w = Writer::new();
    let table = w.begin_table();
    for entry in &headers {
        let dropped = entry.key == b"x-death" || (routing_key_replaced && entry.key == b"CC");
        if !dropped {
            w.key(entry.key).raw(entry.value);
        }
    }
    if field_table::get(&headers, "x-first-death-reason").is_none() {
        w.key(b"x-first-death-reason").long_str(reason_text);
        w.key(b"x-first-death-queue").long_str(queue.as_bytes());
        w.key(b"x-first-death-exchange")
            .long_str(message.exchange.as_bytes());
    }
    w.key(b"x-death");
    let history = w.begin_value(b'A');
    match same {
        Some(i) => {
            let death = &deaths[i];
            let count = field_table::get(&death.fields, "count").and_then(field_table::integer);
            let entry = w.begin_value(b'F');
            w.key(b"count")
                .long_long(count.unwrap_or(0).saturating_add(1));
            for field in death.fields.iter().filter(|f| f.key != b"count") {
                w.key(field.key).raw(field.value);
            }
            w.end(entry).then_some(())?;
        }
        None => write_new_death(&mut w, message, queue, reason, &headers, now)?,
    }
    copy.visited(queue.as_bytes(), reason_text);
    for (i, death) in deaths.iter().enumerate() {
        if Some(i) == same {
            continue;
        }
        let entry = w.begin_value(b'F');
        for field in &death.fields {
            w.key(field.key).raw(field.value);
        }
        w.end(entry).then_some(())?;
        if !death.queue.is_empty() {
            copy.visited(death.queue, death.reason);
        }
    }
    (w.end(history) && w.end(table)).then_some(())?;

    if !routing_key_replaced {
        copy.sender_selected = sender_selected_keys(&headers);
    }
    copy.properties = message
        .properties
        .with_headers(&w.out, &[Property::Expiration])?;
    Some(copy)
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
    w.end(keys).then_some(())?;
    if let Some(expiration) = message.properties.expiration() {
        w.key(b"original-expiration")
            .long_str(expiration.as_bytes());
    }
    w.end(entry).then_some(())
}

/// The string elements of the `CC` and `BCC` arrays; none if either header is not an array
/// (as a publish would have been refused for), as sender_selected.rs reads them.
fn sender_selected_keys(headers: &[Entry]) -> Vec<String> {
    let mut keys = Vec::new();
    for name in ["CC", "BCC"] {
        let Some(value) = field_table::get(headers, name) else {
            continue;
        };
        let Some(elements) = field_table::array_elements(value) else {
            return Vec::new();
        };
        keys.extend(
            elements
                .into_iter()
                .filter_map(field_table::long_str)
                .map(|s| String::from_utf8_lossy(s).into_owned()),
        );
    }
    keys
}

#[cfg(test)]
mod tests {
    use amq_protocol::protocol::BasicProperties;
    use amq_protocol::types::{AMQPValue, FieldArray, FieldTable};

    use super::*;
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
        match headers.inner().get("x-death") {
            Some(AMQPValue::FieldArray(a)) => a
                .as_slice()
                .iter()
                .map(|v| match v {
                    AMQPValue::FieldTable(t) => t.clone(),
                    other => panic!("not a table: {other:?}"),
                })
                .collect(),
            other => panic!("no x-death: {other:?}"),
        }
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
