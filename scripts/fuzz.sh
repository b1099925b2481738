#!/usr/bin/env bash
# Fuzz adGAN's readers and C API with cargo-fuzz (libFuzzer + AddressSanitizer,
# nightly Rust): the NIfTI reader, the 2-D image reader, the model-file loader
# and adgan_score_volume's argument checks (fuzz/harness.rs).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default 600, all four)
#
# Installs what it needs (the nightly toolchain, cargo-fuzz) on first use.
# Inputs that crash go to fuzz/artifacts/<target>/; copy each one to
# fuzz/regressions/<target>/ with the fix, where `make test` replays it
# (tests/fuzz_regressions.rs). docs/RELIABILITY.md reports the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$HOME/.cargo/bin:$PATH" LIBTORCH_USE_PYTORCH=1
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(nifti image model c_api)

[ -x .venv/bin/python ] || scripts/bootstrap.sh
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked

# Seeds: the saved regressions, real NIfTI files, and a real model file.
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  cp -n fuzz/regressions/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
done
rm -f fuzz/corpus/*/README.md
cp -n tests/data/nibabel/*.nii* fuzz/corpus/nifti/ 2>/dev/null || true
if [[ " ${targets[*]} " == *" model "* ]] && [ ! -f fuzz/corpus/model/seed.adgan ]; then
  cargo build --release --locked
  target/release/adgan train -v tests/data/nibabel/anatomical.nii --preset quick \
    --phase2-iterations 2 --validate-every 0 --batch-size 8 -o fuzz/corpus/model/seed.adgan >/dev/null
fi

# The fuzz binaries get no RUNPATH (build.rs sets it for adgan's own
# targets): point them at the project's libtorch.
torch_lib="$(python -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# libtorch is not instrumented: leave its allocations and globals alone.
export ASAN_OPTIONS="detect_leaks=0:detect_odr_violation=0:allocator_may_return_null=1"
failed=()
for t in "${targets[@]}"; do
  max_len=65536
  [ "$t" = model ] && max_len=16777216
  echo "== $t: ${seconds}s"
  if cargo +nightly fuzz run --release "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=6144 -timeout=60 \
    -print_final_stats=1 >"fuzz/$t.log" 2>&1; then
    grep -E '^#[0-9]+ +(INITED|DONE)|^stat::' "fuzz/$t.log" || true
  else
    failed+=("$t")
    grep -E 'ERROR|SUMMARY|panicked|Test unit written' "fuzz/$t.log" || tail -20 "fuzz/$t.log"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${failed[*]} failed (fuzz/<target>.log, inputs in fuzz/artifacts/)" >&2
  exit 1
fi
