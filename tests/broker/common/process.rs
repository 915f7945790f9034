//! The broker under test: a warren process in a fresh data directory per test (or on a directory
//! the test keeps, to restart on it), or the external broker named by `WARREN_TEST_AMQP_URL`; and
//! the lapin or raw connections to it.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    net::{SocketAddr, ToSocketAddrs},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use lapin::{Channel, Connection, ConnectionProperties};

use super::{EXTERNAL_URL_ENV, RawClient, WAIT, declare_tmp_queue, unique};

/// One broker for one test: the warren binary in a fresh data directory, or
/// the external broker named by `WARREN_TEST_AMQP_URL`.
pub struct TestBroker {
    child: Option<Child>,
    data_dir: Option<PathBuf>,
    /// Where the broker's stderr goes, for [`TestBroker::spawn_logged_in`].
    log: Option<PathBuf>,
    addr: SocketAddr,
    uri: String,
    /// The management API's base URL (`http://127.0.0.1:PORT`), when the broker serves it.
    management: Option<String>,
    /// The Prometheus endpoint's base URL, likewise.
    prometheus: Option<String>,
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
        Self::spawn_on(data_dir, true, extra_args, None)
    }

    /// Spawns the warren binary on an existing data directory (`--data-dir data_dir`), e.g. to
    /// restart a broker on the state a previous one left. Unlike [`TestBroker::spawn`], the
    /// directory is NOT deleted when the broker is dropped: the caller owns it.
    pub fn spawn_in(data_dir: &Path, extra_args: &[&str]) -> TestBroker {
        std::fs::create_dir_all(data_dir).expect("create broker data dir");
        Self::spawn_on(data_dir.to_path_buf(), false, extra_args, None)
    }

    /// Like [`TestBroker::spawn_in`], with the broker's stderr written to `log` (read it with
    /// [`TestBroker::log_text`]), for tests of what warren logs.
    pub fn spawn_logged_in(data_dir: &Path, extra_args: &[&str], log: PathBuf) -> TestBroker {
        std::fs::create_dir_all(data_dir).expect("create broker data dir");
        Self::spawn_on(data_dir.to_path_buf(), false, extra_args, Some(log))
    }

    fn spawn_on(
        data_dir: PathBuf,
        delete_on_drop: bool,
        extra_args: &[&str],
        log: Option<PathBuf>,
    ) -> TestBroker {
        let stderr = match &log {
            Some(path) => Stdio::from(File::create(path).expect("create the broker's log file")),
            None if std::env::var_os("WARREN_TEST_LOG").is_some() => Stdio::inherit(),
            None => Stdio::null(),
        };
        let mut child = warren_command(&data_dir, extra_args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn warren: {e}"));
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
            log,
            addr: "127.0.0.1:0".parse().unwrap(),
            uri: String::new(),
            management: None,
            prometheus: None,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    // Printed before the AMQP line.
                    let line = line.trim();
                    if let Some(url) = line.strip_prefix("warren: management listening on ") {
                        broker.management = Some(url.to_string());
                    }
                    if let Some(url) = line.strip_prefix("warren: prometheus listening on ") {
                        broker.prometheus = Some(url.to_string());
                    }
                    if let Some(rest) = line.trim().strip_prefix("warren: listening on ") {
                        broker.addr = rest
                            .trim()
                            .parse()
                            .unwrap_or_else(|e| panic!("bad listen line {line:?}: {e}"));
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!(
                    "broker did not print 'warren: listening on' within 20 s{}",
                    broker.log_excerpt()
                ),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let status = broker.child.as_mut().unwrap().wait();
                    panic!(
                        "broker exited before listening: {status:?}{}",
                        broker.log_excerpt()
                    )
                }
            }
        }
        broker.uri = format!("amqp://guest:guest@{}/%2f", broker.addr);
        broker
    }

    /// What a broker started with [`TestBroker::spawn_logged_in`] has logged so far.
    pub fn log_text(&self) -> String {
        let log = self.log.as_ref().expect("only a logged broker has a log");
        std::fs::read_to_string(log).unwrap_or_default()
    }

    /// The log of a logged broker, for a failure message ("" if it logs nowhere).
    fn log_excerpt(&self) -> String {
        match &self.log {
            Some(_) => format!("; its log:\n{}", self.log_text()),
            None => String::new(),
        }
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
        // `WARREN_TEST_MANAGEMENT_URL`, else rabbitmq-local's convention: AMQP port + 10000.
        let management = std::env::var("WARREN_TEST_MANAGEMENT_URL")
            .unwrap_or_else(|_| format!("http://{}:{}", addr.ip(), addr.port() + 10000));
        TestBroker {
            child: None,
            data_dir: None,
            log: None,
            addr,
            uri: url,
            management: Some(management),
            prometheus: std::env::var("WARREN_TEST_PROMETHEUS_URL").ok(),
        }
    }

    /// Spawns warren with a TOML configuration file holding `toml` (plus the usual
    /// `--listen`/`--data-dir`), whatever `WARREN_TEST_AMQP_URL` says.
    pub fn spawn_with_config(toml: &str) -> TestBroker {
        with_config_file(toml, Self::spawn)
    }

    /// [`TestBroker::spawn_in`] with a TOML configuration file holding `toml`. A broker started
    /// on the same directory later does not see it.
    pub fn spawn_in_with_config(data_dir: &Path, toml: &str) -> TestBroker {
        with_config_file(toml, |args| Self::spawn_in(data_dir, args))
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

    /// Whether this is the broker named by `WARREN_TEST_AMQP_URL` rather than a warren process.
    pub fn is_external(&self) -> bool {
        self.child.is_none()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn uri(&self) -> String {
        self.uri.clone()
    }

    /// The Prometheus endpoint's base URL; panics if this broker does not serve it.
    pub fn prometheus_url(&self) -> String {
        self.prometheus
            .clone()
            .expect("the broker printed no prometheus listener")
    }

    pub fn has_management(&self) -> bool {
        self.management.is_some()
    }

    /// The management API's base URL; panics if this broker does not serve it.
    pub fn management_url(&self) -> String {
        self.management
            .clone()
            .expect("the broker printed no management listener")
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
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
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
        wait_for_exit(child, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("broker still running 10 s after SIG{signal}"))
    }

    /// Stops the broker cleanly: SIGTERM, and the process must exit with status 0.
    pub fn terminate(&mut self) {
        let status = self.signal_and_wait("TERM");
        assert!(status.success(), "exit status after SIGTERM: {status:?}");
    }

    /// Crashes the broker: SIGKILL, then waits for the process to be gone.
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

/// The warren binary on `data_dir` (`--listen 127.0.0.1:0 --data-dir DATA_DIR EXTRA_ARGS`), stdin
/// closed; the caller says where stdout and stderr go.
pub fn warren_command(data_dir: &Path, extra_args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warren"));
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--management-listen",
            "127.0.0.1:0",
            "--prometheus-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra_args)
        .stdin(Stdio::null());
    command
}

/// Runs warren on `data_dir` expecting it to exit by itself (e.g. refuse to start) within 10 s;
/// its exit status and what it wrote to stderr (kept in `log`).
pub fn run_warren_to_exit(data_dir: &Path, log: &Path) -> (ExitStatus, String) {
    let stderr = File::create(log).expect("create the broker's log file");
    let mut child = warren_command(data_dir, &[])
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn warren");
    let limit = Duration::from_secs(10);
    let Some(status) = wait_for_exit(&mut child, limit) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("warren still running after {limit:?}");
    };
    (status, std::fs::read_to_string(log).unwrap_or_default())
}

/// Polls `child` until it exits (its status) or `limit` passes (None).
fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for warren") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `toml` to a configuration file of its own, spawns a broker with `--config FILE`
/// (`spawn` gets the extra arguments), and removes the file: warren reads it once, at start-up.
fn with_config_file(toml: &str, spawn: impl FnOnce(&[&str]) -> TestBroker) -> TestBroker {
    let path = std::env::temp_dir().join(format!("{}.toml", unique("warren-config")));
    std::fs::write(&path, toml).expect("write config file");
    let broker = spawn(&["--config", path.to_str().expect("utf-8 temp path")]);
    let _ = std::fs::remove_file(&path);
    broker
}
