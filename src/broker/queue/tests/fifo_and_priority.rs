//! Delivery order: FIFO for an ordinary queue, by basic.get and to consumers, with the counts a
//! client sees; and priority queues (`x-max-priority`): the highest priority first, FIFO within
//! a priority, priorities above the maximum counted as the maximum and none as 0.

use amq_protocol::protocol::BasicProperties;

use crate::broker::queue::test_support::*;

#[test]
fn basic_get_returns_messages_in_publish_order() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    for i in 0..5 {
        send(&vhost, "q", &format!("m{i}"));
    }
    assert_eq!(drain(&q), ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(q.message_count(), 0);
    assert!(q.get(true).is_none(), "an empty queue answers get-empty");
}

#[test]
fn basic_get_reports_the_messages_left_behind_the_one_taken() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    for body in ["a", "b", "c"] {
        send(&vhost, "q", body);
    }
    let (m, left) = q.get(false).expect("a message");
    assert_eq!((body(&m).as_str(), left), ("a", 2));
    assert!(!m.redelivered);
    let (m, left) = q.get(true).expect("a message");
    assert_eq!((body(&m).as_str(), left), ("b", 1));
    // The unacked "a" is not counted as ready.
    assert_eq!(q.counts(), (1, 0));
}

#[test]
fn a_consumer_receives_messages_in_publish_order() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    send(&vhost, "q", "before-1");
    send(&vhost, "q", "before-2");
    let c = consume(&q, "c").attach();
    send(&vhost, "q", "after-1");
    send(&vhost, "q", "after-2");
    assert_eq!(
        c.take_bodies(),
        ["before-1", "before-2", "after-1", "after-2"]
    );
    assert_eq!(q.counts(), (0, 1));
}

#[test]
fn a_delivered_message_keeps_its_exchange_routing_key_and_properties() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let c = consume(&q, "c").attach();
    send_with(
        &vhost,
        "q",
        "m",
        BasicProperties::default()
            .with_message_id("id-1".into())
            .with_content_type("text/plain".into()),
    );
    let got = c.take();
    assert_eq!(got.len(), 1);
    let m = &got[0].message;
    assert_eq!((&*m.exchange, m.routing_key.as_str()), ("", "q"));
    let props = m.properties.to_basic();
    assert_eq!(
        props.message_id().as_ref().map(|s| s.as_str()),
        Some("id-1")
    );
    assert_eq!(
        props.content_type().as_ref().map(|s| s.as_str()),
        Some("text/plain")
    );
    assert!(!got[0].redelivered);
}

#[test]
fn higher_priority_messages_are_taken_first_by_basic_get() {
    let vhost = vhost();
    let q = declare(&vhost, "pq", &[("x-max-priority", int(10))]);
    for (b, p) in [("p1", 1), ("p5", 5), ("p3", 3), ("p10", 10)] {
        send_with(&vhost, "pq", b, priority(p));
    }
    assert_eq!(drain(&q), ["p10", "p5", "p3", "p1"]);
}

#[test]
fn higher_priority_messages_are_delivered_first_to_a_consumer() {
    let vhost = vhost();
    let q = declare(&vhost, "pq", &[("x-max-priority", int(10))]);
    for (b, p) in [("p2", 2), ("p9", 9), ("p0", 0), ("p4", 4)] {
        send_with(&vhost, "pq", b, priority(p));
    }
    let c = consume(&q, "c").no_ack().attach();
    assert_eq!(c.take_bodies(), ["p9", "p4", "p2", "p0"]);
}

#[test]
fn messages_of_equal_priority_stay_fifo() {
    let vhost = vhost();
    let q = declare(&vhost, "pq", &[("x-max-priority", int(5))]);
    for (b, p) in [
        ("a1", 1),
        ("b3", 3),
        ("a2", 1),
        ("b4", 3),
        ("a3", 1),
        ("b5", 3),
    ] {
        send_with(&vhost, "pq", b, priority(p));
    }
    assert_eq!(drain(&q), ["b3", "b4", "b5", "a1", "a2", "a3"]);
}

#[test]
fn a_priority_above_the_maximum_counts_as_the_maximum() {
    let vhost = vhost();
    let q = declare(&vhost, "pq", &[("x-max-priority", int(5))]);
    for (b, p) in [("four", 4), ("nine", 9), ("five", 5), ("seven", 7)] {
        send_with(&vhost, "pq", b, priority(p));
    }
    // 9 and 7 are capped to 5: equal to "five", so in publish order, all ahead of 4.
    assert_eq!(drain(&q), ["nine", "five", "seven", "four"]);
}

#[test]
fn a_message_without_priority_counts_as_zero() {
    let vhost = vhost();
    let q = declare(&vhost, "pq", &[("x-max-priority", int(5))]);
    send(&vhost, "pq", "none1");
    send_with(&vhost, "pq", "zero", priority(0));
    send_with(&vhost, "pq", "one", priority(1));
    send(&vhost, "pq", "none2");
    assert_eq!(drain(&q), ["one", "none1", "zero", "none2"]);
}

#[test]
fn the_message_count_includes_every_priority_level() {
    let vhost = vhost();
    let q = declare(&vhost, "pq", &[("x-max-priority", int(3))]);
    send_with(&vhost, "pq", "a", priority(0));
    send_with(&vhost, "pq", "b", priority(3));
    send(&vhost, "pq", "c");
    send_with(&vhost, "pq", "d", priority(200));
    assert_eq!(q.message_count(), 4);
    assert_eq!(drain(&q), ["b", "d", "a", "c"]);
}

#[test]
fn max_priority_255_orders_the_full_range() {
    let vhost = vhost();
    let q = declare(&vhost, "pq", &[("x-max-priority", int(255))]);
    for (b, p) in [("low", 1), ("top", 255), ("mid", 128)] {
        send_with(&vhost, "pq", b, priority(p));
    }
    assert_eq!(drain(&q), ["top", "mid", "low"]);
}

#[test]
fn max_priority_0_is_an_ordinary_fifo_queue() {
    let vhost = vhost();
    let q = declare(&vhost, "pq", &[("x-max-priority", int(0))]);
    for (b, p) in [("zero", 0), ("five", 5), ("one", 1)] {
        send_with(&vhost, "pq", b, priority(p));
    }
    assert_eq!(drain(&q), ["zero", "five", "one"]);
}

#[test]
fn a_queue_without_max_priority_ignores_message_priorities() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    for (b, p) in [("low", 1), ("high", 9)] {
        send_with(&vhost, "q", b, priority(p));
    }
    assert_eq!(drain(&q), ["low", "high"]);
}

#[test]
fn a_high_priority_message_overtakes_those_waiting_for_a_consumer_with_credit() {
    let vhost = vhost();
    let q = declare(&vhost, "pq", &[("x-max-priority", int(9))]);
    let c = consume(&q, "c").prefetch(1).attach();
    for (b, p) in [("first", 1), ("low", 1), ("high", 9)] {
        send_with(&vhost, "pq", b, priority(p));
    }
    // "first" went out at once; the consumer is then out of credit while the others wait.
    let first = c.take();
    assert_eq!(bodies(&first), ["first"]);
    c.ack(&first);
    assert_eq!(c.take_bodies(), ["high"]);
}

#[test]
fn a_requeued_message_goes_back_ahead_of_its_priority_level_only() {
    let vhost = vhost();
    let q = declare(&vhost, "pq", &[("x-max-priority", int(5))]);
    send_with(&vhost, "pq", "low-old", priority(1));
    let (taken, _) = q.get(false).expect("low-old");
    send_with(&vhost, "pq", "low-new", priority(1));
    send_with(&vhost, "pq", "high", priority(5));
    q.requeue(None, vec![taken]);
    // Back at the head of priority 1, still behind the higher priority.
    let got: Vec<(String, bool)> = std::iter::from_fn(|| q.get(true))
        .map(|(m, _)| (body(&m), m.redelivered))
        .collect();
    assert_eq!(
        got,
        [
            ("high".to_string(), false),
            ("low-old".to_string(), true),
            ("low-new".to_string(), false)
        ]
    );
}
