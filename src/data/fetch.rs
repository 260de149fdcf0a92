//! Downloading public datasets into a cache, verified by SHA-256 (and MD5 where the publisher
//! lists it), resumable through HTTP range requests, and written atomically: a file appears
//! under its final name only once its checksum matched.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest;

use crate::error::{Error, IoContext, Result};

/// One file to fetch and how to recognise a good copy.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    pub name: String,
    /// Its exact size: a server that sends more is cut off there.
    pub size: u64,
    pub sha256: String,
    pub md5: Option<String>,
}

/// Mirrors of the original MNIST files, tried in order.
pub const MNIST_MIRRORS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// The four MNIST files with the official MD5s and the SHA-256 of the same bytes.
pub fn mnist_files() -> Vec<RemoteFile> {
    let f = |name: &str, size: u64, sha256: &str, md5: &str| RemoteFile {
        name: name.into(),
        size,
        sha256: sha256.into(),
        md5: Some(md5.into()),
    };
    vec![
        f(
            "train-images-idx3-ubyte.gz",
            9_912_422,
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        ),
        f(
            "train-labels-idx1-ubyte.gz",
            28_881,
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "d53e105ee54ea40749a09fcbcd1e9432",
        ),
        f(
            "t10k-images-idx3-ubyte.gz",
            1_648_877,
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "9fb629c4189551a2d022fa330f9573f3",
        ),
        f(
            "t10k-labels-idx1-ubyte.gz",
            4_542,
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    ]
}

/// `$AEKIT_CACHE`, else `$XDG_CACHE_HOME/aekit`, else `~/.cache/aekit`.
pub fn default_cache_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("AEKIT_CACHE") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(d).join("aekit"));
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache").join("aekit"))
        .ok_or_else(|| Error::invalid("cannot find a cache directory: set AEKIT_CACHE or HOME"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a file against the expected digests; `Err` carries a message for the user.
pub fn verify(path: &Path, file: &RemoteFile) -> Result<()> {
    let bytes = crate::io::read_file(path)?;
    let sha = hex(&sha2::Sha256::digest(&bytes));
    if !sha.eq_ignore_ascii_case(&file.sha256) {
        return Err(Error::bad_file(
            path,
            format!(
                "SHA-256 mismatch: expected {}, got {sha} (corrupt or wrong file)",
                file.sha256
            ),
        ));
    }
    if let Some(md5) = &file.md5 {
        let got = hex(&md5::Md5::digest(&bytes));
        if !got.eq_ignore_ascii_case(md5) {
            return Err(Error::bad_file(
                path,
                format!("MD5 mismatch: expected {md5}, got {got}"),
            ));
        }
    }
    Ok(())
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_body(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// Downloads `url` into `part`, continuing a partial file with a range request when the server
/// allows it, and never writing past `size` bytes: a server that sends more is refused and the
/// partial file removed (an endless body would otherwise fill the disk).
fn download_resumable(agent: &ureq::Agent, url: &str, part: &Path, size: u64) -> Result<()> {
    let have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    let mut req = agent.get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let resp = req
        .call()
        .map_err(|e| Error::Download(format!("{url}: {e}")))?;
    let status = resp.status().as_u16();
    let append = match status {
        206 => true,
        200 => false,
        // The partial file is already complete.
        416 if have > 0 => return Ok(()),
        _ => return Err(Error::Download(format!("{url}: HTTP status {status}"))),
    };
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(part)
        .at(part)?;
    let mut written = if append { have } else { 0 };
    let mut body = resp
        .into_body()
        .into_reader()
        .take(size.saturating_sub(written).saturating_add(1));
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = body.read(&mut buf).map_err(|e| {
            Error::Download(format!("{url}: {e} (partial download kept for resume)"))
        })?;
        if n == 0 {
            break;
        }
        written += n as u64;
        if written > size {
            drop(out);
            let _ = std::fs::remove_file(part);
            return Err(Error::Download(format!(
                "{url}: the server sends more than the {size} bytes the file has"
            )));
        }
        out.write_all(&buf[..n]).at(part)?;
    }
    out.sync_all().at(part)?;
    Ok(())
}

/// Fetches `files` into `dir` from the first mirror that serves a verified copy. Files already
/// present and valid are kept. Returns the final paths.
pub fn fetch(files: &[RemoteFile], mirrors: &[String], dir: &Path) -> Result<Vec<PathBuf>> {
    crate::io::ensure_dir(dir)?;
    let agent = agent();
    let mut paths = Vec::new();
    for file in files {
        let dest = dir.join(&file.name);
        if dest.is_file() && verify(&dest, file).is_ok() {
            tracing::info!("{} already present and verified", dest.display());
            paths.push(dest);
            continue;
        }
        let part = dir.join(format!("{}.part", file.name));
        let mut failures = Vec::new();
        let mut done = false;
        for mirror in mirrors {
            let url = format!("{}/{}", mirror.trim_end_matches('/'), file.name);
            tracing::info!("downloading {url}");
            if let Err(e) = download_resumable(&agent, &url, &part, file.size) {
                failures.push(e.to_string());
                continue;
            }
            match verify(&part, file) {
                Ok(()) => {
                    std::fs::rename(&part, &dest).at(&dest)?;
                    done = true;
                    break;
                }
                Err(e) => {
                    // A corrupt copy must not be resumed from: start over on the next mirror.
                    let _ = std::fs::remove_file(&part);
                    failures.push(format!("{url}: {e}"));
                }
            }
        }
        if !done {
            return Err(Error::Download(format!(
                "{}: no mirror gave a verified copy ({})",
                file.name,
                failures.join("; ")
            )));
        }
        paths.push(dest);
    }
    Ok(paths)
}
