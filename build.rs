//! Link-time set-up that makes the binary and `libadgan.so` usable without
//! LD_LIBRARY_PATH:
//! - a RUNPATH to the libtorch of the project's `.venv` (torch from PyPI),
//!   plus `$ORIGIN`-relative entries for an installed prefix;
//! - libtorch_cuda linked with `--no-as-needed` when the torch build has it,
//!   so CUDA kernels are registered and `--device auto` finds a GPU;
//! - a SONAME for the cdylib: `libadgan.so.<ADGAN_ABI_VERSION>`.

use std::path::PathBuf;
use std::process::Command;

fn torch_lib_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("LIBTORCH_LIB") {
        return Some(PathBuf::from(dir).join("lib"));
    }
    let python = if std::env::var_os("VIRTUAL_ENV").is_some() {
        "python"
    } else {
        "python3"
    };
    let out = Command::new(python)
        .args([
            "-c",
            "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    dir.is_dir().then_some(dir)
}

fn main() {
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    println!("cargo:rerun-if-env-changed=LIBTORCH_LIB");
    println!("cargo:rerun-if-changed=build.rs");
    let Some(lib) = torch_lib_dir() else {
        println!("cargo:warning=adgan: could not locate libtorch (run `make` or activate .venv); no RUNPATH set");
        return;
    };
    // Installed layout: <prefix>/lib/libadgan.so and <prefix>/bin/adgan find
    // libtorch next to them or through <prefix>/lib/adgan-torch (a link the
    // install step makes); the absolute path serves the build tree.
    for rpath in [
        "$ORIGIN".to_string(),
        "$ORIGIN/adgan-torch".to_string(),
        "$ORIGIN/../lib/adgan-torch".to_string(),
        lib.display().to_string(),
    ] {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{rpath}");
    }
    println!("cargo:rustc-link-arg=-Wl,--enable-new-dtags");
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,-soname,libadgan.so.{}",
        abi_version()
    );
}

/// `ADGAN_ABI_VERSION` as src/ffi/mod.rs defines it: the SONAME is
/// `libadgan.so.<ABI version>`, so binaries built against one ABI never
/// load a library of an incompatible one (tests/abi.rs keeps the ABI).
fn abi_version() -> u32 {
    let path = "src/ffi/mod.rs";
    println!("cargo:rerun-if-changed={path}");
    let text = std::fs::read_to_string(path).expect("src/ffi/mod.rs is readable");
    text.lines()
        .find_map(|l| l.trim().strip_prefix("pub const ADGAN_ABI_VERSION: u32 = "))
        .and_then(|v| v.trim_end_matches(';').trim().parse().ok())
        .expect("src/ffi/mod.rs defines `pub const ADGAN_ABI_VERSION: u32 = N;`")
}
