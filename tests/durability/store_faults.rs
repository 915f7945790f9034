//! Storage faults. A commit that fails (injected in an in-process broker through
//! `Store::fail_next_commits`) nacks what it held, raises the disk alarm until a commit
//! succeeds, and loses nothing that was acked; a tx.commit it held closes its channel with 541.
//! A memory map configured far too small grows instead of failing.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::support::*;

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commits_nack_block_publishers_and_lose_no_acked_message() {
    let dir = DataDir::new();
    let (running, store, conn) = start_in_process(dir.path()).await;
    let ch = confirm_channel_on(&conn).await;
    declare_durable_queue(&ch, "faults").await;
    let before = numbered("before", 20);
    publish_all_confirmed(&ch, "faults", &before).await;

    // From here every commit fails until the test has seen a nack and connection.blocked.
    // (lapin holds publishes back while blocked: they go out from a task of their own.)
    store.fail_next_commits(u64::MAX);
    let during = numbered("during", 200);
    let (confirms, mut confirmed) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn({
        let (ch, during) = (ch.clone(), during.clone());
        async move {
            for body in &during {
                let confirm = ch
                    .basic_publish(
                        "".into(),
                        "faults".into(),
                        Default::default(),
                        body.as_bytes(),
                        persistent(),
                    )
                    .await
                    .expect("basic.publish");
                let _ = confirms.send(confirm);
            }
        }
    });
    let next_confirmation = async |confirmed: &mut tokio::sync::mpsc::UnboundedReceiver<_>| {
        let confirm: lapin::PublisherConfirm = tokio::time::timeout(WAIT, confirmed.recv())
            .await
            .expect("a publish goes out in time")
            .expect("the publisher task ends after the last publish");
        tokio::time::timeout(WAIT, confirm)
            .await
            .expect("a confirm in time")
            .expect("publisher confirm")
    };
    // Every attempt fails, so the first message cannot be acked, however its operations fall
    // into batches.
    let first = next_confirmation(&mut confirmed).await;
    assert!(first.is_nack(), "{first:?}");
    wait_for("connection.blocked", WAIT, || conn.status().blocked()).await;
    assert!(*store.watch_failing().borrow());

    // The disk works again: the alarm clears and the publisher is read again.
    store.fail_next_commits(0);
    wait_for("connection.unblocked", WAIT, || !conn.status().blocked()).await;
    let mut acked = Vec::new();
    for body in &during[1..] {
        if next_confirmation(&mut confirmed).await.is_ack() {
            acked.push(body.clone());
        }
    }
    let after = numbered("after", 20);
    publish_all_confirmed(&ch, "faults", &after).await;
    drop(ch);
    let _ = conn.close(200, "bye".into()).await;
    running.shutdown().await;

    // A real broker on the same directory has every acked message (nacked ones may be there).
    let broker = TestBroker::spawn_in(dir.path(), &[]);
    let (_conn, ch) = broker.channel().await;
    let recovered: HashSet<String> = drain_bodies(&ch, "faults").await.into_iter().collect();
    let missing: Vec<&String> = before
        .iter()
        .chain(&acked)
        .chain(&after)
        .filter(|body| !recovered.contains(*body))
        .collect();
    assert!(missing.is_empty(), "acked but lost: {missing:?}");
    let known: HashSet<&String> = before.iter().chain(&during).chain(&after).collect();
    assert!(recovered.iter().all(|body| known.contains(body)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tx_commit_the_store_cannot_commit_closes_the_channel_with_541() {
    let dir = DataDir::new();
    let (running, store, conn) = start_in_process(dir.path()).await;
    let ch = conn.create_channel().await.expect("channel");
    declare_durable_queue(&ch, "tx-faults").await;
    ch.tx_select().await.expect("tx.select");
    ch.basic_publish(
        "".into(),
        "tx-faults".into(),
        Default::default(),
        b"in a failed transaction",
        persistent(),
    )
    .await
    .expect("basic.publish");
    store.fail_next_commits(u64::MAX);
    let commit = tokio::time::timeout(WAIT, ch.tx_commit())
        .await
        .expect("tx.commit is answered, not left hanging");
    let (code, text) = expect_amqp_error(commit);
    assert_eq!(code, 541, "{text}");
    assert!(text.contains("tx.commit"), "{text}");
    store.fail_next_commits(0);

    // The connection and the broker go on.
    let ch = conn.create_channel().await.expect("a new channel");
    declare_durable_queue(&ch, "tx-faults").await;
    let _ = conn.close(200, "bye".into()).await;
    running.shutdown().await;
}

#[tokio::test]
async fn a_tiny_configured_map_grows_and_keeps_every_confirmed_message() {
    let mut node = Node::start_with_config("store_map_size_bytes = 1048576\n");
    let (_conn, ch) = node.confirm_channel().await;
    declare_durable_queue(&ch, "big").await;
    // 32 MiB of persistent messages into a 1 MiB map.
    let padding = "x".repeat(64 * 1024);
    let bodies: Vec<String> = (0..512).map(|i| format!("{i:04}-{padding}")).collect();
    for chunk in bodies.chunks(64) {
        publish_all_confirmed(&ch, "big", chunk).await;
    }
    let (_conn, ch) = node.restart_and_open_channel(Stop::Kill).await;
    let got = drain_bodies(&ch, "big").await;
    assert_eq!(got.len(), bodies.len());
    assert!(got == bodies, "messages differ after the restart");
}
