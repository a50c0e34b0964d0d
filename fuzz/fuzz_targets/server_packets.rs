//! `cargo fuzz run server_packets`: the input format and the invariants are in
//! `fuzz_checks::server_packets` (fuzz/src/lib.rs).

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::server_packets(data));
