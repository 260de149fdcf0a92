//! Downloads against a local HTTP server on 127.0.0.1: verified files land, corrupted ones are
//! rejected without leaving anything behind, partial downloads resume with a range request.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aekit::data::fetch::{RemoteFile, fetch, verify};
use sha2::Digest;

#[derive(Default)]
struct Log {
    requests: Vec<(String, Option<String>)>,
}

/// Serves `files` (url path -> bytes) with HTTP range support until the test ends.
fn serve(files: HashMap<String, Vec<u8>>) -> (String, Arc<Mutex<Log>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let log = Arc::new(Mutex::new(Log::default()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let range = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Range"))
                .map(|h| h.value.to_string());
            log2.lock()
                .unwrap()
                .requests
                .push((req.url().to_string(), range.clone()));
            let Some(body) = files.get(req.url()) else {
                let _ = req.respond(tiny_http::Response::empty(404));
                continue;
            };
            let start = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
            let resp = match start {
                Some(s) if s >= body.len() => {
                    tiny_http::Response::from_data(Vec::new()).with_status_code(416)
                }
                Some(s) => tiny_http::Response::from_data(body[s..].to_vec()).with_status_code(206),
                None => tiny_http::Response::from_data(body.clone()),
            };
            let _ = req.respond(resp);
        }
    });
    (base, log)
}

fn remote(name: &str, bytes: &[u8]) -> RemoteFile {
    RemoteFile {
        name: name.into(),
        size: bytes.len() as u64,
        sha256: sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        md5: None,
    }
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn verified_download_skips_a_corrupt_mirror() {
    let good = payload(300_000);
    let mut bad = good.clone();
    bad[1234] ^= 0xff;
    let (base, log) = serve(HashMap::from([
        ("/bad/data.bin".to_string(), bad),
        ("/good/data.bin".to_string(), good.clone()),
    ]));
    let d = common::tmp();
    let file = remote("data.bin", &good);
    let mirrors = vec![format!("{base}/bad/"), format!("{base}/good/")];
    let paths = fetch(std::slice::from_ref(&file), &mirrors, d.path()).unwrap();
    assert_eq!(std::fs::read(&paths[0]).unwrap(), good);
    assert!(!d.path().join("data.bin.part").exists());

    // Already present and valid: nothing is downloaded again.
    let before = log.lock().unwrap().requests.len();
    fetch(std::slice::from_ref(&file), &mirrors, d.path()).unwrap();
    assert_eq!(log.lock().unwrap().requests.len(), before);
}

#[test]
fn corrupted_download_is_rejected_and_leaves_nothing() {
    let good = payload(50_000);
    let mut bad = good.clone();
    bad[0] ^= 1;
    let (base, _) = serve(HashMap::from([("/m/data.bin".to_string(), bad)]));
    let d = common::tmp();
    let err = fetch(
        &[remote("data.bin", &good)],
        &[format!("{base}/m")],
        d.path(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("SHA-256 mismatch") && msg.contains("data.bin"),
        "{msg}"
    );
    assert!(!d.path().join("data.bin").exists(), "no corrupted output");
    assert!(
        !d.path().join("data.bin.part").exists(),
        "corrupt partial removed"
    );

    let err = fetch(
        &[remote("missing.bin", &good)],
        &[format!("{base}/m")],
        d.path(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[test]
fn partial_download_resumes_with_a_range_request() {
    let good = payload(200_000);
    let (base, log) = serve(HashMap::from([("/m/data.bin".to_string(), good.clone())]));
    let d = common::tmp();
    std::fs::write(d.path().join("data.bin.part"), &good[..77_777]).unwrap();
    let file = remote("data.bin", &good);
    fetch(
        std::slice::from_ref(&file),
        &[format!("{base}/m")],
        d.path(),
    )
    .unwrap();
    assert_eq!(std::fs::read(d.path().join("data.bin")).unwrap(), good);
    let reqs = &log.lock().unwrap().requests;
    assert_eq!(reqs.last().unwrap().1.as_deref(), Some("bytes=77777-"));
    verify(&d.path().join("data.bin"), &file).unwrap();
}

#[test]
fn cli_fetches_real_mnist_from_a_local_mirror() {
    let Some(mnist) = common::shared_data("mnist") else {
        return;
    };
    let files: HashMap<String, Vec<u8>> = aekit::data::fetch::mnist_files()
        .iter()
        .map(|f| {
            (
                format!("/mnist/{}", f.name),
                std::fs::read(mnist.join(&f.name)).unwrap(),
            )
        })
        .collect();
    let (base, _) = serve(files);
    let d = common::tmp();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_aekit"))
        .args([
            "data",
            "fetch",
            "mnist",
            "--dir",
            "m",
            "--mirror",
            &format!("{base}/mnist/"),
        ])
        .current_dir(d.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in aekit::data::fetch::mnist_files() {
        verify(&d.path().join("m").join(&f.name), &f).unwrap();
    }
    let mut cfg = aekit::DataConfig::for_source("mnist");
    cfg.data_dir = Some(d.path().join("m"));
    assert_eq!(
        aekit::data::load(&cfg, aekit::Split::Test).unwrap().len(),
        10_000
    );
}

/// A mirror that sends an endless body is cut off at the file's size, and no partial file
/// stays behind.
#[test]
fn an_endless_body_is_cut_off_at_the_file_size() {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let endless = std::io::Read::take(std::io::repeat(7), 1 << 40);
            let resp = tiny_http::Response::new(200.into(), Vec::new(), endless, None, None);
            let _ = req.respond(resp);
        }
    });
    let d = common::tmp();
    let good = payload(10_000);
    let err = fetch(
        &[remote("data.bin", &good)],
        &[format!("{base}/m/")],
        d.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("more than the 10000 bytes"), "{err}");
    assert!(!d.path().join("data.bin.part").exists());
    assert!(!d.path().join("data.bin").exists());
}
