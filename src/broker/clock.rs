//! The broker's millisecond clock for message TTLs and queue expiry: monotonic, starting at 1 at
//! process start (so 0 can mean "never").

use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

pub fn now_ms() -> u64 {
    start().elapsed().as_millis() as u64 + 1
}

/// The instant from which [`now_ms`] returns at least `ms`, for timers. Times too far ahead for
/// an `Instant` become a year from now (a timer then wakes once a year to look again).
pub fn instant_at(ms: u64) -> Instant {
    start()
        .checked_add(Duration::from_millis(ms.saturating_sub(1)))
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600))
}
