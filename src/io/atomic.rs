//! Atomic file writes: a file is either complete or absent, never half
//! written. Every file the library and the command line write (maps,
//! models, checkpoints, figures, tables, reports) goes through
//! [`write_atomically`].

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Write a file atomically.
///
/// `write` fills a new temporary file created in the same directory as `path`
/// (a hidden name derived from the file name); on success the file is synced to
/// disk and renamed over `path`, and the directory is synced. On any failure
/// (including a panic in `write`) the temporary file is removed and an existing
/// file at `path` is left untouched. An existing file's permissions are carried
/// over to the new one.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when `path` has no file name; [`Error::Io`] naming
/// `path` when the temporary file cannot be created, `write` fails, or the
/// sync or rename fails.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        Error::InvalidArgument(format!("{}: not a path to a file", path.display()))
    })?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (mut file, temp_path) = create_temp_file(&dir, file_name).map_err(|e| {
        io_error(
            path,
            &format!("cannot create a temporary file in {}", dir.display()),
            &e,
        )
    })?;
    let mut guard = TempFileGuard(Some(temp_path.clone()));

    if let Ok(meta) = fs::metadata(path) {
        if meta.is_file() {
            // Best effort: a failure only means default permissions.
            let _ = file.set_permissions(meta.permissions());
        }
    }
    write(&mut file).map_err(|e| io_error(path, "write failed", &e))?;
    file.sync_all()
        .map_err(|e| io_error(path, "cannot sync the written data to disk", &e))?;
    drop(file);
    fs::rename(&temp_path, path).map_err(|e| {
        io_error(
            path,
            &format!("cannot rename {} to the destination", temp_path.display()),
            &e,
        )
    })?;
    guard.disarm();
    sync_directory(&dir);
    Ok(())
}

/// Create a new, uniquely named hidden file in `dir` for writing `file_name`.
fn create_temp_file(dir: &Path, file_name: &OsStr) -> io::Result<(File, PathBuf)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // Keep the name well below the usual 255-byte limit.
    let stem: String = file_name.to_string_lossy().chars().take(100).collect();
    let pid = std::process::id();
    let mut last_error = None;
    for _ in 0..100 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let temp_path = dir.join(format!(".{stem}.{pid}-{n}-{nanos}.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
        {
            Ok(file) => return Ok((file, temp_path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no free temporary file name")))
}

/// Removes the temporary file on drop unless disarmed.
struct TempFileGuard(Option<PathBuf>);

impl TempFileGuard {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for TempFileGuard {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Make a rename in `dir` durable (best effort: not every file system can sync
/// a directory, and the rename has already happened).
fn sync_directory(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// An I/O error naming `path`: `what` failed, and why.
pub(super) fn io_error(path: &Path, what: &str, e: &io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        message: format!("{what}: {e}"),
    }
}
