//! One error type for the whole library. Every variant that concerns a file names it, so the
//! CLI can print a single line that tells the user what to fix.

use std::path::{Path, PathBuf};

/// Errors returned by aekit. `Display` gives a one-line message meant for the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file exists but its contents are wrong (bad magic, truncated, NaN, wrong shape...).
    #[error("{}: {msg}", path.display())]
    BadFile { path: PathBuf, msg: String },

    /// The operating system refused a read or a write.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A configuration value, flag or dataset spec makes no sense.
    #[error("{0}")]
    Invalid(String),

    /// Data and model do not fit together (input size, checkpoint of another model...).
    #[error("{0}")]
    Mismatch(String),

    /// Training produced NaN or Inf; the message says where and what was kept.
    #[error("training diverged: {0}")]
    Diverged(String),

    /// The user pressed Ctrl-C; the last checkpoint was saved.
    #[error("interrupted: {0}")]
    Interrupted(String),

    /// A value could not be written in a file format (a bug, or a value the format cannot
    /// hold).
    #[error("cannot serialise: {0}")]
    Serialize(String),

    /// A download failed or its checksum did not match.
    #[error("download failed: {0}")]
    Download(String),
}

impl Error {
    pub fn bad_file(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::BadFile {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }

    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    pub fn mismatch(msg: impl Into<String>) -> Self {
        Error::Mismatch(msg.into())
    }

    /// Process exit code for this error: 2 for bad input, 3 for divergence, 130 for Ctrl-C.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Diverged(_) => 3,
            Error::Interrupted(_) => 130,
            _ => 2,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to `std::io::Result`s.
pub trait IoContext<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
