//! The write-ahead log under the confirm (issue #19): every publisher confirm of a persistent
//! message waits for a sync of the log (counted by the store, so a change that drops the sync
//! before the confirm fails here), and what was confirmed just before a `kill -9` — before any
//! checkpoint could put it in LMDB — is replayed from the log at the next start.

use std::time::Duration;

use crate::common::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_confirm_of_a_persistent_message_waits_for_a_log_sync() {
    let dir = DataDir::new();
    let (running, store, conn) = start_in_process(dir.path()).await;
    let ch = confirm_channel_on(&conn).await;
    declare_durable_queue(&ch, "synced").await;
    let confirms = 200;
    for i in 0..confirms {
        let (syncs, checkpoints) = (store.log_syncs(), store.checkpoints());
        publish_acked(&ch, "", "synced", format!("m{i}").as_bytes(), persistent()).await;
        // The confirm went out after the log was synced (or, rarely, after a checkpoint made
        // the message durable in LMDB first): one of the two counters moved.
        assert!(
            store.log_syncs() > syncs || store.checkpoints() > checkpoints,
            "confirm {i} went out without a sync of the log ({syncs} syncs before and after)"
        );
    }
    assert!(
        store.log_syncs() >= confirms,
        "{} log syncs for {confirms} confirms",
        store.log_syncs()
    );
    let _ = conn.close(200, "bye".into()).await;
    running.shutdown().await;
}

#[tokio::test]
async fn messages_confirmed_just_before_kill9_are_replayed_from_the_log() {
    let dir = DataDir::new();
    let mut first = TestBroker::spawn_logged_in(dir.path(), &[], dir.path().join("first.log"));
    let conn = first.connect().await;
    let ch = confirm_channel_on(&conn).await;
    declare_durable_queue(&ch, "replayed").await;
    // Let the declare's own writes settle, then confirm a burst and kill at once: well inside
    // the 50 ms a checkpoint waits for, so the messages are only in the log.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = numbered("r", 300);
    publish_all_confirmed(&ch, "replayed", &sent).await;
    first.kill9();

    let mut second = TestBroker::spawn_logged_in(dir.path(), &[], dir.path().join("second.log"));
    let (conn, ch) = second.channel().await;
    assert_eq!(bodies(&get_all(&ch, "replayed").await), sent);
    let log = second.log_text();
    assert!(
        log.contains("write-ahead log records"),
        "no replay logged:\n{log}"
    );
    let _ = conn.close(200, "bye".into()).await;
    second.terminate();
}
