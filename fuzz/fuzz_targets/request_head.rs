//! `cargo fuzz run request_head`: the input format and the invariants are in
//! `fuzz_checks::request_head` (fuzz/src/lib.rs).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::request_head(data));
