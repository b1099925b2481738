//! Every input saved under fuzz/regressions/<target>/ (crashes the fuzzers
//! found, fixed since, and a seed or two per target) replayed through the
//! same harness the fuzzers run (fuzz/harness.rs): none may panic.
//! `scripts/fuzz.sh` runs the fuzzers themselves (nightly, cargo-fuzz).

#[path = "../fuzz/harness.rs"]
mod fuzz_harness;

use fuzz_harness::harness;
use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs in {}", dir.display());
    out
}

fn replay(target: &str, run: fn(&[u8])) {
    for (path, bytes) in inputs(target) {
        let r = std::panic::catch_unwind(|| run(&bytes));
        assert!(r.is_ok(), "{target}: {} panics", path.display());
    }
}

#[test]
fn nifti_inputs() {
    replay("nifti", harness::nifti);
}

#[test]
fn image_inputs() {
    replay("image", harness::image);
}

#[test]
fn model_inputs() {
    replay("model", harness::model);
}

#[test]
fn c_api_inputs() {
    replay("c_api", harness::c_api);
}
