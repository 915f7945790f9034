//! One broker per data directory: a second warren started on a directory in use exits non-zero,
//! names the directory and its lock file, and leaves the LMDB files alone.

use std::path::Path;
use std::time::SystemTime;

use crate::common::*;
use crate::support::*;

/// Length and modification time of each LMDB file.
fn lmdb_files(dir: &Path) -> Vec<(String, u64, SystemTime)> {
    ["data.mdb", "lock.mdb"]
        .iter()
        .map(|name| {
            let meta = std::fs::metadata(dir.join("lmdb").join(name))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let modified = meta.modified().expect("mtime");
            (name.to_string(), meta.len(), modified)
        })
        .collect()
}

#[tokio::test]
async fn a_second_broker_on_the_same_data_directory_refuses_to_start() {
    let mut node = Node::start();
    let (conn, ch) = node.confirm_channel().await;
    declare_durable_queue(&ch, "locked-q").await;
    publish_all_confirmed(&ch, "locked-q", &numbered("m", 10)).await;
    let before = lmdb_files(node.path());

    let log = node.path().with_extension("second.log");
    let (status, stderr) = run_warren_to_exit(node.path(), &log);
    let _ = std::fs::remove_file(&log);
    assert!(!status.success(), "the second broker exited {status:?}");
    let dir = node.path().display().to_string();
    assert!(
        stderr.contains(&dir),
        "stderr does not name {dir}: {stderr}"
    );
    let lock_file = node.path().join(warren::store::LOCK_FILE);
    assert!(
        stderr.contains(&lock_file.display().to_string()),
        "stderr does not name the lock file: {stderr}"
    );
    assert!(!stderr.contains("listening"), "{stderr}");
    assert_eq!(
        lmdb_files(node.path()),
        before,
        "the LMDB files were touched"
    );

    // The first broker is unharmed and still owns its data.
    drop(conn);
    node.broker.assert_alive().await;
    let (_conn, ch) = node.channel().await;
    assert_eq!(drain_bodies(&ch, "locked-q").await, numbered("m", 10));
}
