//! The write-ahead log's record decoder under arbitrary bytes (see
//! `warren::fuzzing::wal_record`): what a crash or a damaged disk leaves in a log segment must
//! decode to a record that encodes back the same, or to nothing — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    warren::fuzzing::wal_record(data);
});
