//! Consumers of one queue: round-robin among equals, the per-consumer prefetch window
//! (basic.qos global=false), a channel that cannot take more ("full"), consumer priorities
//! (`x-priority` on basic.consume), exclusive consumers, cancelling, and the consumers a
//! deleted queue cancels.

use std::sync::Arc;

use bytes::Bytes;

use crate::broker::message::Message;
use crate::broker::queue::ConsumerRemoved;
use crate::broker::queue::test_support::*;

#[test]
fn consumers_of_equal_priority_take_turns() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let a = consume(&q, "a").attach();
    let b = consume(&q, "b").attach();
    let c = consume(&q, "c").attach();
    send_numbered(&vhost, "q", 0..7);
    assert_eq!(a.take_bodies(), ["m0", "m3", "m6"]);
    assert_eq!(b.take_bodies(), ["m1", "m4"]);
    assert_eq!(c.take_bodies(), ["m2", "m5"]);
}

/// After a cancel the turn stays where it was: with a, b, c and m0 gone to a, a cancel of a
/// leaves b next (RabbitMQ puts the consumer that just received at the back of the line).
#[test]
fn a_cancel_does_not_skip_the_next_consumer_in_turn() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let a = consume(&q, "a").attach();
    let b = consume(&q, "b").attach();
    let c = consume(&q, "c").attach();
    send_numbered(&vhost, "q", 0..1);
    assert_eq!(a.take_bodies(), ["m0"]);
    a.cancel();
    send_numbered(&vhost, "q", 1..4);
    assert_eq!(b.take_bodies(), ["m1", "m3"]);
    assert_eq!(c.take_bodies(), ["m2"]);
}

#[test]
fn messages_waiting_before_consumers_attach_go_to_the_first_one_with_credit() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    send_numbered(&vhost, "q", 0..3);
    // The first consumer is offered everything ready as soon as it attaches.
    let a = consume(&q, "a").attach();
    let b = consume(&q, "b").attach();
    assert_eq!(a.take_bodies(), ["m0", "m1", "m2"]);
    assert!(b.take().is_empty());
}

#[test]
fn a_consumer_gets_no_more_than_its_prefetch_until_it_acks() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let c = consume(&q, "c").prefetch(2).attach();
    send_numbered(&vhost, "q", 0..5);
    let first = c.take();
    assert_eq!(bodies(&first), ["m0", "m1"]);
    assert_eq!(q.message_count(), 3);
    // One ack opens one slot.
    c.ack(&first[..1]);
    assert_eq!(c.take_bodies(), ["m2"]);
    assert_eq!(q.message_count(), 2);
    c.ack(&first[1..]);
    assert_eq!(c.take_bodies(), ["m3"]);
    assert_eq!(q.message_count(), 1);
}

#[test]
fn rejecting_or_requeueing_also_returns_prefetch_credit() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let c = consume(&q, "c").prefetch(1).attach();
    send_numbered(&vhost, "q", 0..3);
    let m0 = c.take();
    assert_eq!(bodies(&m0), ["m0"]);
    c.reject(&m0);
    let m1 = c.take();
    assert_eq!(bodies(&m1), ["m1"]);
    c.requeue(m1);
    // The requeued m1 comes straight back, ahead of m2.
    let again = c.take();
    assert_eq!(bodies(&again), ["m1"]);
    assert!(again[0].redelivered);
    assert_eq!(q.message_count(), 1);
}

#[test]
fn prefetch_is_per_consumer() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let small = consume(&q, "small").prefetch(1).attach();
    let large = consume(&q, "large").prefetch(10).attach();
    send_numbered(&vhost, "q", 0..6);
    // Turns alternate until "small" is full; "large" takes the rest.
    assert_eq!(small.take_bodies(), ["m0"]);
    assert_eq!(large.take_bodies(), ["m1", "m2", "m3", "m4", "m5"]);
}

#[test]
fn a_no_ack_consumer_is_not_limited_by_its_prefetch() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let c = consume(&q, "c").prefetch(1).no_ack().attach();
    send_numbered(&vhost, "q", 0..4);
    assert_eq!(c.take_bodies(), ["m0", "m1", "m2", "m3"]);
    assert_eq!(q.message_count(), 0);
}

#[test]
fn a_full_channel_leaves_messages_ready_in_order_until_the_queue_dispatches_again() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let c = consume(&q, "c").prefetch(1).attach();
    c.target.set_full(true);
    send_numbered(&vhost, "q", 0..3);
    assert!(c.take().is_empty());
    assert!(c.target.refused() >= 1);
    assert_eq!(q.message_count(), 3);
    c.target.set_full(false);
    // As a channel does when flow resumes or its buffer drains.
    q.resume(std::slice::from_ref(&c.consumer));
    // A refused offer did not use up the prefetch window of 1.
    assert_eq!(c.take_bodies(), ["m0"]);
    assert_eq!(q.message_count(), 2);
}

#[test]
fn a_consumer_on_a_full_channel_is_skipped_for_the_next_one() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let a = consume(&q, "a").attach();
    let b = consume(&q, "b").attach();
    a.target.set_full(true);
    send_numbered(&vhost, "q", 0..3);
    assert!(a.take().is_empty());
    assert_eq!(b.take_bodies(), ["m0", "m1", "m2"]);
}

/// Among many consumers with full windows, the one an ack frees gets the next message at once
/// (consumers without credit are out of the rotation, not scanned past on every delivery).
#[test]
fn the_consumer_an_ack_frees_gets_the_next_message_among_many_full_ones() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let consumers: Vec<TestConsumer> = (0..100)
        .map(|i| consume(&q, &format!("c{i}")).prefetch(1).attach())
        .collect();
    send_numbered(&vhost, "q", 0..102);
    let first: Vec<_> = consumers.iter().map(|c| c.take()).collect();
    for (i, got) in first.iter().enumerate() {
        assert_eq!(bodies(got), [format!("m{i}")]);
    }
    consumers[57].ack(&first[57]);
    assert_eq!(consumers[57].take_bodies(), ["m100"]);
    consumers[3].ack(&first[3]);
    assert_eq!(consumers[3].take_bodies(), ["m101"]);
    for c in &consumers {
        assert!(c.take().is_empty(), "{} got more", c.tag());
    }
}

/// A consumer its channel refused is left out until the channel says it can take more (a
/// channel does so when flow resumes, its window frees or its outbox drains); then it is back,
/// behind those that kept their turn.
#[test]
fn a_consumer_its_channel_refused_waits_for_the_channel_to_resume_it() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let a = consume(&q, "a").attach();
    let b = consume(&q, "b").attach();
    a.target.set_full(true);
    send_numbered(&vhost, "q", 0..2);
    assert_eq!(b.take_bodies(), ["m0", "m1"]);
    a.target.set_full(false);
    send_numbered(&vhost, "q", 2..3);
    assert!(a.take().is_empty());
    assert_eq!(b.take_bodies(), ["m2"]);
    q.resume(std::slice::from_ref(&a.consumer));
    send_numbered(&vhost, "q", 3..5);
    assert_eq!(b.take_bodies(), ["m3"]);
    assert_eq!(a.take_bodies(), ["m4"]);
}

#[test]
fn consumers_sharing_a_channel_share_its_capacity() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let channel = FakeTarget::new();
    // A channel-wide window of 3 (basic.qos global=true) over two consumers.
    channel.set_room(3);
    let a = consume(&q, "a").on(&channel).attach();
    let b = consume(&q, "b").on(&channel).attach();
    send_numbered(&vhost, "q", 0..5);
    assert_eq!(
        channel.log(),
        [
            ("a".to_string(), "m0".to_string()),
            ("b".to_string(), "m1".to_string()),
            ("a".to_string(), "m2".to_string()),
        ]
    );
    assert_eq!(q.message_count(), 2);
    channel.set_room(10);
    // As the channel does once its window frees: both its consumers, in one call.
    q.resume(&[b.consumer.clone(), a.consumer.clone()]);
    assert_eq!(a.take_bodies(), ["m0", "m2", "m4"]);
    assert_eq!(b.take_bodies(), ["m1", "m3"]);
}

#[test]
fn the_highest_priority_consumer_gets_everything_while_it_has_credit() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    // Attached first: registration order must not matter.
    let low = consume(&q, "low").prefetch(100).priority(1).attach();
    let high = consume(&q, "high").prefetch(100).priority(10).attach();
    send_numbered(&vhost, "q", 0..10);
    assert_eq!(
        high.take_bodies(),
        (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert!(low.take().is_empty());
}

#[test]
fn a_lower_priority_consumer_gets_messages_only_while_higher_ones_have_no_credit() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let high = consume(&q, "high").prefetch(2).priority(10).attach();
    let low = consume(&q, "low").prefetch(100).priority(1).attach();
    send_numbered(&vhost, "q", 0..6);
    let high_got = high.take();
    assert_eq!(bodies(&high_got), ["m0", "m1"]);
    assert_eq!(low.take_bodies(), ["m2", "m3", "m4", "m5"]);
    // With credit again, the high-priority consumer is preferred again.
    high.ack(&high_got);
    send_numbered(&vhost, "q", 6..8);
    assert_eq!(high.take_bodies(), ["m6", "m7"]);
    assert!(low.take().is_empty());
}

#[test]
fn when_both_are_blocked_the_first_credit_back_decides_who_gets_the_next_message() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let high = consume(&q, "high").prefetch(1).priority(5).attach();
    let low = consume(&q, "low").prefetch(1).priority(-5).attach();
    send_numbered(&vhost, "q", 0..4);
    let h0 = high.take();
    let l0 = low.take();
    assert_eq!(
        (bodies(&h0), bodies(&l0)),
        (vec!["m0".into()], vec!["m1".into()])
    );
    assert_eq!(q.message_count(), 2);
    high.ack(&h0);
    assert_eq!(high.take_bodies(), ["m2"]);
    assert!(low.take().is_empty());
    low.ack(&l0);
    assert_eq!(low.take_bodies(), ["m3"]);
}

#[test]
fn equal_priority_consumers_alternate_and_a_lower_one_waits() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let a = consume(&q, "a").priority(7).attach();
    let b = consume(&q, "b").priority(7).attach();
    let c = consume(&q, "c").priority(3).attach();
    send_numbered(&vhost, "q", 0..6);
    assert_eq!(a.take_bodies(), ["m0", "m2", "m4"]);
    assert_eq!(b.take_bodies(), ["m1", "m3", "m5"]);
    assert!(c.take().is_empty());
}

#[test]
fn a_negative_priority_is_below_the_default_priority() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let neg = consume(&q, "neg").priority(-1).attach();
    let default = consume(&q, "default").attach();
    send_numbered(&vhost, "q", 0..4);
    assert_eq!(default.take_bodies(), ["m0", "m1", "m2", "m3"]);
    assert!(neg.take().is_empty());
}

#[test]
fn cancelling_the_high_priority_consumer_lets_the_lower_one_receive() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let high = consume(&q, "high").priority(2).attach();
    let low = consume(&q, "low").priority(1).attach();
    send(&vhost, "q", "first");
    assert_eq!(high.take_bodies(), ["first"]);
    high.cancel();
    send(&vhost, "q", "second");
    assert_eq!(low.take_bodies(), ["second"]);
    assert!(high.take().is_empty());
}

#[test]
fn a_cancelled_consumer_gets_nothing_more_and_is_not_counted() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let a = consume(&q, "a").attach();
    let b = consume(&q, "b").attach();
    assert_eq!(q.consumer_count(), 2);
    assert_eq!(
        q.remove_consumer(a.tag(), CONNECTION),
        ConsumerRemoved::Removed
    );
    assert_eq!(
        q.remove_consumer(a.tag(), CONNECTION),
        ConsumerRemoved::NotFound,
        "cancelling twice finds nothing"
    );
    assert_eq!(
        q.remove_consumer(b.tag(), CONNECTION + 1),
        ConsumerRemoved::NotFound,
        "a tag is only found on its own connection"
    );
    send_numbered(&vhost, "q", 0..2);
    assert!(a.take().is_empty());
    assert_eq!(b.take_bodies(), ["m0", "m1"]);
    assert_eq!(q.counts(), (0, 1));
}

#[test]
fn an_exclusive_consumer_refuses_others_and_needs_the_queue_to_itself() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let only = consume(&q, "only").exclusive().attach();
    let refused = consume(&q, "second").try_attach().err().expect("refused");
    assert_eq!(refused.code, 403);
    assert_eq!(
        refused.text,
        "ACCESS_REFUSED - queue 'q' in vhost '/' in exclusive use"
    );
    only.cancel();
    let _plain = consume(&q, "plain").attach();
    let refused = consume(&q, "late-exclusive")
        .exclusive()
        .try_attach()
        .err()
        .expect("refused");
    assert_eq!(refused.code, 403);
    assert_eq!(q.consumer_count(), 1);
}

#[test]
fn deleting_the_queue_cancels_its_consumers_and_reports_dropped_messages() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    let a = consume(&q, "a").prefetch(1).attach();
    let b = consume(&q, "b").prefetch(1).attach();
    send_numbered(&vhost, "q", 0..5);
    let dropped = vhost.delete_queue("q", false, false, CONNECTION).unwrap();
    assert_eq!(dropped, 3, "the ready messages, not the two unacked");
    assert_eq!(a.target.cancelled(), ["a"]);
    assert_eq!(b.target.cancelled(), ["b"]);
    assert!(q.is_deleted());
    assert!(vhost.queue("q").is_none());
    // A publish already holding the deleted queue enqueues nothing.
    assert!(q.publish(message("late")), "not a reject-publish refusal");
    assert_eq!(q.message_count(), 0);
}

/// A message as routing hands it to a queue.
fn message(body: &'static str) -> Arc<Message> {
    Arc::new(Message {
        exchange: Arc::from(""),
        routing_key: short("q"),
        properties: Default::default(),
        body: Bytes::from_static(body.as_bytes()),
        store_id: None,
    })
}

/// A client that keeps consuming and cancelling with ever new `x-priority` values leaves no
/// round-robin state behind in the queue.
#[test]
fn consumer_churn_with_new_priorities_leaves_no_turns_behind() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    for p in 0..1_000 {
        let c = consume(&q, &format!("c{p}")).priority(p).attach();
        send_numbered(&vhost, "q", 0..1);
        assert_eq!(c.take().len(), 1);
        c.cancel();
    }
    assert_eq!(q.state.lock().consumers.turns_kept(), 0);
}

/// basic.consume adds its consumer to the queue before its consume-ok is written; a message
/// offered in between (another connection's ack, a publish) must wait, or the client would
/// see a basic.deliver before the consume-ok.
#[test]
fn a_consumer_gets_nothing_until_its_consume_ok_is_written() {
    use crate::broker::consumer::{Consumer, DeliveryTarget};
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    send_numbered(&vhost, "q", 0..2);
    let target = Arc::new(FakeTarget::default());
    let channel: Arc<dyn DeliveryTarget> = target.clone();
    let consumer =
        Arc::new(Consumer::new("c".into(), false, false, 0, 0, CONNECTION, channel).unannounced());
    q.add_consumer(consumer.clone()).expect("consume");
    q.dispatch();
    send_numbered(&vhost, "q", 2..3);
    assert!(
        target.take_for("c").is_empty(),
        "delivered before the consume-ok"
    );
    consumer.announce();
    q.dispatch();
    assert_eq!(bodies(&target.take_for("c")), ["m0", "m1", "m2"]);
}
