//! Fuzzing the connection state machine: arbitrary bytes become a client's byte stream
//! ([`script`]), which drives one real connection task in-process ([`drive`]) — the handshake,
//! channels, content assembly, every method handler and the broker behind them, not only the
//! codec. The cargo-fuzz target in `fuzz/` and the property test below both call [`run`].
//! [`wal_record`] does the same for the write-ahead log's record decoder (the store reads those
//! bytes back from disk after a crash, torn or damaged as they may be), and
//! [`management_requests`] for the management API and the Prometheus endpoint (requests from
//! anyone who can reach the port, before and after login).
//!
//! Test support only: nothing in the broker calls this module.

pub mod drive;
mod http;
pub mod script;

pub use drive::Outcome;
pub use http::management_requests;
pub use wal_record::wal_record;

mod wal_record;

/// One fuzz run: `data` chooses the client's bytes; panics if the broker breaks a rule.
pub fn run(data: &[u8]) -> Outcome {
    drive::run_script(&script::Script::from_choices(data))
}

#[cfg(test)]
mod tests;
