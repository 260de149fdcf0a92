//! One error type for the whole library. Every variant that concerns a file names it, so the
//! CLI can print a single line that tells the user what to fix.

use std::path::{Path, PathBuf};

/// Errors returned by aekit. `Display` gives a one-line message meant for the user.
#[derive(Debug)]
pub enum Error {
    /// A file exists but its contents are wrong (bad magic, truncated, NaN, wrong shape...).
    BadFile { path: PathBuf, msg: String },

    /// The operating system refused a read or a write.
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A configuration value, flag or dataset spec makes no sense.
    Invalid(String),

    /// Data and model do not fit together (input size, checkpoint of another model...).
    Mismatch(String),

    /// Training produced NaN or Inf; the message says where and what was kept.
    Diverged(String),

    /// The user pressed Ctrl-C; the last checkpoint was saved.
    Interrupted(String),

    /// A value could not be written in a file format (a bug, or a value the format cannot
    /// hold).
    Serialize(String),

    /// A download failed or its checksum did not match.
    Download(String),

    /// The ranks of a data-parallel job refused together (they differ, or the model cannot be
    /// split over them): every rank reaches it, rank 0 reports it.
    Ranks(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            Error::BadFile { path, msg } => format!("{}: {msg}", path.display()),
            Error::Io { path, source } => format!("{}: {source}", path.display()),
            Error::Invalid(m) | Error::Mismatch(m) | Error::Ranks(m) => m.clone(),
            Error::Diverged(m) => format!("training diverged: {m}"),
            Error::Interrupted(m) => format!("interrupted: {m}"),
            Error::Serialize(m) => format!("cannot serialise: {m}"),
            Error::Download(m) => format!("download failed: {m}"),
        };
        f.write_str(&one_line(&text))
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `text` as one line: the messages of other parsers span several (npyz's header diagnostics,
/// TOML's excerpt of the file with a caret under the fault), and every error aekit prints is
/// one line, whichever library produced it. Lines are joined with "; ", and lines that only
/// draw (a gutter `|`, carets) are dropped.
pub fn one_line(text: &str) -> String {
    if !text.contains(['\n', '\r']) {
        return text.to_string();
    }
    text.lines()
        .map(str::trim)
        .filter(|l| l.chars().any(|c| c.is_alphanumeric()))
        .collect::<Vec<_>>()
        .join("; ")
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

    /// Whether every rank of a data-parallel job meets this error at the same point (they
    /// agreed on it, or computed it from the same numbers), so that rank 0 alone need say it.
    pub fn is_met_by_every_rank(&self) -> bool {
        matches!(
            self,
            Error::Ranks(_) | Error::Interrupted(_) | Error::Diverged(_)
        )
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
