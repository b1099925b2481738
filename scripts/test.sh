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

step "cohort workflow: Snakemake's local executor on three small volumes (workflows/cohort/test.sh)"
workflows/cohort/test.sh

step "C API: install in a temporary prefix, move it, build and run the C, C++ and ITK consumers (ctest)"
# include/adgan.h freshness and its version macros are checked by tests/header.rs (Rust tests).
capi="$(mktemp -d)"
trap 'rm -rf "$capi"' EXIT
cmake/install.sh "$capi/prefix"
cp -a "$capi/prefix" "$capi/moved" && rm -rf "$capi/prefix" # the install is relocatable
if grep -rIl "$capi/prefix" "$capi/moved"; then
  echo "the installed files above name the prefix they were installed in" >&2
  exit 1
fi
export PKG_CONFIG_PATH="$capi/moved/lib/pkgconfig"
pkg-config --print-errors --exact-version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)" adgan
printf '%s\n' '#include <adgan.h>' '#include <string.h>' \
  'int main(void) { return strcmp(adgan_version_string(), ADGAN_VERSION_STRING) != 0; }' >"$capi/pc.c"
# shellcheck disable=SC2046 # pkg-config's flags are meant to split
cc -std=c99 -Wall -Werror "$capi/pc.c" -o "$capi/pc" $(pkg-config --cflags --libs adgan)
env -u LD_LIBRARY_PATH "$capi/pc"
echo "a C program built with pkg-config runs"
unset PKG_CONFIG_PATH
cmake -S tests/consumers -B "$capi/build" -DCMAKE_PREFIX_PATH="$capi/moved" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$capi/configure.log" || { cat "$capi/configure.log"; exit 1; }
cmake --build "$capi/build" -j2
(cd "$capi/build" && env -u LD_LIBRARY_PATH ctest --output-on-failure -j2)
