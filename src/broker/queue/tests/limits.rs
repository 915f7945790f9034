//! Length limits: `x-max-length` and `x-max-length-bytes` (body bytes of ready messages), with
//! `x-overflow` drop-head (the oldest ready messages go) or reject-publish / reject-publish-dlx
//! (the new message is refused: [`PublishOutcome::rejected`](crate::broker::publish::PublishOutcome)
//! is what turns into a nack). Only ready messages count, never unacked ones.

use amq_protocol::protocol::BasicProperties;
use amq_protocol::types::AMQPValue;

use crate::broker::queue::test_support::*;

fn max_len(n: i64) -> (&'static str, AMQPValue) {
    ("x-max-length", int(n))
}

fn max_bytes(n: i64) -> (&'static str, AMQPValue) {
    ("x-max-length-bytes", int(n))
}

fn overflow(mode: &str) -> (&'static str, AMQPValue) {
    ("x-overflow", text(mode))
}

#[test]
fn max_length_drops_the_oldest_messages() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[max_len(3)]);
    for i in 0..5 {
        let outcome = try_send(&vhost, "q", &format!("m{i}"));
        assert!(!outcome.rejected, "drop-head never refuses a publish");
    }
    assert_eq!(q.message_count(), 3);
    assert_eq!(drain(&q), ["m2", "m3", "m4"]);
}

#[test]
fn explicit_drop_head_behaves_as_the_default() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[max_len(2), overflow("drop-head")]);
    for i in 0..4 {
        assert!(!try_send(&vhost, "q", &format!("m{i}")).rejected);
    }
    assert_eq!(drain(&q), ["m2", "m3"]);
}

#[test]
fn max_length_bytes_drops_the_oldest_by_body_size() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[max_bytes(10)]);
    for b in ["aaaa", "bbbb", "cccc"] {
        send(&vhost, "q", b);
    }
    // 12 bytes > 10: the oldest goes, 8 bytes remain.
    assert_eq!(drain(&q), ["bbbb", "cccc"]);
}

#[test]
fn max_length_bytes_counts_body_bytes_only() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[max_bytes(10)]);
    let big_headers = table(&[("padding", text(&"p".repeat(500)))]);
    for b in ["aaaaa", "bbbbb"] {
        send_with(
            &vhost,
            "q",
            b,
            BasicProperties::default().with_headers(big_headers.clone()),
        );
    }
    // Exactly 10 body bytes fit, whatever the size of the properties.
    assert_eq!(drain(&q), ["aaaaa", "bbbbb"]);
}

#[test]
fn max_length_and_max_length_bytes_both_apply() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[max_len(3), max_bytes(6)]);
    for b in ["aa", "bb", "cc", "dd"] {
        send(&vhost, "q", b);
    }
    // The count limit: "aa" went.
    assert_eq!(q.message_count(), 3);
    // The byte limit: 6 + 4 bytes, "bb" and "cc" go.
    send(&vhost, "q", "eeee");
    assert_eq!(drain(&q), ["dd", "eeee"]);
}

#[test]
fn max_length_0_keeps_nothing_but_a_waiting_consumer_still_receives() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[max_len(0)]);
    assert!(!try_send(&vhost, "q", "dropped").rejected);
    assert_eq!(q.message_count(), 0);
    let c = consume(&q, "c").no_ack().attach();
    assert!(!try_send(&vhost, "q", "delivered").rejected);
    assert_eq!(c.take_bodies(), ["delivered"]);
}

#[test]
fn unacked_messages_do_not_count_towards_max_length() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[max_len(2)]);
    let c = consume(&q, "c").prefetch(2).attach();
    for i in 0..4 {
        send(&vhost, "q", &format!("m{i}"));
    }
    let held = c.take();
    assert_eq!(bodies(&held), ["m0", "m1"]);
    assert_eq!(q.message_count(), 2, "2 unacked + 2 ready");
    send(&vhost, "q", "m4");
    c.cancel();
    assert_eq!(drain(&q), ["m3", "m4"]);
}

#[test]
fn reject_publish_refuses_new_messages_and_keeps_the_old_ones() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[max_len(2), overflow("reject-publish")]);
    assert!(!try_send(&vhost, "q", "m0").rejected);
    assert!(!try_send(&vhost, "q", "m1").rejected);
    assert!(try_send(&vhost, "q", "m2").rejected, "m2 is nacked");
    assert!(try_send(&vhost, "q", "m3").rejected, "m3 is nacked");
    assert_eq!(q.message_count(), 2);
    assert_eq!(drain(&q), ["m0", "m1"]);
    // Room again: accepted again.
    assert!(!try_send(&vhost, "q", "m4").rejected);
    assert_eq!(drain(&q), ["m4"]);
}

#[test]
fn reject_publish_applies_to_max_length_bytes() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[max_bytes(8), overflow("reject-publish")]);
    assert!(!try_send(&vhost, "q", "aaaa").rejected);
    assert!(!try_send(&vhost, "q", "bbbb").rejected);
    assert!(try_send(&vhost, "q", "c").rejected);
    assert_eq!(drain(&q), ["aaaa", "bbbb"]);
}

#[test]
fn reject_publish_refuses_even_with_a_consumer_waiting() {
    // As RabbitMQ: the overflow check comes before the delivery attempt, so a queue limited
    // to 0 refuses everything (drop-head would deliver to the waiting consumer).
    let vhost = vhost();
    let q = declare(&vhost, "q", &[max_len(0), overflow("reject-publish")]);
    let c = consume(&q, "c").no_ack().attach();
    assert!(try_send(&vhost, "q", "refused").rejected);
    assert!(c.take().is_empty());
    assert_eq!(q.message_count(), 0);
}

#[test]
fn reject_publish_counts_only_ready_messages() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[max_len(1), overflow("reject-publish")]);
    let c = consume(&q, "c").prefetch(1).attach();
    assert!(!try_send(&vhost, "q", "unacked").rejected);
    assert!(!try_send(&vhost, "q", "ready").rejected);
    assert!(try_send(&vhost, "q", "over").rejected);
    assert_eq!(c.take_bodies(), ["unacked"]);
}

#[test]
fn reject_publish_dlx_refuses_like_reject_publish() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[max_len(1), overflow("reject-publish-dlx")]);
    assert!(!try_send(&vhost, "q", "m0").rejected);
    assert!(try_send(&vhost, "q", "m1").rejected);
    assert_eq!(drain(&q), ["m0"]);
}

#[test]
fn a_refusal_by_one_queue_nacks_a_message_other_queues_took() {
    let vhost = vhost();
    let full = declare(&vhost, "full", &[max_len(0), overflow("reject-publish")]);
    let open = declare(&vhost, "open", &[]);
    bind(&vhost, "amq.fanout", "full", "");
    bind(&vhost, "amq.fanout", "open", "");
    let outcome = publish_request(
        &vhost,
        "amq.fanout",
        "",
        "m",
        BasicProperties::default(),
        false,
    );
    assert_eq!(outcome.routed, 2);
    assert!(outcome.rejected);
    assert_eq!(drain(&open), ["m"]);
    assert!(drain(&full).is_empty());
}

#[test]
fn drop_head_in_a_priority_queue_drops_the_next_message_due_out() {
    let vhost = vhost();
    let q = declare(&vhost, "pq", &[max_len(2), ("x-max-priority", int(5))]);
    send_with(&vhost, "pq", "low", priority(1));
    send_with(&vhost, "pq", "high", priority(5));
    send_with(&vhost, "pq", "mid", priority(3));
    assert_eq!(drain(&q), ["mid", "low"]);
}

/// RabbitMQ applies the limit when messages are requeued too (`requeue_and_run` calls
/// `maybe_drop_head`): a queue never holds more ready messages than `x-max-length` once an
/// operation is over.
#[test]
fn requeueing_into_a_full_queue_drops_the_head() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[max_len(2)]);
    send(&vhost, "q", "m0");
    let (m0, _) = q.get(false).expect("m0");
    send(&vhost, "q", "m1");
    send(&vhost, "q", "m2");
    q.requeue(None, vec![m0]);
    assert_eq!(q.message_count(), 2);
    assert_eq!(drain(&q), ["m1", "m2"]);
}
