//! Backlogs larger than a queue's in-memory budget: a broker that keeps only a few ready
//! messages per durable queue in memory pages the rest in from the store (without the queue
//! lock held during the read) while publishers, consumers and basic.get go on.

use amq_protocol::types::FieldTable;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicQosOptions};

use crate::common::*;
use crate::support::*;

/// A broker that pages every durable queue beyond 5 ready messages.
fn paging_broker(dir: &DataDir) -> TestBroker {
    let config = dir.path().join("paging.toml");
    std::fs::write(&config, "queue_page_threshold = 5\n").expect("write config");
    let config = config.to_str().expect("utf-8 path").to_string();
    TestBroker::spawn_in(dir.path(), &["--config", &config])
}

#[tokio::test]
async fn a_paged_backlog_reaches_a_consumer_in_order_while_publishing_goes_on() {
    let dir = DataDir::new();
    let broker = paging_broker(&dir);
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    declare_durable_queue(&ch, "paged", FieldTable::default()).await;
    let first = numbered("a", 300);
    publish_all_confirmed(&ch, "paged", &first).await;

    // More arrive while the consumer works through the backlog, one page-in after another.
    let second = numbered("b", 200);
    let publisher = tokio::spawn({
        let broker_ch = broker.channel().await;
        let second = second.clone();
        async move {
            let (_conn, ch) = broker_ch;
            ch.confirm_select(Default::default()).await.unwrap();
            for chunk in second.chunks(20) {
                publish_all_confirmed(&ch, "paged", chunk).await;
            }
        }
    });
    let (_conn2, consumer_ch) = broker.channel().await;
    consumer_ch
        .basic_qos(7, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = consumer_ch
        .basic_consume(
            "paged".into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < first.len() + second.len() {
        let d = next_delivery(&mut consumer).await;
        got.push(String::from_utf8(d.data.clone()).unwrap());
        d.ack(BasicAckOptions::default()).await.unwrap();
    }
    publisher.await.unwrap();
    let expected: Vec<String> = first.into_iter().chain(second).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn basic_get_drains_a_paged_backlog_in_order() {
    let dir = DataDir::new();
    let broker = paging_broker(&dir);
    let (_conn, ch) = broker.channel().await;
    ch.confirm_select(Default::default()).await.unwrap();
    declare_durable_queue(&ch, "paged-get", FieldTable::default()).await;
    let bodies = numbered("m", 1500); // more than one page-in batch behind the first five
    publish_all_confirmed(&ch, "paged-get", &bodies).await;
    let got = ch
        .basic_get("paged-get".into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(got.message_count, 1499);
    let mut all = vec![String::from_utf8(got.delivery.data).unwrap()];
    all.extend(drain(&ch, "paged-get").await);
    assert_eq!(all, bodies);
}
