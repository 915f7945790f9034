//! How the store's threads (writer.rs, checkpoint.rs) retry what the disk refused: a wait that
//! doubles from 20 ms up to 1 s between attempts, and how many attempts a store that is shutting
//! down still makes before it leaves the rest to the next start.

use std::time::Duration;

/// Attempts at a failing write or checkpoint once the store is stopping.
pub const SHUTDOWN_ATTEMPTS: u32 = 5;
const FIRST_WAIT: Duration = Duration::from_millis(20);
const MAX_WAIT: Duration = Duration::from_secs(1);

pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Self {
        Backoff { next: FIRST_WAIT }
    }

    /// Sleeps before the next attempt; the one after waits twice as long (up to 1 s).
    pub fn wait(&mut self) {
        std::thread::sleep(self.next);
        self.next = (self.next * 2).min(MAX_WAIT);
    }

    /// An attempt succeeded: the next failure waits the shortest time again.
    pub fn reset(&mut self) {
        self.next = FIRST_WAIT;
    }
}
