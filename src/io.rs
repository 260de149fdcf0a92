//! Atomic file output. Every file aekit writes goes through here so that an interrupted or
//! failed write never leaves a truncated file where a good one is expected.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// Creates `dir` (and parents) and checks that it is writable, naming it in the error.
pub fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).at(dir)?;
    let meta = std::fs::metadata(dir).at(dir)?;
    if !meta.is_dir() {
        return Err(Error::bad_file(dir, "exists and is not a directory"));
    }
    if meta.permissions().readonly() {
        return Err(Error::bad_file(dir, "directory is not writable"));
    }
    Ok(())
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes through `fill` into a temporary file beside `path`, syncs it, then renames it over
/// `path`. On any error the temporary file is removed and `path` is untouched.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<&mut std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    let dir = parent_of(path);
    ensure_dir(&dir)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".aekit-tmp-");
    // Temporary files are private (0600) by default; the file it becomes should get the
    // permissions any new file gets (0666 less the umask), like one written by `std::fs::write`.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(&dir).at(&dir)?;
    disk_full_for_tests(path)?;
    {
        let mut writer = std::io::BufWriter::new(tmp.as_file_mut());
        fill(&mut writer).at(path)?;
        writer.flush().at(path)?;
    }
    tmp.as_file().sync_all().at(path)?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Atomically replaces `path` with `bytes`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Atomically writes `value` as pretty JSON.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Serialize(format!("{}: {e}", path.display())))?;
    write_atomic(path, format!("{text}\n").as_bytes())
}

/// Atomically writes `values` as JSON lines, one value a line.
pub fn write_json_lines<T: serde::Serialize>(path: &Path, values: &[T]) -> Result<()> {
    let mut text = String::new();
    for v in values {
        text.push_str(&serde_json::to_string(v).map_err(|e| Error::Serialize(e.to_string()))?);
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// Reads a file of JSON lines (blank lines skipped; a missing file is none), naming the line
/// that does not parse.
pub fn read_json_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).at(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::bad_file(path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).at(path)
}

/// Reads and parses a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = read_file(path)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::bad_file(path, format!("invalid JSON: {e}")))
}

/// The name [`replace_dir_atomic`] gives the directory it replaces until the new one is in
/// place: if a process dies between the two renames, this is the complete old state.
pub fn displaced_dir(dest: &Path) -> PathBuf {
    parent_of(dest).join(format!(
        ".aekit-old-{}",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("dir")
    ))
}

/// Whether `name` is one of the staging files and directories this module creates (removed
/// when a run directory is recovered after a crash).
pub fn is_staging_name(name: &str) -> bool {
    [".aekit-tmp-", ".aekit-dir-", ".aekit-old-"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// For tests of crash safety: `AEKIT_TEST_CRASH=NAME:N` aborts the process (as `kill -9`
/// would, without unwinding) the N-th time the point `NAME` is reached.
pub fn crash_point(name: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    let Ok(spec) = std::env::var("AEKIT_TEST_CRASH") else {
        return;
    };
    let Some((point, nth)) = spec.split_once(':') else {
        return;
    };
    if point == name && nth.parse::<usize>().ok() == Some(SEEN.fetch_add(1, Ordering::SeqCst) + 1) {
        std::process::abort();
    }
}

/// For tests of a full disk: `AEKIT_TEST_DISK_FULL=NAME` makes every atomic write of a file
/// named `NAME` fail as a full disk does (ENOSPC).
fn disk_full_for_tests(path: &Path) -> Result<()> {
    match std::env::var_os("AEKIT_TEST_DISK_FULL") {
        Some(name) if path.file_name() == Some(name.as_os_str()) => {
            Err(Error::io(path, std::io::Error::from_raw_os_error(28)))
        }
        _ => Ok(()),
    }
}

/// Replaces the directory `dest` by a directory filled by `fill`, so that readers see either
/// the old or the new set of files, never a mix. The new directory is built beside `dest`.
pub fn replace_dir_atomic(dest: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = parent_of(dest);
    ensure_dir(&parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".aekit-dir-")
        .tempdir_in(&parent)
        .at(&parent)?;
    fill(staging.path())?;
    let staged = staging.keep();
    let old = displaced_dir(dest);
    if old.exists() {
        std::fs::remove_dir_all(&old).at(&old)?;
    }
    if dest.exists() {
        std::fs::rename(dest, &old).at(dest)?;
    }
    crash_point("swap");
    std::fs::rename(&staged, dest).at(dest)?;
    if old.exists() {
        std::fs::remove_dir_all(&old).at(&old)?;
    }
    Ok(())
}

/// The files one command writes, which appear together or not at all: each is written to a
/// staging file beside its destination (named after it, so the extension still tells the
/// format), and [`Self::commit`] renames them into place once all were written. Dropped
/// uncommitted, it removes the staging files.
#[derive(Default)]
pub struct OutputSet {
    staged: Vec<(tempfile::TempPath, PathBuf)>,
}

impl OutputSet {
    /// Writes what `write` writes to the path it is given, to appear at `path` on commit.
    pub fn write(&mut self, path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        let staged = self.stage(path)?;
        write(&staged)
    }

    /// A staging file for `path`, to be filled by the caller (possibly a part at a time,
    /// beside other staged files) before [`Self::commit`] moves it into place.
    pub fn stage(&mut self, path: &Path) -> Result<PathBuf> {
        let dir = parent_of(path);
        ensure_dir(&dir)?;
        let name = path
            .file_name()
            .map_or_else(|| "out".into(), |n| n.to_string_lossy().to_string());
        let staged = tempfile::Builder::new()
            .prefix(".aekit-tmp-")
            .suffix(&format!("-{name}"))
            .tempfile_in(&dir)
            .at(&dir)?
            .into_temp_path();
        let at = staged.to_path_buf();
        self.staged.push((staged, path.to_path_buf()));
        Ok(at)
    }

    /// Moves every staged file into place.
    pub fn commit(self) -> Result<()> {
        for (staged, path) in self.staged {
            staged
                .persist(&path)
                .map_err(|e| Error::io(&path, e.error))?;
        }
        Ok(())
    }
}
