#!/usr/bin/env bash
# Creates the project's .venv with the libtorch that tch needs (torch from PyPI)
# and the Python packages the tests and tools use. Idempotent: re-running only
# installs what is missing. Run by the Makefile on demand.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_VERSION=2.13.0
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv" >&2
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
  echo "bootstrap: installing torch==$TORCH_VERSION into .venv (about 5 GB, a few minutes)" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "torch==$TORCH_VERSION"
fi
.venv/bin/python -m pip install -q -r scripts/requirements.txt
# System tools for the C API's CMake package and its C, C++ and ITK consumers
# (tests/consumers): cmake, pkg-config and ITK 5.
need_pkgs=()
command -v cmake >/dev/null 2>&1 || need_pkgs+=(cmake)
command -v pkg-config >/dev/null 2>&1 || need_pkgs+=(pkg-config)
dpkg -s libinsighttoolkit5-dev >/dev/null 2>&1 || need_pkgs+=(libinsighttoolkit5-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "bootstrap: apt-get install ${need_pkgs[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# Fashion-MNIST for the ab-FMNIST quality benchmark (bench/abfmnist.py); the
# tests do not need it, so a failed install only warns.
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  echo "bootstrap: apt-get install dataset-fashion-mnist" >&2
  FM_SUDO=""
  [ "$(id -u)" -eq 0 ] || FM_SUDO="sudo"
  $FM_SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null 2>&1 ||
    { $FM_SUDO apt-get update -qq && $FM_SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null; } ||
    echo "bootstrap: warning: could not install dataset-fashion-mnist (only bench/abfmnist.py needs it)" >&2
fi
touch .venv/.bootstrapped
