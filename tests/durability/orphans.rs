//! Records nothing references are dropped at start-up: a persistent message that every queue
//! refused (x-overflow reject-publish on a full durable queue) leaves a message record with no
//! index entry, and the next start removes it and says how many in its log.

use amq_protocol::types::AMQPValue;
use warren::store::{RecordCounts, count_in_dir};

use crate::common::*;
use crate::support::*;

#[tokio::test]
async fn message_records_every_queue_refused_are_dropped_at_the_next_start() {
    let dir = DataDir::new();
    let mut first = TestBroker::spawn_logged_in(dir.path(), &[], dir.path().join("first.log"));
    let conn = first.connect().await;
    let ch = confirm_channel_on(&conn).await;
    let args = table(vec![
        ("x-max-length", AMQPValue::LongInt(1)),
        ("x-overflow", long_str("reject-publish")),
    ]);
    declare_durable_queue_with(&ch, "full", args).await;
    publish_acked(&ch, "", "full", b"kept", persistent()).await;
    for i in 0..4 {
        let body = format!("refused-{i}");
        let confirmation = publish_confirmed(&ch, "", "full", body.as_bytes(), persistent()).await;
        assert!(
            confirmation.is_nack(),
            "a full queue refuses: {confirmation:?}"
        );
    }
    let _ = conn.close(200, "bye".into()).await;
    first.terminate();
    // The refused messages are stored with nothing pointing at them.
    let counts = count_in_dir(dir.path()).expect("count records");
    let expected_before = RecordCounts {
        messages: 5,
        queue_index: 1,
        refcounts: 1,
        schedule_index: 0,
    };
    assert_eq!(counts, expected_before);

    let mut second = TestBroker::spawn_logged_in(dir.path(), &[], dir.path().join("second.log"));
    let log = second.log_text();
    assert!(
        log.contains("recovery dropped 4 message records that nothing references"),
        "no log line about the dropped records:\n{log}"
    );
    let (conn, ch) = second.channel().await;
    assert_eq!(message_count(&ch, "full").await, 1);
    let _ = conn.close(200, "bye".into()).await;
    second.terminate();
    let after = RecordCounts {
        messages: 1,
        queue_index: 1,
        refcounts: 1,
        schedule_index: 0,
    };
    assert_eq!(count_in_dir(dir.path()).expect("count records"), after);
}
