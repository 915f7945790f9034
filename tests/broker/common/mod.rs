//! The harness every broker test shares, one file per concern:
//!
//! - [`process`]: the broker under test, [`TestBroker`]: a warren process per test, or the
//!   external broker named by `WARREN_TEST_AMQP_URL` (e.g. a reference RabbitMQ).
//! - [`session`]: what most tests start from: a broker with a lapin channel open on it (and a
//!   queue or exchange declared), or with a raw client at connection.start or on channel 1.
//! - [`topology`]: declaring, binding, purging and deleting queues and exchanges through lapin.
//! - [`messages`]: publishing (with or without confirms), getting, consuming and counting
//!   messages through lapin.
//! - [`errors`]: the AMQP errors lapin reports, and RabbitMQ's (code, text) for them: one
//!   function per reply code, and the common texts in full.
//! - [`frames`]: frames and methods built by hand, for the raw client.
//! - [`raw_client`]: [`RawClient`], an AMQP client on a plain socket, for tests that need to see
//!   or craft individual frames.
//! - [`http`]: a client for the management HTTP API.
//!
//! Everything is re-exported here, so a test file needs only `use crate::common::*;`.
// Each test file uses a different part of the harness.
#![allow(dead_code)]

pub mod errors;
pub mod frames;
pub mod http;
pub mod messages;
pub mod process;
pub mod raw_client;
pub mod session;
pub mod topology;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use amq_protocol::types::{AMQPValue, FieldTable};

pub use errors::*;
pub use frames::*;
pub use messages::*;
pub use process::*;
pub use raw_client::*;
// The durability suite (which mounts this harness too) restarts its own brokers: no sessions.
#[allow(unused_imports)]
pub use session::*;
pub use topology::*;

/// Environment variable naming an external broker to run the suite against.
pub const EXTERNAL_URL_ENV: &str = "WARREN_TEST_AMQP_URL";

/// Default time to wait for something the broker should do "now".
pub const WAIT: Duration = Duration::from_secs(5);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name that is unique across tests, test runs and processes, so that the
/// suite can run against one shared RabbitMQ.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// Whether the suite runs against an external broker (e.g. RabbitMQ).
pub fn external() -> bool {
    std::env::var(EXTERNAL_URL_ENV)
        .map(|u| !u.is_empty())
        .unwrap_or(false)
}

/// A field table (arguments, headers) from `(key, value)` pairs.
pub fn table(entries: Vec<(&str, AMQPValue)>) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in entries {
        t.insert(k.into(), v);
    }
    t
}

/// A long-string ('S') field value.
pub fn long_str(s: &str) -> AMQPValue {
    AMQPValue::LongString(s.into())
}
