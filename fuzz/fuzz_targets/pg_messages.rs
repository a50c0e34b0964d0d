//! `cargo fuzz run pg_messages`: the input format and the invariants are in
//! `fuzz_checks::pg_messages` (fuzz/src/lib.rs).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::pg_messages(data));
