//! The broker under test: a warren process in a fresh data directory per test, or the external
//! broker named by `WARREN_TEST_AMQP_URL`; and the lapin or raw connections to it.

use std::{
    io::{BufRead, BufReader},
    net::{SocketAddr, ToSocketAddrs},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use lapin::{Channel, Connection, ConnectionProperties};

use super::{EXTERNAL_URL_ENV, RawClient, WAIT, declare_tmp_queue, unique};

/// One broker for one test: the warren binary in a fresh data directory, or
/// the external broker named by `WARREN_TEST_AMQP_URL`.
pub struct TestBroker {
    child: Option<Child>,
    data_dir: Option<PathBuf>,
    addr: SocketAddr,
    uri: String,
}

impl TestBroker {
    /// The broker for one test: the external one when `WARREN_TEST_AMQP_URL` is set, else a
    /// fresh warren process.
    pub fn start() -> TestBroker {
        if let Ok(url) = std::env::var(EXTERNAL_URL_ENV)
            && !url.is_empty()
        {
            return Self::external(url);
        }
        Self::spawn(&[])
    }

    /// Spawns the warren binary with extra command-line arguments (after `--listen 127.0.0.1:0
    /// --data-dir DIR`), whatever `WARREN_TEST_AMQP_URL` says: for tests of warren's own CLI.
    pub fn spawn(extra_args: &[&str]) -> TestBroker {
        let data_dir = std::env::temp_dir().join(unique("warren-test"));
        std::fs::create_dir_all(&data_dir).expect("create broker data dir");
        Self::spawn_on(data_dir, true, extra_args)
    }

    /// Spawns the warren binary on an existing data directory (`--data-dir data_dir`), e.g. to
    /// restart a broker on the state a previous one left. Unlike [`TestBroker::spawn`], the
    /// directory is NOT deleted when the broker is dropped: the caller owns it.
    #[allow(dead_code)]
    pub fn spawn_in(data_dir: &std::path::Path, extra_args: &[&str]) -> TestBroker {
        std::fs::create_dir_all(data_dir).expect("create broker data dir");
        Self::spawn_on(data_dir.to_path_buf(), false, extra_args)
    }

    fn spawn_on(data_dir: PathBuf, delete_on_drop: bool, extra_args: &[&str]) -> TestBroker {
        let bin = env!("CARGO_BIN_EXE_warren");
        let show_log = std::env::var_os("WARREN_TEST_LOG").is_some();
        let mut child = Command::new(bin)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if show_log {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // Keep draining stdout for the child's whole life so it never blocks
        // (or dies of SIGPIPE) writing to it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => {
                        let _ = tx.send(line);
                    }
                    Err(_) => break,
                }
            }
        });
        let mut broker = TestBroker {
            child: Some(child),
            data_dir: delete_on_drop.then_some(data_dir),
            addr: "127.0.0.1:0".parse().unwrap(),
            uri: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.trim().strip_prefix("warren: listening on ") {
                        broker.addr = rest
                            .trim()
                            .parse()
                            .unwrap_or_else(|e| panic!("bad listen line {line:?}: {e}"));
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    panic!("broker did not print 'warren: listening on' within 20 s")
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let status = broker.child.as_mut().unwrap().wait();
                    panic!("broker exited before listening: {status:?}")
                }
            }
        }
        broker.uri = format!("amqp://guest:guest@{}/%2f", broker.addr);
        broker
    }

    fn external(url: String) -> TestBroker {
        // amqp://user:pass@host:port/vhost
        let rest = url
            .strip_prefix("amqp://")
            .unwrap_or_else(|| panic!("{EXTERNAL_URL_ENV} must be an amqp:// URL"));
        let authority = rest.split('/').next().unwrap_or("");
        let hostport = authority.rsplit('@').next().unwrap_or("");
        let hostport = if hostport.contains(':') {
            hostport.to_string()
        } else {
            format!("{hostport}:5672")
        };
        let addr = hostport
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("cannot resolve {hostport}"));
        TestBroker {
            child: None,
            data_dir: None,
            addr,
            uri: url,
        }
    }

    /// Spawns warren with a TOML configuration file holding `toml` (plus the usual
    /// `--listen`/`--data-dir`), whatever `WARREN_TEST_AMQP_URL` says.
    pub fn spawn_with_config(toml: &str) -> TestBroker {
        let path = std::env::temp_dir().join(format!("{}.toml", unique("warren-config")));
        std::fs::write(&path, toml).expect("write config file");
        let broker = Self::spawn(&["--config", path.to_str().expect("utf-8 temp path")]);
        let _ = std::fs::remove_file(&path);
        broker
    }

    /// The resident memory of a spawned broker process, in kB (None for an external broker).
    pub fn rss_kb(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn uri(&self) -> String {
        self.uri.clone()
    }

    /// A lapin connection as guest to vhost `/`.
    pub async fn connect(&self) -> Connection {
        tokio::time::timeout(
            WAIT,
            Connection::connect(&self.uri, ConnectionProperties::default()),
        )
        .await
        .expect("lapin connect timed out")
        .expect("lapin connect")
    }

    /// A lapin connection plus one open channel.
    pub async fn channel(&self) -> (Connection, Channel) {
        let conn = self.connect().await;
        let ch = conn.create_channel().await.expect("create channel");
        (conn, ch)
    }

    /// A raw client that has completed the handshake (guest, vhost `/`).
    pub async fn raw_open(&self) -> RawClient {
        let mut raw = RawClient::connect(self.addr).await;
        raw.handshake().await;
        raw
    }

    /// Whether a spawned broker process is still alive (always true for an
    /// external broker).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// Sends `signal` (e.g. "TERM") to the broker process and waits up to 10 s for it to exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> std::process::ExitStatus {
        let child = self
            .child
            .as_mut()
            .expect("only a spawned broker can be signalled");
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("wait for broker") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "broker still running 10 s after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Crashes the broker: SIGKILL, then waits for the process to be gone.
    #[allow(dead_code)]
    pub fn kill9(&mut self) {
        let child = self
            .child
            .as_mut()
            .expect("only a spawned broker can be killed");
        child.kill().expect("SIGKILL the broker");
        child.wait().expect("wait for the killed broker");
    }

    /// Asserts that the broker survived whatever the test did and still
    /// accepts and serves a fresh connection.
    pub async fn assert_alive(&mut self) {
        assert!(self.is_running(), "broker process died");
        let conn = self.connect().await;
        let ch = conn
            .create_channel()
            .await
            .expect("channel on fresh connection");
        let q = declare_tmp_queue(&ch).await;
        assert!(q.starts_with("amq.gen-"));
        conn.close(200, "bye".into())
            .await
            .expect("close fresh connection");
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(dir) = self.data_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
