//! The one error type of the library. Every variant that concerns a file
//! names it, so a message reads `path: what is wrong`.

use std::path::PathBuf;

/// Errors returned by every fallible function of the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file is missing, unreadable or unwritable.
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    /// A file was read but its content is not what adGAN needs
    /// (corrupt gzip, bad header, 5-D data, NaN voxels, wrong model format, ...).
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    /// A caller passed a value that cannot be used.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The requested compute device is not available.
    #[error("device: {0}")]
    Device(String),
    /// A progress callback asked to stop.
    #[error("cancelled")]
    Cancelled,
    /// libtorch reported an error.
    #[error("torch: {0}")]
    Torch(String),
}

/// Result with the library's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Error::Torch(e.to_string())
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        Error::Io {
            path: path.into(),
            message: e.to_string(),
        }
    }
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }
}
