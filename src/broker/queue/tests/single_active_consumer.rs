//! Single active consumer (`x-single-active-consumer: true`): only the earliest consumer still
//! attached receives; when it goes, the next in registration order takes over, including the
//! messages requeued from the one that left.

use std::sync::Arc;

use amq_protocol::types::AMQPValue;

use crate::broker::queue::Queue;
use crate::broker::queue::test_support::*;
use crate::broker::vhost::VHost;

fn sac(vhost: &VHost) -> Arc<Queue> {
    declare(
        vhost,
        "sac",
        &[("x-single-active-consumer", AMQPValue::Boolean(true))],
    )
}

#[test]
fn only_the_first_registered_consumer_receives() {
    let vhost = vhost();
    let q = sac(&vhost);
    let a = consume(&q, "a").attach();
    let b = consume(&q, "b").attach();
    send_numbered(&vhost, "sac", 0..5);
    assert_eq!(a.take_bodies(), ["m0", "m1", "m2", "m3", "m4"]);
    assert!(b.take().is_empty());
}

#[test]
fn the_next_consumer_takes_over_when_the_active_one_cancels() {
    let vhost = vhost();
    let q = sac(&vhost);
    let a = consume(&q, "a").attach();
    let b = consume(&q, "b").attach();
    send(&vhost, "sac", "m0");
    let got = a.take();
    assert_eq!(bodies(&got), ["m0"]);
    a.ack(&got);
    a.cancel();
    send_numbered(&vhost, "sac", 1..3);
    let got = b.take();
    assert_eq!(bodies(&got), ["m1", "m2"]);
    assert!(got.iter().all(|m| !m.redelivered));
}

#[test]
fn the_next_consumer_takes_over_requeued_messages_in_order_when_the_active_channel_closes() {
    let vhost = vhost();
    let q = sac(&vhost);
    let a = consume(&q, "a").attach();
    let b = consume(&q, "b").attach();
    send_numbered(&vhost, "sac", 0..3);
    let unacked = a.take();
    assert_eq!(bodies(&unacked), ["m0", "m1", "m2"]);
    assert!(b.take().is_empty());
    a.close(unacked);
    let got = b.take();
    assert_eq!(bodies(&got), ["m0", "m1", "m2"]);
    assert!(got.iter().all(|m| m.redelivered), "requeued: redelivered");
    send(&vhost, "sac", "m3");
    let got = b.take();
    assert_eq!(bodies(&got), ["m3"]);
    assert!(!got[0].redelivered);
}

#[test]
fn takeover_follows_registration_order() {
    let vhost = vhost();
    let q = sac(&vhost);
    let a = consume(&q, "a").attach();
    let b = consume(&q, "b").attach();
    let c = consume(&q, "c").attach();
    a.cancel();
    send_numbered(&vhost, "sac", 0..3);
    assert_eq!(b.take_bodies(), ["m0", "m1", "m2"]);
    assert!(c.take().is_empty());
    b.cancel();
    send_numbered(&vhost, "sac", 3..4);
    assert_eq!(c.take_bodies(), ["m3"]);
}

#[test]
fn messages_waiting_before_consumers_attach_go_to_the_first_one() {
    let vhost = vhost();
    let q = sac(&vhost);
    send_numbered(&vhost, "sac", 0..3);
    let a = consume(&q, "a").attach();
    let b = consume(&q, "b").attach();
    assert_eq!(a.take_bodies(), ["m0", "m1", "m2"]);
    assert!(b.take().is_empty());
}

#[test]
fn waiting_consumers_get_nothing_while_the_active_one_is_out_of_credit() {
    let vhost = vhost();
    let q = sac(&vhost);
    let a = consume(&q, "a").prefetch(1).attach();
    let b = consume(&q, "b").attach();
    send_numbered(&vhost, "sac", 0..3);
    let first = a.take();
    assert_eq!(bodies(&first), ["m0"]);
    assert!(b.take().is_empty());
    assert_eq!(q.message_count(), 2);
    a.ack(&first);
    assert_eq!(a.take_bodies(), ["m1"]);
    assert!(b.take().is_empty());
}

#[test]
fn waiting_consumers_get_nothing_while_the_active_channel_is_full() {
    let vhost = vhost();
    let q = sac(&vhost);
    let a = consume(&q, "a").attach();
    let b = consume(&q, "b").attach();
    a.target.set_full(true);
    send_numbered(&vhost, "sac", 0..2);
    assert!(a.take().is_empty());
    assert!(b.take().is_empty());
    assert_eq!(q.message_count(), 2);
}

#[test]
fn every_registered_consumer_is_counted_not_only_the_active_one() {
    let vhost = vhost();
    let q = sac(&vhost);
    let consumers: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|t| consume(&q, t).attach())
        .collect();
    assert_eq!(q.counts(), (0, 3));
    consumers[0].cancel();
    assert_eq!(q.consumer_count(), 2);
}

#[test]
fn a_queue_with_single_active_consumer_false_round_robins() {
    let vhost = vhost();
    let q = declare(
        &vhost,
        "rr",
        &[("x-single-active-consumer", AMQPValue::Boolean(false))],
    );
    let a = consume(&q, "a").attach();
    let b = consume(&q, "b").attach();
    for i in 0..4 {
        send(&vhost, "rr", &format!("m{i}"));
    }
    assert_eq!(a.take_bodies(), ["m0", "m2"]);
    assert_eq!(b.take_bodies(), ["m1", "m3"]);
}
