//! Settling deliveries: requeued messages (basic.reject/nack with requeue, basic.recover, a
//! channel closing) go back in their original order ahead of newer ones, flagged redelivered;
//! acked and rejected ones are gone. And queue.purge: drops the ready messages, leaves the
//! unacked ones with their consumers.

use crate::broker::queue::test_support::*;

#[test]
fn requeued_messages_come_back_first_in_their_original_order_flagged_redelivered() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    for i in 0..3 {
        send(&vhost, "q", &format!("m{i}"));
    }
    let taken: Vec<_> = (0..3).map(|_| q.get(false).expect("a message").0).collect();
    send(&vhost, "q", "newer");
    // Requeued out of order: they still go back in publish order.
    let mut requeued = taken;
    requeued.reverse();
    q.requeue(None, requeued);
    let got: Vec<(String, bool)> = std::iter::from_fn(|| q.get(true))
        .map(|(m, _)| (body(&m), m.redelivered))
        .collect();
    assert_eq!(
        got,
        [
            ("m0".to_string(), true),
            ("m1".to_string(), true),
            ("m2".to_string(), true),
            ("newer".to_string(), false),
        ]
    );
}

#[test]
fn a_requeued_message_from_the_middle_goes_back_to_its_place() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    for i in 0..4 {
        send(&vhost, "q", &format!("m{i}"));
    }
    let (_m0, _) = q.get(true).expect("m0");
    let (m1, _) = q.get(false).expect("m1");
    let (_m2, _) = q.get(true).expect("m2");
    // m3 is still ready; m1 is older and goes back ahead of it.
    q.requeue(None, vec![m1]);
    assert_eq!(drain(&q), ["m1", "m3"]);
}

#[test]
fn a_consumer_gets_its_requeued_message_again_as_redelivered() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let c = consume(&q, "c").prefetch(1).attach();
    send(&vhost, "q", "m0");
    send(&vhost, "q", "m1");
    let first = c.take();
    assert_eq!(bodies(&first), ["m0"]);
    assert!(!first[0].redelivered);
    c.requeue(first);
    let again = c.take();
    assert_eq!(bodies(&again), ["m0"]);
    assert!(again[0].redelivered);
    c.ack(&again);
    let next = c.take();
    assert_eq!(bodies(&next), ["m1"]);
    assert!(!next[0].redelivered);
}

#[test]
fn messages_requeued_by_a_closing_channel_go_to_the_remaining_consumer() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let a = consume(&q, "a").prefetch(2).attach();
    let b = consume(&q, "b").prefetch(10).attach();
    for i in 0..4 {
        send(&vhost, "q", &format!("m{i}"));
    }
    let a_held = a.take();
    assert_eq!(bodies(&a_held), ["m0", "m2"]);
    let b_held = b.take();
    assert_eq!(bodies(&b_held), ["m1", "m3"]);
    a.close(a_held);
    let got = b.take();
    assert_eq!(bodies(&got), ["m0", "m2"]);
    assert!(got.iter().all(|m| m.redelivered));
    assert_eq!(q.counts(), (0, 1));
}

#[test]
fn acked_and_rejected_messages_are_gone_for_good() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let c = consume(&q, "c").attach();
    for i in 0..3 {
        send(&vhost, "q", &format!("m{i}"));
    }
    let got = c.take();
    c.ack(&got[..1]);
    c.reject(&got[1..]);
    c.cancel();
    assert_eq!(q.counts(), (0, 0));
    assert!(q.get(true).is_none());
}

#[test]
fn a_requeued_basic_get_message_returns_to_the_head() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    send(&vhost, "q", "a");
    send(&vhost, "q", "b");
    let (a, left) = q.get(false).expect("a");
    assert_eq!(left, 1);
    q.requeue(None, vec![a]);
    assert_eq!(q.message_count(), 2);
    let (again, left) = q.get(true).expect("a again");
    assert_eq!(
        (body(&again).as_str(), again.redelivered, left),
        ("a", true, 1)
    );
}

#[test]
fn purge_drops_the_ready_messages_and_says_how_many() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    for i in 0..4 {
        send(&vhost, "q", &format!("m{i}"));
    }
    assert_eq!(q.purge(), 4);
    assert_eq!(q.message_count(), 0);
    assert!(q.get(true).is_none());
    assert_eq!(q.purge(), 0, "nothing left to purge");
    send(&vhost, "q", "after");
    assert_eq!(drain(&q), ["after"]);
}

#[test]
fn purge_leaves_unacked_messages_with_their_consumer() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let c = consume(&q, "c").prefetch(2).attach();
    for i in 0..5 {
        send(&vhost, "q", &format!("m{i}"));
    }
    assert_eq!(q.purge(), 3);
    let held = c.take();
    assert_eq!(bodies(&held), ["m0", "m1"]);
    // Requeued after the purge, they are ready again.
    c.cancel();
    c.requeue(held);
    assert_eq!(q.message_count(), 2);
    assert_eq!(drain(&q), ["m0", "m1"]);
}

#[test]
fn purge_empties_every_priority_level() {
    let vhost = vhost();
    let q = declare(&vhost, "pq", &[("x-max-priority", int(3))]);
    for p in 0..=3 {
        send_with(&vhost, "pq", &format!("p{p}"), priority(p));
    }
    assert_eq!(q.purge(), 4);
    send_with(&vhost, "pq", "low", priority(0));
    assert_eq!(drain(&q), ["low"]);
}
