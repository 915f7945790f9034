//! The broker's millisecond clock for message TTLs and queue expiry: monotonic, starting at 1 at
//! process start (so 0 can mean "never").

use std::sync::OnceLock;
use std::time::Instant;

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

pub fn now_ms() -> u64 {
    start().elapsed().as_millis() as u64 + 1
}
