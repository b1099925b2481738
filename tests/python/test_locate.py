"""Finding libadgan and the adgan program: settings, environment, prefixes,
the development tree, and the messages the panel shows when that fails."""

import os
from pathlib import Path

import pytest
from ADGANLib import locate, native
from ADGANLib.errors import BinaryNotFoundError, LibraryNotFoundError
from conftest import RELEASE


def _link(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst)
    return dst


@pytest.fixture
def nowhere(monkeypatch, tmp_path):
    """No installed prefix and no development tree: only what a test gives."""
    monkeypatch.setattr(locate, "installed_prefixes", lambda extra_prefixes=(): [tmp_path / "empty-prefix"])
    monkeypatch.setattr(locate, "source_tree_release_dir", lambda: None)
    return tmp_path


def test_development_tree_is_the_last_resort(clean_env, library_path, binary_path):
    env = {"PATH": "/nonexistent"}
    found = locate.find_library(environ=env)
    assert found.resolve() == library_path.resolve() or found.parent in (Path("/usr/local/lib"), Path("/usr/lib"))
    assert locate.find_binary(environ=env).is_file()
    assert locate.source_tree_release_dir() == RELEASE


def test_setting_wins_over_environment(nowhere, library_path, binary_path):
    lib = _link(library_path, nowhere / "chosen" / "libadgan.so")
    env = {"ADGAN_LIBRARY": str(library_path), "ADGAN_BINARY": str(binary_path)}
    assert locate.find_library(setting=str(lib), environ=env) == lib
    # a folder holding the file works too
    assert locate.find_library(setting=str(lib.parent), environ=env) == lib
    prog = _link(binary_path, nowhere / "chosen-bin" / "bin" / "adgan")
    assert locate.find_binary(setting=str(prog.parent.parent), environ=env) == prog


def test_environment_variables(nowhere, library_path, binary_path):
    env = {"ADGAN_LIBRARY": str(library_path), "ADGAN_BINARY": str(binary_path)}
    assert locate.find_library(environ=env) == library_path
    assert locate.find_binary(environ=env) == binary_path


def test_prefix_variable(nowhere, library_path, binary_path):
    prefix = nowhere / "opt" / "adgan"
    lib = _link(library_path, prefix / "lib" / "libadgan.so")
    prog = _link(binary_path, prefix / "bin" / "adgan")
    env = {"ADGAN_PREFIX": str(prefix)}
    assert locate.find_library(environ=env) == lib
    assert locate.find_binary(environ=env) == prog


def test_installed_prefix_and_program_beside_library(monkeypatch, nowhere, library_path, binary_path):
    prefix = nowhere / "ext"
    lib = _link(library_path, prefix / "lib" / "libadgan.so")
    prog = _link(binary_path, prefix / "bin" / "adgan")
    monkeypatch.setattr(locate, "installed_prefixes", lambda extra_prefixes=(): [Path(p) for p in extra_prefixes])
    assert locate.find_library(environ={}, extra_prefixes=[prefix]) == lib
    assert locate.find_binary(environ={"PATH": ""}, library=lib) == prog


def test_missing_library_message(nowhere):
    with pytest.raises(LibraryNotFoundError) as e:
        locate.find_library(environ={})
    text = str(e.value)
    assert "adGAN library (libadgan.so) was not found" in text
    assert str(nowhere / "empty-prefix" / "lib" / "libadgan.so") in text
    for hint in ("ADGAN module panel", "ADGAN_LIBRARY", "ADGAN_PREFIX", "cargo build --release"):
        assert hint in text


def test_missing_binary_message(nowhere):
    with pytest.raises(BinaryNotFoundError) as e:
        locate.find_binary(environ={"PATH": str(nowhere)})
    text = str(e.value)
    assert "adgan program (adgan) was not found" in text
    assert "ADGAN_BINARY" in text and "ADGAN_PREFIX" in text


def test_a_wrong_setting_is_reported_not_skipped(nowhere, library_path):
    bad = nowhere / "typo" / "libadgan.so"
    env = {"ADGAN_LIBRARY": str(library_path)}
    with pytest.raises(LibraryNotFoundError) as e:
        locate.find_library(setting=str(bad), environ=env)
    assert "set by the panel setting does not exist" in str(e.value)
    assert str(bad) in str(e.value)
    with pytest.raises(LibraryNotFoundError) as e:
        locate.find_library(environ={"ADGAN_LIBRARY": str(bad)})
    assert "set by ADGAN_LIBRARY does not exist" in str(e.value)
    (nowhere / "emptydir").mkdir()
    with pytest.raises(BinaryNotFoundError) as e:
        locate.find_binary(environ={"ADGAN_PREFIX": str(nowhere / "emptydir")})
    assert "not found in" in str(e.value) and "ADGAN_PREFIX" in str(e.value)


def test_platform_file_names():
    assert locate.library_filenames("linux") == ["libadgan.so"]
    assert locate.library_filenames("darwin") == ["libadgan.dylib"]
    assert locate.library_filenames("win32") == ["adgan.dll"]
    assert locate.binary_filenames("win32") == ["adgan.exe"]


def test_loading_a_file_that_is_not_the_library(tmp_path):
    fake = tmp_path / "libadgan.so"
    fake.write_text("not a shared library")
    with pytest.raises(LibraryNotFoundError) as e:
        native.load_library(fake)
    assert str(e.value).startswith(f"Could not load the adGAN library {fake}")


def test_loading_another_shared_library(tmp_path):
    import ctypes.util

    name = ctypes.util.find_library("z")
    if not name:
        pytest.skip("no libz to stand in for a foreign library")
    candidates = [Path(d) / name for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")]
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        pytest.skip("libz not found on disk")
    with pytest.raises(LibraryNotFoundError) as e:
        native.Library(path)
    assert "is not a usable adGAN library: it lacks adgan_version_string" in str(e.value)


def test_load_library_by_setting(library_path):
    lib = native.load_library(setting=str(library_path))
    assert lib.path == library_path.resolve()
    assert native.load_library(library_path) is lib  # cached per path
