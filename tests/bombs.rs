//! Inputs that claim little and inflate to a lot. This file runs alone in its test process, so
//! the peak memory of the children it waits for is that of the one command it runs.

mod common;

use std::io::Write;
use std::process::Command;

/// A gzip IDX file of a few hundred KiB whose header declares 10 images but whose stream
/// inflates to 400 MB is refused for its trailing data without being inflated in full.
#[cfg(unix)]
#[test]
fn a_gzip_idx_file_is_inflated_no_further_than_its_header_says() {
    let dir = common::tmp();
    let path = dir.path().join("bomb.gz");
    let file = std::fs::File::create(&path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let header: Vec<u8> = [0u8, 0, 8, 3]
        .into_iter()
        .chain(10u32.to_be_bytes())
        .chain(28u32.to_be_bytes())
        .chain(28u32.to_be_bytes())
        .collect();
    gz.write_all(&header).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..400 {
        gz.write_all(&zeros).unwrap();
    }
    gz.finish().unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < 4 << 20);

    let out = Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args([
            "train",
            "--data",
            &format!("idx:{}", path.display()),
            "--quiet",
        ])
        .args(["--out", &dir.path().join("run").display().to_string()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bomb.gz") && err.contains("trailing data"),
        "{err}"
    );
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u
    };
    let peak_mib = usage.ru_maxrss / 1024;
    assert!(peak_mib < 200, "the command peaked at {peak_mib} MiB");
}
