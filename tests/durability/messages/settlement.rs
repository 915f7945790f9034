//! What a restart must not undo or lose when messages leave a queue: acks, rejects, nacks, no-ack
//! deliveries, purges, deletes and max-length drops stay done; a delivery that was never settled
//! comes back, flagged redelivered.

use amq_protocol::types::AMQPValue;
use lapin::options::{BasicAckOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions};

use crate::common::*;
use crate::support::*;

/// Declares a durable queue named after `prefix` on `node` and has it hold `bodies` (confirmed);
/// returns its name.
async fn durable_queue_holding(node: &Node, prefix: &str, bodies: &[String]) -> String {
    let q = unique(prefix);
    let (_conn, ch) = node.confirm_channel().await;
    declare_durable_queue(&ch, &q).await;
    publish_all_confirmed(&ch, &q, bodies).await;
    q
}

#[tokio::test]
async fn acked_rejected_and_nacked_messages_stay_gone_after_graceful_restart() {
    let expected = numbered("m", 10);
    let mut node = Node::start();
    let q = durable_queue_holding(&node, "ack-q", &expected).await;
    // Keep this connection (and its unacked deliveries) open into the shutdown.
    let (_conn, ch) = node.channel().await;
    let mut consumer = consume_from(&ch, &q).await;
    let deliveries = next_deliveries(&mut consumer, 10).await;
    let tags: Vec<u64> = deliveries.iter().map(|d| d.delivery_tag).collect();
    assert_eq!(
        deliveries.iter().map(body_str).collect::<Vec<_>>(),
        expected
    );
    let single = BasicAckOptions::default();
    ch.basic_ack(tags[0], single).await.unwrap();
    ch.basic_ack(tags[1], single).await.unwrap();
    let multiple = BasicAckOptions { multiple: true };
    ch.basic_ack(tags[4], multiple).await.unwrap();
    let reject = BasicRejectOptions { requeue: false };
    ch.basic_reject(tags[5], reject).await.unwrap();
    let nack = BasicNackOptions {
        multiple: false,
        requeue: false,
    };
    ch.basic_nack(tags[6], nack).await.unwrap();
    // The broker handles a channel's methods in order: after this round trip it has seen them.
    sync(&ch).await;
    let (_conn2, ch2) = node.restart_and_open_channel(Stop::Graceful).await;
    let got = get_all(&ch2, &q).await;
    assert_eq!(
        bodies(&got),
        ["m-7", "m-8", "m-9"],
        "only the unsettled ones come back"
    );
    for g in &got {
        assert!(g.redelivered, "{} was delivered before the restart", g.body);
    }
}

#[tokio::test]
async fn no_ack_gets_and_deliveries_stay_gone_after_graceful_restart() {
    let mut node = Node::start();
    let q1 = unique("noack-get-q");
    let q2 = unique("noack-consume-q");
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, &q1).await;
        declare_durable_queue(&ch, &q2).await;
        publish_all_confirmed(&ch, &q1, &numbered("g", 4)).await;
        publish_all_confirmed(&ch, &q2, &numbered("c", 3)).await;
        assert_eq!(get_body(&ch, &q1).await.unwrap(), b"g-0");
        assert_eq!(get_body(&ch, &q1).await.unwrap(), b"g-1");
        let mut consumer = consume_no_ack(&ch, &q2).await;
        for i in 0..3 {
            let d = next_delivery(&mut consumer).await;
            assert_eq!(d.data, format!("c-{i}").as_bytes());
        }
        sync(&ch).await;
    }
    let (_conn, ch) = node.restart_and_open_channel(Stop::Graceful).await;
    assert_eq!(drain_bodies(&ch, &q1).await, ["g-2", "g-3"]);
    assert_eq!(drain_bodies(&ch, &q2).await, Vec::<String>::new());
}

async fn delivered_unacked_come_back_redelivered(mut node: Node, stop: Stop) {
    let expected = numbered("m", 6);
    let q = durable_queue_holding(&node, "unacked-q", &expected).await;
    // Keep the consumer's connection open until the broker goes down.
    let (_conn, ch) = node.channel().await;
    ch.basic_qos(3, BasicQosOptions::default()).await.unwrap();
    let mut consumer = consume_from(&ch, &q).await;
    let deliveries = next_deliveries(&mut consumer, 3).await;
    assert_eq!(
        deliveries.iter().map(body_str).collect::<Vec<_>>(),
        expected[..3]
    );
    assert!(deliveries.iter().all(|d| !d.redelivered));
    sync(&ch).await;
    let (_conn2, ch2) = node.restart_and_open_channel(stop).await;
    let got = get_all(&ch2, &q).await;
    assert_eq!(bodies(&got), expected, "after {stop:?} restart");
    for g in &got[..3] {
        assert!(
            g.redelivered,
            "{} was delivered (unacked) before the {stop:?} restart but is not flagged redelivered",
            g.body
        );
    }
}
both_stops!(
    delivered_unacked_come_back_redelivered,
    delivered_unacked_messages_come_back_redelivered_after_graceful_restart,
    delivered_unacked_messages_come_back_redelivered_after_kill9
);

async fn purge_is_permanent(mut node: Node, stop: Stop) {
    let q = unique("purge-q");
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, &q).await;
        publish_all_confirmed(&ch, &q, &numbered("old", 5)).await;
        assert_eq!(purge_queue(&ch, &q).await, 5);
        publish_all_confirmed(&ch, &q, &numbered("new", 2)).await;
    }
    let (_conn, ch) = node.restart_and_open_channel(stop).await;
    assert_eq!(
        drain_bodies(&ch, &q).await,
        ["new-0", "new-1"],
        "purged messages came back after {stop:?} restart"
    );
}
both_stops!(
    purge_is_permanent,
    purged_messages_stay_gone_after_graceful_restart,
    purged_messages_stay_gone_after_kill9
);

async fn delete_is_permanent(mut node: Node, stop: Stop) {
    let q1 = unique("del-q1");
    let q2 = unique("del-q2");
    {
        let (_conn, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, &q1).await;
        declare_durable_queue(&ch, &q2).await;
        publish_all_confirmed(&ch, &q1, &numbered("old1", 5)).await;
        publish_all_confirmed(&ch, &q2, &numbered("old2", 5)).await;
        for q in [&q1, &q2] {
            assert_eq!(delete_queue(&ch, q).await, 5);
        }
        // q2 is recreated at once and gets a new message.
        declare_durable_queue(&ch, &q2).await;
        publish_all_confirmed(&ch, &q2, &numbered("new2", 1)).await;
    }
    let (conn, ch) = node.restart_and_open_channel(stop).await;
    assert!(!queue_exists(&conn, &q1).await, "deleted queue came back");
    declare_durable_queue(&ch, &q1).await;
    assert_eq!(
        drain_bodies(&ch, &q1).await,
        Vec::<String>::new(),
        "messages of a deleted queue came back after {stop:?} restart"
    );
    assert_eq!(drain_bodies(&ch, &q2).await, ["new2-0"]);
}
both_stops!(
    delete_is_permanent,
    deleted_queue_messages_stay_gone_after_graceful_restart,
    deleted_queue_messages_stay_gone_after_kill9
);

async fn max_length_drops_are_permanent(mut node: Node, stop: Stop) {
    let q = unique("maxlen-q");
    {
        let (_conn, ch) = node.confirm_channel().await;
        let max_length_3 = table(vec![("x-max-length", AMQPValue::LongInt(3))]);
        declare_durable_queue_with(&ch, &q, max_length_3).await;
        publish_all_confirmed(&ch, &q, &numbered("m", 5)).await;
        assert_eq!(
            message_count(&ch, &q).await,
            3,
            "x-max-length 3 is not enforced (before any restart)"
        );
    }
    node.restart(stop);
    let (_conn, ch) = node.confirm_channel().await;
    assert_eq!(
        message_count(&ch, &q).await,
        3,
        "dropped messages came back after {stop:?} restart"
    );
    // The recovered queue still enforces its limit.
    publish_all_confirmed(&ch, &q, &numbered("n", 1)).await;
    assert_eq!(
        drain_bodies(&ch, &q).await,
        ["m-3", "m-4", "n-0"],
        "after {stop:?} restart"
    );
}
both_stops!(
    max_length_drops_are_permanent,
    max_length_head_drops_stay_dropped_after_graceful_restart,
    max_length_head_drops_stay_dropped_after_kill9
);
