//! `cargo fuzz run option_file`: the input format and the invariants are in
//! `fuzz_checks::option_file` (fuzz/src/lib.rs).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::option_file(data));
