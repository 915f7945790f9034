//! A damaged record never crashes the broker or stops it starting: the queue whose stored
//! message is damaged does not load (one clear log line), every other queue does.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lapin::{Connection, ConnectionProperties};

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

/// Starts warren on `dir` with its log captured; returns the child, its address and log path.
/// Kills the broker when the test ends, failing or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_logged(dir: &std::path::Path) -> (KillOnDrop, String, std::path::PathBuf) {
    let log = dir.join("broker.log");
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_warren"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        assert!(Instant::now() < deadline, "broker did not start");
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(addr) = line.strip_prefix("warren: listening on ") {
                    break addr.trim().to_string();
                }
            }
            _ => panic!(
                "broker exited before listening: {:?}",
                std::fs::read_to_string(&log)
            ),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr, log)
}

#[tokio::test]
async fn damaged_message_record_fails_only_its_queue_with_a_log_line() {
    let mut node = Node::start();
    let marker = format!("DAMAGE-ME-{}", unique("m"));
    {
        let (_c, ch) = node.confirm_channel().await;
        declare_durable_queue(&ch, "damaged-q", Default::default()).await;
        declare_durable_queue(&ch, "healthy-q", Default::default()).await;
        publish_all_confirmed(&ch, "damaged-q", std::slice::from_ref(&marker)).await;
        publish_all_confirmed(&ch, "healthy-q", &["fine".to_string()]).await;
    }
    node.stop(Stop::Graceful);
    damage(node.path(), marker.as_bytes());

    let (_broker, addr, log) = start_logged(node.path());
    let uri = format!("amqp://guest:guest@{addr}/%2f");
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect("broker serves");
    assert!(
        queue_exists(&conn, "healthy-q").await,
        "the healthy queue loads"
    );
    assert!(
        !queue_exists(&conn, "damaged-q").await,
        "the damaged queue does not load"
    );
    let ch = conn.create_channel().await.unwrap();
    assert_eq!(drain(&ch, "healthy-q").await, vec!["fine".to_string()]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("queue 'damaged-q' in vhost '/' not loaded") && text.contains("checksum"),
        "log: {text}"
    );
}
