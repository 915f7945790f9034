//! The warren broker the integration tests run against: the real binary
//! (`<workspace target>/debug/warren`, built on demand) on 127.0.0.1:<random port> with a data
//! directory of its own, killed and cleaned up on drop; and the flags that point warren-perf at
//! it. Shared by `smoke.rs` and `scale.rs` (each uses part of it).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use warren_perf::Config;

/// A warren process on 127.0.0.1:<random port> with its own data directory; killed on drop.
pub struct Broker {
    child: Child,
    /// host:port of its AMQP listener.
    pub addr: String,
    data_dir: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn warren_binary() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("..").join("target"));
    let bin = target.join("debug").join("warren");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "warren", "--bin", "warren"])
            .current_dir(manifest.join(".."))
            .status()
            .expect("run cargo build -p warren");
        assert!(status.success(), "cargo build -p warren failed");
    }
    assert!(bin.exists(), "no warren binary at {}", bin.display());
    bin
}

impl Broker {
    pub fn start(name: &str) -> Broker {
        Broker::start_with(name, None)
    }

    /// A broker with a TOML configuration file holding `config`.
    pub fn start_with_config(name: &str, config: &str) -> Broker {
        Broker::start_with(name, Some(config))
    }

    pub fn start_with(name: &str, config: Option<&str>) -> Broker {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let data_dir = std::env::temp_dir().join(format!(
            "warren-perf-test-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let mut command = Command::new(warren_binary());
        if let Some(config) = config {
            let path = data_dir.join("warren-perf-test.toml");
            std::fs::write(&path, config).expect("write config file");
            command.arg("--config").arg(path);
        }
        let mut child = command
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(["--management-listen", "127.0.0.1:0"])
            .args(["--prometheus-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn warren");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut addr = None;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(a) = line.strip_prefix("warren: listening on ") {
                addr = Some(a.trim().to_string());
                break;
            }
        }
        // Keep draining stdout so the broker never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let mut broker = Broker {
            child,
            addr: String::new(),
            data_dir,
        };
        broker.addr = addr.expect("warren printed no 'listening on' line");
        broker
    }

    pub fn config(&self, extra: &[&str]) -> Config {
        let uri = format!("amqp://guest:guest@{}/%2f", self.addr);
        let mut args = vec!["warren-perf", "--uri", &uri, "--quiet"];
        if !extra.contains(&"--time") {
            args.extend_from_slice(&["--time", "60"]);
        }
        args.extend_from_slice(extra);
        Config::from_args(args).expect("valid flags")
    }
}
