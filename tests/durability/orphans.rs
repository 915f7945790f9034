//! Records nothing references are dropped at start-up: a persistent message that every queue
//! refused (x-overflow reject-publish on a full durable queue) leaves a message record with no
//! index entry, and the next start removes it and says how many in its log.

use amq_protocol::types::AMQPValue;
use lapin::options::ConfirmSelectOptions;
use warren::store::{RecordCounts, count_in_dir};

use crate::common::*;
use crate::logged::LoggedBroker;
use crate::support::*;
// These durability versions take `durable` / binding arguments; the broker suite has its own.
use crate::support::publish_confirmed;

#[tokio::test]
async fn message_records_every_queue_refused_are_dropped_at_the_next_start() {
    let dir = DataDir::new();
    let first = LoggedBroker::spawn(dir.path(), &[], dir.path().join("first.log"));
    let conn = first.connect().await;
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirm.select");
    let args = table(vec![
        ("x-max-length", AMQPValue::LongInt(1)),
        ("x-overflow", long_str("reject-publish")),
    ]);
    declare_durable_queue(&ch, "full", args).await;
    publish_confirmed(&ch, "", "full", b"kept", persistent()).await;
    for i in 0..4 {
        let confirm = ch
            .basic_publish(
                "".into(),
                "full".into(),
                Default::default(),
                format!("refused-{i}").as_bytes(),
                persistent(),
            )
            .await
            .expect("basic.publish");
        let confirmation = tokio::time::timeout(WAIT, confirm)
            .await
            .expect("a confirm in time")
            .expect("publisher confirm");
        assert!(
            confirmation.is_nack(),
            "a full queue refuses: {confirmation:?}"
        );
    }
    let _ = conn.close(200, "bye".into()).await;
    first.stop();
    // The refused messages are stored with nothing pointing at them.
    let counts = count_in_dir(dir.path()).expect("count records");
    let expected_before = RecordCounts {
        messages: 5,
        queue_index: 1,
        refcounts: 1,
    };
    assert_eq!(counts, expected_before);

    let second = LoggedBroker::spawn(dir.path(), &[], dir.path().join("second.log"));
    let log = second.log_text();
    assert!(
        log.contains("recovery dropped 4 message records that nothing references"),
        "no log line about the dropped records:\n{log}"
    );
    let conn = second.connect().await;
    let ch = conn.create_channel().await.expect("channel");
    assert_eq!(message_count(&ch, "full").await, 1);
    let _ = conn.close(200, "bye".into()).await;
    second.stop();
    let after = RecordCounts {
        messages: 1,
        queue_index: 1,
        refcounts: 1,
    };
    assert_eq!(count_in_dir(dir.path()).expect("count records"), after);
}
