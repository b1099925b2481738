"""Finding libadgan (the shared library) and the ``adgan`` program.

Order, first match wins:

1. the path set in the panel (``setting``): a file, or a folder holding it;
2. the environment: ``ADGAN_LIBRARY`` / ``ADGAN_BINARY`` (the file), then
   ``ADGAN_PREFIX`` (an install prefix: ``lib/``, ``bin/``);
3. for the program only: beside the library found by 1 or 2;
4. installed prefixes: the extension's own tree (the folders above this
   package), ``extra_prefixes`` given by the caller, ``/usr/local``, ``/usr``;
5. for the program only: ``PATH``;
6. a development checkout: ``target/release`` of the adgan source tree this
   package sits in.

A path given by 1 or 2 that does not hold the file is an error (it is never
silently skipped), so a typo in a setting is reported as such.
"""

import os
import shutil
import sys
from pathlib import Path

from .errors import BinaryNotFoundError, LibraryNotFoundError

LIBRARY_ENV = "ADGAN_LIBRARY"
BINARY_ENV = "ADGAN_BINARY"
PREFIX_ENV = "ADGAN_PREFIX"

PACKAGE_DIR = Path(__file__).resolve().parent

_HINT = (
    "Set its path in the ADGAN module panel (Settings), or the environment variable "
    "{env} (the file) or ADGAN_PREFIX (the folder adgan is installed in), "
    "or build adgan with `cargo build --release` in its source tree."
)


def library_filenames(platform=None):
    platform = platform or sys.platform
    if platform.startswith("win"):
        return ["adgan.dll"]
    if platform == "darwin":
        return ["libadgan.dylib"]
    return ["libadgan.so"]


def binary_filenames(platform=None):
    platform = platform or sys.platform
    return ["adgan.exe"] if platform.startswith("win") else ["adgan"]


def _library_subdirs():
    return ["lib", "lib64", "bin", ""]


def _binary_subdirs():
    return ["bin", ""]


def installed_prefixes(extra_prefixes=()):
    """Prefixes adgan may be installed in, most specific first."""
    prefixes = []
    # A Slicer extension installs scripted modules in
    # <prefix>/lib/Slicer-X.Y/qt-scripted-modules/; the folders above this
    # package hold what the extension ships beside it.
    for parent in list(PACKAGE_DIR.parents)[:4]:
        prefixes.append(parent)
    prefixes.extend(Path(p) for p in extra_prefixes if p)
    prefixes.extend([Path("/usr/local"), Path("/usr")])
    seen, unique = set(), []
    for p in prefixes:
        key = str(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def source_tree_release_dir():
    """``target/release`` of the adgan checkout this package lives in, if any."""
    for parent in PACKAGE_DIR.parents:
        cargo = parent / "Cargo.toml"
        if cargo.is_file():
            try:
                text = cargo.read_text(encoding="utf-8", errors="replace")
            except OSError:
                return None
            if 'name = "adgan"' in text:
                return parent / "target" / "release"
            return None
    return None


def _in_dir(folder, filenames, subdirs):
    """Candidate files for a folder (its subdirs first)."""
    folder = Path(folder)
    return [folder / sub / name for sub in subdirs for name in filenames]


def _explicit(value, origin, filenames, subdirs, error, what, env):
    """A path the user gave: the file itself, or a folder that holds it."""
    path = Path(os.path.expanduser(str(value)))
    if path.is_file():
        return path
    if path.is_dir():
        for candidate in _in_dir(path, filenames, subdirs):
            if candidate.is_file():
                return candidate
        raise error(
            f"The {what} was not found in {path} (set by {origin}): no "
            f"{' or '.join(filenames)} there. " + _HINT.format(env=env)
        )
    raise error(
        f"The {what} set by {origin} does not exist: {path}. " + _HINT.format(env=env)
    )


def _not_found(error, what, looked, env):
    lines = "\n".join(f"  {p}" for p in looked)
    return error(f"The {what} was not found. Looked in:\n{lines}\n" + _HINT.format(env=env))


def find_library(setting=None, environ=None, extra_prefixes=(), platform=None):
    """Path of libadgan; raises LibraryNotFoundError with where it looked."""
    environ = os.environ if environ is None else environ
    names = library_filenames(platform)
    what = f"adGAN library ({names[0]})"
    subdirs = _library_subdirs()
    if setting:
        return _explicit(setting, "the panel setting", names, subdirs,
                         LibraryNotFoundError, what, LIBRARY_ENV)
    if environ.get(LIBRARY_ENV):
        return _explicit(environ[LIBRARY_ENV], LIBRARY_ENV, names, subdirs,
                         LibraryNotFoundError, what, LIBRARY_ENV)
    if environ.get(PREFIX_ENV):
        return _explicit(environ[PREFIX_ENV], PREFIX_ENV, names, subdirs,
                         LibraryNotFoundError, what, LIBRARY_ENV)
    looked = []
    for prefix in installed_prefixes(extra_prefixes):
        for candidate in _in_dir(prefix, names, subdirs):
            looked.append(candidate)
            if candidate.is_file():
                return candidate
    release = source_tree_release_dir()
    if release is not None:
        for candidate in _in_dir(release, names, [""]):
            looked.append(candidate)
            if candidate.is_file():
                return candidate
    raise _not_found(LibraryNotFoundError, what, looked, LIBRARY_ENV)


def find_binary(setting=None, environ=None, extra_prefixes=(), library=None,
                platform=None, use_path=True):
    """Path of the ``adgan`` program; raises BinaryNotFoundError."""
    environ = os.environ if environ is None else environ
    names = binary_filenames(platform)
    what = f"adgan program ({names[0]})"
    subdirs = _binary_subdirs()
    if setting:
        return _explicit(setting, "the panel setting", names, subdirs,
                         BinaryNotFoundError, what, BINARY_ENV)
    if environ.get(BINARY_ENV):
        return _explicit(environ[BINARY_ENV], BINARY_ENV, names, subdirs,
                         BinaryNotFoundError, what, BINARY_ENV)
    if environ.get(PREFIX_ENV):
        return _explicit(environ[PREFIX_ENV], PREFIX_ENV, names, subdirs,
                         BinaryNotFoundError, what, BINARY_ENV)
    looked = []
    if library:
        lib_dirs = [Path(os.path.abspath(library)).parent, Path(library).resolve().parent]
        for lib_dir in dict.fromkeys(lib_dirs):
            for candidate in [lib_dir / n for n in names] + [lib_dir.parent / "bin" / n for n in names]:
                looked.append(candidate)
                if candidate.is_file():
                    return candidate
    for prefix in installed_prefixes(extra_prefixes):
        for candidate in _in_dir(prefix, names, subdirs):
            looked.append(candidate)
            if candidate.is_file():
                return candidate
    if use_path:
        on_path = shutil.which(names[0], path=environ.get("PATH"))
        if on_path:
            return Path(on_path)
        looked.append(Path("PATH: " + names[0]))
    release = source_tree_release_dir()
    if release is not None:
        for candidate in _in_dir(release, names, [""]):
            looked.append(candidate)
            if candidate.is_file():
                return candidate
    raise _not_found(BinaryNotFoundError, what, looked, BINARY_ENV)
