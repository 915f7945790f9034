//! A warren process with a plain and a TLS listener (both on free ports, read from its
//! `warren: listening on` / `warren: listening for TLS on` lines), its stderr kept in a log
//! file; and warren started with a TLS setup that must stop it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::{unique, warren_command};

use super::pki::Pki;

pub struct TlsBroker {
    child: Child,
    data_dir: PathBuf,
    log: PathBuf,
    pub plain: SocketAddr,
    pub tls: SocketAddr,
}

/// Writes a config file holding `toml` with the log level at info; its path.
fn config_file(data_dir: &std::path::Path, toml: &str) -> PathBuf {
    let path = data_dir.join("warren.toml");
    std::fs::write(&path, format!("log_level = \"info\"\n{toml}")).expect("write the config file");
    path
}

/// A config asking for a TLS listener on a free port, with `top` keys and `ssl_options`.
fn tls_config(top: &str, ssl_options: &str) -> String {
    format!("listen_tls = [\"127.0.0.1:0\"]\n{top}\n{ssl_options}")
}

fn fresh_data_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("warren-tls-test"));
    std::fs::create_dir_all(&dir).expect("create the data dir");
    dir
}

impl TlsBroker {
    /// warren with `[ssl_options]` naming the test's CA, server certificate and key, plus
    /// `ssl_extra` lines in that table and `top` keys (e.g. `default_user = "..."`).
    pub fn start(pki: &Pki, top: &str, ssl_extra: &str) -> TlsBroker {
        Self::spawn(&tls_config(top, &pki.ssl_options(ssl_extra)), &[])
    }

    /// warren with the config `toml` and extra command-line arguments.
    pub fn spawn(toml: &str, args: &[&str]) -> TlsBroker {
        let data_dir = fresh_data_dir();
        let config = config_file(&data_dir, toml);
        let log = data_dir.with_extension("log");
        let stderr = std::fs::File::create(&log).expect("create the log file");
        let mut all_args = vec!["--config", config.to_str().unwrap()];
        all_args.extend_from_slice(args);
        let mut child = warren_command(&data_dir, &all_args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn warren");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // Drained for the child's whole life, so it never blocks writing to stdout.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let (mut plain, mut tls) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while plain.is_none() || tls.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                panic!(
                    "warren printed no listening lines; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            };
            if let Some(a) = line.strip_prefix("warren: listening on ") {
                plain = Some(a.trim().parse().expect("plain address"));
            } else if let Some(a) = line.strip_prefix("warren: listening for TLS on ") {
                tls = Some(a.trim().parse().expect("TLS address"));
            }
        }
        TlsBroker {
            child,
            data_dir,
            log,
            plain: plain.unwrap(),
            tls: tls.unwrap(),
        }
    }

    /// What the broker has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; the exit status, once the process is gone (at most 15 s).
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for warren") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "warren still running 15 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn assert_running(&mut self) {
        assert!(
            matches!(self.child.try_wait(), Ok(None)),
            "warren exited; its log:\n{}",
            self.log_text()
        );
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Starts warren with this TLS configuration, which must make it exit by itself (within 15 s):
/// its status and what it wrote to stderr.
pub fn start_must_fail(top: &str, ssl_options: &str) -> (ExitStatus, String) {
    let data_dir = fresh_data_dir();
    let config = config_file(&data_dir, &tls_config(top, ssl_options));
    let log = data_dir.with_extension("log");
    let stderr = std::fs::File::create(&log).expect("create the log file");
    let mut child = warren_command(&data_dir, &["--config", config.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn warren");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for warren") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("warren started with a TLS setup that cannot work");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&data_dir);
    let _ = std::fs::remove_file(&log);
    (status, text)
}
