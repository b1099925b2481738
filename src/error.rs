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
        Error::Torch(first_part(&e.to_string()))
    }
}

/// libtorch's message without the C++ backtrace it may carry.
fn first_part(message: &str) -> String {
    let cut = message
        .find("Exception raised from")
        .unwrap_or(message.len());
    message[..cut].trim().to_string()
}

/// The message of a caught panic (`&str` or `String` payloads; anything
/// else is "unknown panic payload"). The FFI boundary and the command line
/// both read panics with it.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// The library's error for a panic raised inside libtorch through one of
/// tch's panicking methods (`x.conv2d(..)` is `x.f_conv2d(..).unwrap()`),
/// read from the panic's message; `None` for any other panic. The FFI
/// boundary and the command line use it so that a libtorch failure on a
/// path not yet written with `f_` methods is still reported as libtorch's
/// error (`Error::Torch`), not as a bug.
pub fn torch_error_of_panic(panic_message: &str) -> Option<Error> {
    let start = panic_message.find("Torch(\"")? + "Torch(\"".len();
    let rest = &panic_message[start..];
    let end = rest.rfind("\")").unwrap_or(rest.len());
    let raw = rest[..end]
        .replace("\\n", "\n")
        .replace("\\\"", "\"")
        .replace("\\\\", "\\");
    Some(Error::Torch(first_part(&raw)))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_libtorch_panic_is_recognised_and_others_are_not() {
        // A real libtorch failure through a panicking tch method.
        let payload = std::panic::catch_unwind(|| {
            tch::Tensor::zeros([1 << 50], (tch::Kind::Float, tch::Device::Cpu))
        })
        .unwrap_err();
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        match torch_error_of_panic(&message) {
            Some(Error::Torch(m)) => {
                assert!(m.contains("allocate"), "{m}");
                assert!(!m.contains("Exception raised from"), "{m}");
            }
            other => panic!("{other:?} from {message}"),
        }
        assert!(torch_error_of_panic("index out of bounds: the len is 3").is_none());
    }
}
