//! The management API and the Prometheus endpoint under arbitrary requests (see
//! `warren::fuzzing::management_requests`): no panic, no 500, JSON answers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    warren::fuzzing::management_requests(data);
});
