//! `message_stats` as RabbitMQ 3.10's management API shows it: each counter with its rate
//! (`publish` and `publish_details: {"rate": R}`), live counts from the broker and rates from
//! the sampler (rates.rs). Which keys appear, as RabbitMQ shows them after traffic:
//!
//! - a channel (and the overview): the publishing counters (`publish`, `confirm`,
//!   `return_unroutable`, `drop_unroutable`) once it published, the delivering ones (`ack`,
//!   `deliver`, `deliver_get`, `deliver_no_ack`, `get`, `get_empty`, `get_no_ack`,
//!   `redeliver`) once a message left through it or a get found nothing; before both, no
//!   `message_stats` key at all (the overview: `{}`);
//! - a queue: `publish` once a message was enqueued, the delivering counters likewise;
//! - an exchange: `publish_in` once something was published to it, `publish_out` once it
//!   routed something to a queue.
//!
//! Connections have none (only their `recv_oct` / `send_oct` rates).

use serde_json::{Map, Value};

use super::json::with_rate;
use super::rates::RateSet;
use crate::broker::message_counts::MessageFigures;

/// A channel's publishing counters, by RabbitMQ's names.
pub const PUBLISHING: [&str; 4] = ["publish", "confirm", "return_unroutable", "drop_unroutable"];

/// The delivering counters of a channel or queue (`deliver_get` is the sum of four of them).
pub const DELIVERING: [&str; 8] = [
    "ack",
    "deliver",
    "deliver_get",
    "deliver_no_ack",
    "get",
    "get_empty",
    "get_no_ack",
    "redeliver",
];

/// A queue's lengths, shown with rates on queues and in the overview's `queue_totals`.
pub const QUEUE_LENGTHS: [&str; 3] = ["messages", "messages_ready", "messages_unacknowledged"];

/// A channel's `message_stats` (also the overview's); `None` before any traffic.
pub fn channel(figures: &MessageFigures, rates: &RateSet) -> Option<Value> {
    grouped(figures, rates, &PUBLISHING)
}

/// A queue's `message_stats`; `None` before any traffic.
pub fn queue(figures: &MessageFigures, rates: &RateSet) -> Option<Value> {
    grouped(figures, rates, &PUBLISHING[..1])
}

/// An exchange's `message_stats` from `(publish_in, publish_out)`; `None` before any publish.
pub fn exchange((publish_in, publish_out): (u64, u64), rates: &RateSet) -> Option<Value> {
    let mut out = Map::new();
    for (name, count) in [("publish_in", publish_in), ("publish_out", publish_out)] {
        if count > 0 {
            with_rate(&mut out, name, count, rates.rate(name));
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn grouped(figures: &MessageFigures, rates: &RateSet, publishing: &[&str]) -> Option<Value> {
    let mut out = Map::new();
    let mut group = |names: &[&str]| {
        for name in names {
            with_rate(&mut out, name, figures.get(name), rates.rate(name));
        }
    };
    if figures.published() {
        group(publishing);
    }
    if figures.delivered() {
        group(&DELIVERING);
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_shows_each_group_once_it_saw_traffic_of_that_kind() {
        let rates = RateSet::default();
        let mut figures = MessageFigures::default();
        assert_eq!(queue(&figures, &rates), None);
        figures.get_empty = 1;
        let shown = queue(&figures, &rates).unwrap();
        assert_eq!(shown["get_empty"], 1);
        assert_eq!(shown["deliver_get"], 0);
        assert_eq!(shown["ack_details"]["rate"], 0.0);
        assert!(shown.get("publish").is_none());
        figures.publish = 3;
        let shown = queue(&figures, &rates).unwrap();
        assert_eq!(shown["publish"], 3);
        assert!(shown.get("confirm").is_none(), "a channel's, not a queue's");
        assert_eq!(shown.as_object().unwrap().len(), 2 * 9);
    }

    #[test]
    fn an_exchange_shows_publish_out_only_once_it_routed_something() {
        let rates = RateSet::default();
        assert_eq!(exchange((0, 0), &rates), None);
        let unroutable = exchange((2, 0), &rates).unwrap();
        assert_eq!(unroutable["publish_in"], 2);
        assert!(unroutable.get("publish_out").is_none());
        assert_eq!(exchange((2, 6), &rates).unwrap()["publish_out"], 6);
    }
}
