//! The connection fuzz target as a property test, so the normal test command runs a few hundred
//! arbitrary connections every time (the long runs use cargo-fuzz; see `fuzz/README.md`).

use proptest::prelude::*;

use super::{management_requests, run, wal_record};

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_client_bytes_leave_the_broker_consistent(data in proptest::collection::vec(any::<u8>(), 0..3000)) {
        run(&data);
    }

    #[test]
    fn any_management_requests_get_an_answer_and_never_a_500(data in proptest::collection::vec(any::<u8>(), 0..1500)) {
        management_requests(&data);
    }

    #[test]
    fn any_bytes_in_the_write_ahead_log_decode_or_read_as_its_end(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        wal_record(&data);
    }
}

#[test]
fn a_full_login_and_a_publish_get_answers() {
    // First byte ≥ 20: a full login; then (channel 1, method: channel.open), and so on.
    let outcome = run(&[200, 255, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(!outcome.refused_header);
    assert!(
        outcome.frames >= 3,
        "start, tune, open-ok at least: {outcome:?}"
    );
}

/// The script generator is only useful if random bytes get past the login and keep the
/// connection alive for many actions (errors end connections; they must stay rare).
#[test]
fn random_scripts_reach_deep_states() {
    let mut seed = 0x5eed_u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as u8
    };
    let (mut actions, mut frames) = (0, 0);
    for _ in 0..50 {
        let data: Vec<u8> = (0..2000).map(|_| next()).collect();
        let outcome = run(&data);
        actions += outcome.actions;
        frames += outcome.frames;
    }
    assert!(
        actions / 50 >= 20,
        "only {} actions per run on average",
        actions / 50
    );
    assert!(
        frames >= 1000,
        "only {frames} frames from the broker in 50 runs"
    );
}

/// Every input the fuzzer ever crashed the broker with (`fuzz/regressions/`) runs cleanly now.
#[test]
fn inputs_that_once_crashed_the_broker_run_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions exists") {
        let path = entry.expect("read fuzz/regressions").path();
        let data = std::fs::read(&path).expect("read a regression input");
        // On the main test thread's stack, like the fuzzer's runs.
        let handle = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || run(&data))
            .expect("spawn a thread for the run");
        assert!(handle.join().is_ok(), "{} fails", path.display());
        count += 1;
    }
    assert!(count > 0, "no regression inputs in {}", dir.display());
}
