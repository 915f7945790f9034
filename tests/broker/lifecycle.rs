//! warren's own command line and process lifecycle: the config file, flags, and a clean
//! shutdown on SIGTERM / SIGINT. These always spawn the warren binary (there is nothing to ask
//! RabbitMQ here).

use std::process::Command;

use lapin::{Connection, ConnectionProperties};

use crate::common::*;

/// A connection is closed with 320 CONNECTION_FORCED and the process exits with status 0.
async fn assert_signal_shuts_down_cleanly(signal: &str) {
    let mut broker = TestBroker::spawn(&[]);
    let mut raw = broker.raw_open().await;
    raw.open_channel(1).await;
    let status = broker.signal_and_wait(signal);
    assert!(
        status.success(),
        "exit status after SIG{signal}: {status:?}"
    );
    let (code, text, _, _) = raw.expect_connection_close().await;
    assert_eq!(code, 320, "{text}");
    assert!(text.starts_with("CONNECTION_FORCED"), "{text}");
    raw.expect_eof(WAIT).await;
}

#[tokio::test]
async fn sigterm_closes_connections_with_320_and_exits_zero() {
    assert_signal_shuts_down_cleanly("TERM").await;
}

#[tokio::test]
async fn sigint_closes_connections_with_320_and_exits_zero() {
    assert_signal_shuts_down_cleanly("INT").await;
}

#[tokio::test]
async fn config_file_sets_user_and_tune_values_and_flags_still_apply() {
    let dir = std::env::temp_dir().join(unique("warren-config"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("warren.toml");
    std::fs::write(
        &path,
        "default_user = \"app\"\ndefault_pass = \"s3cret\"\nframe_max = 65536\nchannel_max = 100\nheartbeat = 15\n\
         # --listen on the command line overrides this\nlisten = [\"127.0.0.1:1\"]\n",
    )
    .unwrap();
    let broker = TestBroker::spawn(&[
        "--config",
        path.to_str().unwrap(),
        "--log-level",
        "warren=debug",
    ]);
    let uri = format!("amqp://app:s3cret@{}/%2f", broker.addr());
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .expect("app/s3cret logs in");
    let cfg = conn.configuration();
    assert_eq!(
        (cfg.frame_max(), cfg.channel_max(), cfg.heartbeat()),
        (65536, 100, 15)
    );
    conn.close(200, "bye".into()).await.unwrap();
    // The configured user replaces guest.
    assert!(
        Connection::connect(&broker.uri(), ConnectionProperties::default())
            .await
            .is_err()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn invalid_config_file_exits_with_status_2_and_names_the_file() {
    let dir = std::env::temp_dir().join(unique("warren-badconfig"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.toml");
    std::fs::write(&path, "no_such_setting = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("no_such_setting"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
