//! A warren process whose stderr goes to a file, for tests that read what it logged — and a
//! way to run one that is expected to refuse to start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use lapin::{Connection, ConnectionProperties};

use crate::common::WAIT;

pub struct LoggedBroker {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

fn command(data_dir: &Path, extra_args: &[&str], log: &Path) -> Command {
    let stderr = std::fs::File::create(log).expect("create the broker's log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_warren"));
    command
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(extra_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr);
    command
}

impl LoggedBroker {
    /// Starts warren on `data_dir`, its stderr in `log`, and waits until it listens.
    pub fn spawn(data_dir: &Path, extra_args: &[&str], log: PathBuf) -> LoggedBroker {
        use std::io::BufRead;
        let mut child = command(data_dir, extra_args, &log)
            .spawn()
            .expect("spawn warren");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let addr = loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("warren: listening on ") {
                        break addr.trim().parse().expect("listen address");
                    }
                }
                Err(e) => panic!(
                    "broker did not listen ({e}); its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            }
        };
        LoggedBroker { child, addr, log }
    }

    pub async fn connect(&self) -> Connection {
        let uri = format!("amqp://guest:guest@{}/%2f", self.addr);
        tokio::time::timeout(
            WAIT,
            Connection::connect(&uri, ConnectionProperties::default()),
        )
        .await
        .expect("lapin connect timed out")
        .expect("lapin connect")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let status = wait_with_deadline(&mut self.child, Duration::from_secs(10));
        assert!(status.success(), "exit status after SIGTERM: {status:?}");
    }
}

impl Drop for LoggedBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs warren on `data_dir` expecting it to exit by itself within 10 s; its status and stderr.
pub fn run_to_exit(data_dir: &Path, log: &Path) -> (ExitStatus, String) {
    let mut child = command(data_dir, &[], log).spawn().expect("spawn warren");
    let status = wait_with_deadline(&mut child, Duration::from_secs(10));
    (status, std::fs::read_to_string(log).unwrap_or_default())
}

fn wait_with_deadline(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for warren") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("warren still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
