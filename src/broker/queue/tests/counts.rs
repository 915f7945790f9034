//! What a queue counts for its `message_stats`: messages enqueued, delivered to consumers
//! with and without ack, got with and without ack, gets that found nothing, redeliveries and
//! acks, as RabbitMQ 3.10 counts them for a queue.

use crate::broker::message_counts::MessageFigures;
use crate::broker::queue::test_support::*;

#[test]
fn a_queue_counts_each_way_a_message_comes_and_goes() {
    let vhost = vhost();
    let q = declare(&vhost, "q", &[]);
    send_numbered(&vhost, "q", 0..6);
    let c = consume(&q, "c").prefetch(2).attach();
    let first = c.take();
    assert_eq!(bodies(&first), ["m0", "m1"]);
    c.ack(&first[..1]);
    let mut unacked = first[1..].to_vec();
    unacked.extend(c.take());
    // The channel closes: both unacked go back, to come again redelivered.
    c.close(unacked);
    let (got, _) = q.get(false).expect("a message");
    assert!(got.redelivered);
    q.settle(None, &[got]);
    let (got, _) = q.get(true).expect("a message");
    assert!(got.redelivered);
    let no_ack = consume(&q, "n").no_ack().attach();
    assert_eq!(no_ack.take_bodies(), ["m3", "m4", "m5"]);
    assert!(q.get(true).is_none());
    let counted = q.counts.figures();
    assert_eq!(
        counted,
        MessageFigures {
            publish: 6,
            deliver: 3,
            deliver_no_ack: 3,
            get: 1,
            get_no_ack: 1,
            get_empty: 1,
            redeliver: 2,
            ack: 2,
            ..MessageFigures::default()
        },
        "{counted:?}"
    );
    assert_eq!(counted.deliver_get(), 8);
}

#[test]
fn a_publish_a_full_queue_refuses_is_not_counted() {
    let vhost = vhost();
    let q = declare(
        &vhost,
        "q",
        &[
            ("x-max-length", int(1)),
            ("x-overflow", text("reject-publish")),
        ],
    );
    send(&vhost, "q", "kept");
    assert!(try_send(&vhost, "q", "refused").rejected);
    assert_eq!(q.counts.figures().publish, 1);
}
