//! `cargo fuzz run redis_replies`: the input format and the invariants are in
//! `fuzz_checks::redis_replies` (fuzz/src/lib.rs).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::redis_replies(data));
