"""Fixtures: the real libadgan and adgan program of this checkout, real data,
and one tiny model trained once per session through ADGANLib's runner."""

import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO / "slicer-module" / "ADGAN"
sys.path.insert(0, str(MODULE_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ADGANLib import native, process  # noqa: E402

SHARED = (REPO / ".." / "shared").resolve()
SHARED_FLAIR = SHARED / "data" / "brain-mr" / "AURORA-MET" / "flair.nii.gz"
DEMO_FLAIR = REPO / "data" / "demo" / "TCGA-FG-6692" / "fla_bet.nii.gz"
RELEASE = REPO / "target" / "release"

# Tiny training budget (seconds on a CPU): enough for a real model file.
# One libtorch thread: on a small, busy machine more threads than free cores
# make libtorch many times slower (ADGAN_TEST_THREADS overrides).
THREADS = int(os.environ.get("ADGAN_TEST_THREADS", "1"))
TINY = dict(preset="quick", phase1_iterations=3, phase2_iterations=3, batch_size=8,
            max_patches=500, device="cpu", threads=THREADS)


def _need(path, what):
    if not path.is_file():
        pytest.fail(f"{what} not found at {path}: build it first (cargo build --release)")
    return path


@pytest.fixture(scope="session")
def library_path():
    return _need(RELEASE / "libadgan.so", "libadgan")


@pytest.fixture(scope="session")
def binary_path():
    return _need(RELEASE / "adgan", "the adgan program")


@pytest.fixture(scope="session")
def library(library_path):
    lib = native.load_library(library_path)
    if THREADS > 0:
        lib.set_num_threads(THREADS)
    return lib


@pytest.fixture(scope="session")
def shared_flair():
    if not SHARED_FLAIR.is_file():
        pytest.skip(f"shared data not present ({SHARED_FLAIR}); it lives in ../shared beside the checkout")
    return SHARED_FLAIR


@pytest.fixture(scope="session")
def demo_flair():
    return _need(DEMO_FLAIR, "the demo volume")


@pytest.fixture(scope="session")
def trained(tmp_path_factory, binary_path, demo_flair):
    """A model trained by `adgan train` run through ADGANLib's TrainingProcess;
    also returns the events the runner saw."""
    out = tmp_path_factory.mktemp("model") / "tiny.adgan"
    options = process.TrainOptions(cases=[[str(demo_flair)]], output=str(out), **TINY)
    proc = process.TrainingProcess(binary_path, options)
    events = []
    t0 = time.monotonic()
    proc.start()
    final = proc.wait(timeout=600, on_event=events.append)
    assert final["status"] == "succeeded", final["message"]
    return {"path": out, "events": events, "final": final, "seconds": time.monotonic() - t0}


@pytest.fixture(scope="session")
def model(library, trained):
    m = library.load_model(trained["path"], "cpu")
    yield m
    m.close()


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("ADGAN_LIBRARY", "ADGAN_BINARY", "ADGAN_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    return dict(os.environ)
