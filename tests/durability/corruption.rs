//! A damaged record never crashes the broker or stops it starting: the queue whose stored
//! message is damaged does not load (one clear log line), every other queue does.

use crate::common::*;
use crate::support::*;

/// Flips one byte inside every occurrence of `marker` in the LMDB data file (copy-on-write
/// leaves stale copies of pages around; the live one is among them).
fn damage(data_dir: &std::path::Path, marker: &[u8]) {
    let file = data_dir.join("lmdb").join("data.mdb");
    let mut bytes = std::fs::read(&file).expect("read data.mdb");
    let hits: Vec<usize> = bytes
        .windows(marker.len())
        .enumerate()
        .filter(|(_, w)| *w == marker)
        .map(|(i, _)| i)
        .collect();
    assert!(!hits.is_empty(), "marker stored in data.mdb");
    for at in hits {
        bytes[at + marker.len() / 2] ^= 0x5A;
    }
    std::fs::write(&file, bytes).expect("write data.mdb");
}

#[tokio::test]
async fn damaged_message_record_fails_only_its_queue_with_a_log_line() {
    let mut node = Node::start();
    let marker = format!("DAMAGE-ME-{}", unique("m"));
    {
        let (_c, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, "damaged-q").await;
        declare_durable_queue(&ch, "healthy-q").await;
        publish_all_confirmed(&ch, "damaged-q", std::slice::from_ref(&marker)).await;
        publish_all_confirmed(&ch, "healthy-q", &["fine".to_string()]).await;
    }
    node.stop(Stop::Graceful);
    damage(node.path(), marker.as_bytes());

    let broker = TestBroker::spawn_logged_in(node.path(), &[], node.path().join("broker.log"));
    let conn = broker.connect().await;
    assert!(
        queue_exists(&conn, "healthy-q").await,
        "the healthy queue loads"
    );
    assert!(
        !queue_exists(&conn, "damaged-q").await,
        "the damaged queue does not load"
    );
    let ch = conn.create_channel().await.unwrap();
    assert_eq!(
        drain_bodies(&ch, "healthy-q").await,
        vec!["fine".to_string()]
    );
    let text = broker.log_text();
    assert!(
        text.contains("queue 'damaged-q' in vhost '/' not loaded") && text.contains("checksum"),
        "log: {text}"
    );
}
