//! Backlogs larger than a queue's in-memory budget: a broker that keeps only a few ready
//! messages per durable queue in memory pages the rest in from the store (without the queue
//! lock held during the read) while publishers, consumers and basic.get go on.

use lapin::options::BasicQosOptions;

use crate::common::*;
use crate::support::*;

/// A broker that pages every durable queue beyond 5 ready messages.
fn paging_node() -> Node {
    Node::start_with_config("queue_page_threshold = 5\n")
}

#[tokio::test]
async fn a_paged_backlog_reaches_a_consumer_in_order_while_publishing_goes_on() {
    let node = paging_node();
    let (_conn, ch) = node.confirm_channel().await;
    declare_durable_queue(&ch, "paged").await;
    let first = numbered("a", 300);
    publish_all_confirmed(&ch, "paged", &first).await;

    // More arrive while the consumer works through the backlog, one page-in after another.
    let second = numbered("b", 200);
    let publisher = tokio::spawn({
        let (conn, ch) = node.confirm_channel().await;
        let second = second.clone();
        async move {
            let _conn = conn;
            for chunk in second.chunks(20) {
                publish_all_confirmed(&ch, "paged", chunk).await;
            }
        }
    });
    let (_conn2, consumer_ch) = node.channel().await;
    consumer_ch
        .basic_qos(7, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = consume_from(&consumer_ch, "paged").await;
    let mut got = Vec::new();
    while got.len() < first.len() + second.len() {
        let d = next_delivery(&mut consumer).await;
        got.push(body_str(&d));
        d.ack(Default::default()).await.unwrap();
    }
    publisher.await.unwrap();
    let expected: Vec<String> = first.into_iter().chain(second).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn basic_get_drains_a_paged_backlog_in_order() {
    let node = paging_node();
    let (_conn, ch) = node.confirm_channel().await;
    declare_durable_queue(&ch, "paged-get").await;
    let bodies = numbered("m", 1500); // more than one page-in batch behind the first five
    publish_all_confirmed(&ch, "paged-get", &bodies).await;
    let got = get_message_no_ack(&ch, "paged-get")
        .await
        .expect("a message");
    assert_eq!(got.message_count, 1499);
    let mut all = vec![String::from_utf8(got.delivery.data).unwrap()];
    all.extend(drain_bodies(&ch, "paged-get").await);
    assert_eq!(all, bodies);
}
