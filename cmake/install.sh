#!/usr/bin/env bash
# Installs adGAN's C API and command line under a prefix:
#   bin/adgan
#   include/adgan.h
#   lib/libadgan.so.X.Y.Z, lib/libadgan.so.A (the SONAME; A = ADGAN_ABI_VERSION),
#   lib/libadgan.so
#   lib/adgan-torch -> the libtorch lib directory the build linked against
#                      (a link: libtorch is gigabytes)
#   lib/cmake/adgan/adganConfig.cmake, adganConfigVersion.cmake
#   lib/pkgconfig/adgan.pc
# Nothing under the prefix names the prefix itself, so a copied or moved
# prefix keeps working. Usage: cmake/install.sh PREFIX (after `cargo build
# --release`; `make install PREFIX=...` builds first).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 PREFIX" >&2
  exit 2
fi
mkdir -p "$1"
prefix="$(cd "$1" && pwd)"
build="${ADGAN_BUILD_DIR:-$root/target/release}"
for f in "$build/libadgan.so" "$build/adgan" "$root/include/adgan.h"; do
  [ -f "$f" ] || { echo "install: $f is missing: run cargo build --release first" >&2; exit 1; }
done

version="$(sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n1)"
IFS=. read -r major minor patch <<<"${version%%[-+]*}"
abi="$(sed -n 's/^#define ADGAN_ABI_VERSION \([0-9]*\)$/\1/p' "$root/include/adgan.h")"

# The libtorch directory: the one libadgan.so was linked against (its
# absolute RUNPATH entry), else the .venv's torch package.
torch_lib="$(readelf -d "$build/libadgan.so" | sed -n 's/.*RUNPATH.*\[\(.*\)\]/\1/p' | tr ':' '\n' | grep '^/' | head -n1 || true)"
if [ -z "$torch_lib" ] || [ ! -f "$torch_lib/libtorch_cpu.so" ]; then
  py="${VIRTUAL_ENV:-$root/.venv}/bin/python"
  torch_lib="$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
fi
[ -f "$torch_lib/libtorch_cpu.so" ] || { echo "install: no libtorch in $torch_lib" >&2; exit 1; }
torch_version="$("${VIRTUAL_ENV:-$root/.venv}/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo unknown)"

mkdir -p "$prefix/bin" "$prefix/include" "$prefix/lib/cmake/adgan" "$prefix/lib/pkgconfig"
install -m 0755 "$build/adgan" "$prefix/bin/adgan"
install -m 0644 "$root/include/adgan.h" "$prefix/include/adgan.h"
rm -f "$prefix/lib/libadgan.so" "$prefix/lib/libadgan.so.$abi" "$prefix/lib/libadgan.so.$version"
install -m 0755 "$build/libadgan.so" "$prefix/lib/libadgan.so.$version"
ln -s "libadgan.so.$version" "$prefix/lib/libadgan.so.$abi"
ln -s "libadgan.so.$abi" "$prefix/lib/libadgan.so"
rm -rf "$prefix/lib/adgan-torch"
ln -s "$torch_lib" "$prefix/lib/adgan-torch"

subst() {
  sed -e "s|@ADGAN_VERSION@|$version|g" \
      -e "s|@ADGAN_VERSION_MAJOR@|$major|g" \
      -e "s|@ADGAN_VERSION_MINOR@|$minor|g" \
      -e "s|@ADGAN_VERSION_PATCH@|$patch|g" \
      -e "s|@ADGAN_ABI_VERSION@|$abi|g" \
      -e "s|@ADGAN_TORCH_VERSION@|$torch_version|g" "$1" >"$2"
}
subst "$root/cmake/adganConfig.cmake.in" "$prefix/lib/cmake/adgan/adganConfig.cmake"
subst "$root/cmake/adganConfigVersion.cmake.in" "$prefix/lib/cmake/adgan/adganConfigVersion.cmake"
subst "$root/cmake/adgan.pc.in" "$prefix/lib/pkgconfig/adgan.pc"

soname="$(readelf -d "$prefix/lib/libadgan.so.$version" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')"
if [ "$soname" != "libadgan.so.$abi" ]; then
  echo "install: libadgan.so has SONAME '$soname', expected libadgan.so.$abi (ADGAN_ABI_VERSION)" >&2
  exit 1
fi
echo "installed adgan $version in $prefix (libtorch: $torch_lib)"
