#!/usr/bin/env bash
# The project's test command (`make test`): formatting, lints, the Rust
# test suite, and the checks a user of the built artefacts relies on.
set -euo pipefail
cd "$(dirname "$0")/.."
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$HOME/.cargo/bin:$PATH" LIBTORCH_USE_PYTORCH=1
step() { printf '\n== %s\n' "$*"; }

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "build (release)"
cargo build --release --locked

step "lints (cargo clippy -D warnings)"
cargo clippy --release --locked --all-targets -- -D warnings

step "Rust tests"
cargo test --release --locked

step "binary and library run without LD_LIBRARY_PATH"
env -u LD_LIBRARY_PATH target/release/adgan --version
env -u LD_LIBRARY_PATH python3 -c "import ctypes; ctypes.CDLL('target/release/libadgan.so'); print('libadgan.so loads')"
readelf -d target/release/libadgan.so | grep -E 'SONAME|RUNPATH'

step "Slicer module: ADGANLib and the module's files (pytest tests/python)"
.venv/bin/python -m pytest -q tests/python
