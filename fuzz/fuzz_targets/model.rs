#![no_main]
//! cargo-fuzz target: the harness in fuzz/harness.rs (replayed in make
//! test by tests/fuzz_regressions.rs).

#[path = "../harness.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::harness::model(data));
