//! 10,000 malformed and random requests to a server on 127.0.0.1: it answers every one with a
//! client-error or success status (never a 500, never a dropped connection for a well-formed
//! request line), stays healthy, and its memory stays bounded.
//!
//! Requests are written by hand on raw TCP connections because most of them are deliberately
//! not what an HTTP client library would send.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use rand::{Rng, SeedableRng, seq::IndexedRandom};
use rand_chacha::ChaCha8Rng;

use aekit::serve::ServeOptions;
use common::serving::*;

const REQUESTS: usize = 10_000;

/// Sends `raw` and returns the status of the answer, or `None` if the server closed the
/// connection without one (allowed only for requests that are not HTTP). A request that may
/// be incomplete is followed by closing the sending side, which ends it for the server.
fn exchange(addr: SocketAddr, raw: &[u8], complete: bool) -> Option<u16> {
    let mut conn = TcpStream::connect(addr).expect("the server accepts connections");
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    // The server may answer (413, 400) and close before reading all of a large body.
    let _ = conn.write_all(raw);
    if !complete {
        let _ = conn.shutdown(std::net::Shutdown::Write);
    }
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let head = String::from_utf8_lossy(&answer[..answer.len().min(32)]).to_string();
    head.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

fn request(method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        out.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn random_bytes(rng: &mut ChaCha8Rng, max: usize) -> Vec<u8> {
    let n = rng.random_range(0..=max);
    (0..n).map(|_| rng.random()).collect()
}

/// A valid body for `op`, then possibly damaged.
fn body_for(rng: &mut ChaCha8Rng, op: &str, width: usize) -> Vec<u8> {
    let row = |rng: &mut ChaCha8Rng, n: usize| -> Vec<f64> {
        (0..n).map(|_| rng.random_range(-300.0..300.0)).collect()
    };
    let value = match op {
        "decode" => serde_json::json!({ "codes": [row(rng, 2)] }),
        "sample" => {
            serde_json::json!({ "n": rng.random_range(0..20), "seed": rng.random::<u32>() })
        }
        "blend" => {
            serde_json::json!({ "a": rng.random_range(0..400), "b": rng.random_range(0..400), "steps": rng.random_range(0..30) })
        }
        "traverse" => {
            serde_json::json!({ "x": rng.random_range(0..400), "dims": [rng.random_range(0..4)], "deltas": [rng.random_range(-100.0..100.0)] })
        }
        _ => {
            let w = if rng.random_bool(0.8) {
                width
            } else {
                rng.random_range(0..1000)
            };
            serde_json::json!({ "x": [row(rng, w)] })
        }
    };
    let mut bytes = value.to_string().into_bytes();
    match rng.random_range(0..6) {
        // Truncated.
        0 if !bytes.is_empty() => {
            let cut = rng.random_range(0..bytes.len());
            bytes.truncate(cut);
        }
        // A few bytes changed.
        1 => {
            for _ in 0..rng.random_range(1..8) {
                if bytes.is_empty() {
                    break;
                }
                let k = rng.random_range(0..bytes.len());
                bytes[k] = rng.random();
            }
        }
        // Deeply nested.
        2 => {
            let depth = rng.random_range(100..5000);
            bytes = format!("{{\"x\":{}{}}}", "[".repeat(depth), "]".repeat(depth)).into_bytes();
        }
        _ => {}
    }
    bytes
}

#[test]
fn ten_thousand_malformed_and_random_requests_leave_the_server_healthy() {
    let dir = common::tmp();
    let vae = train_shapes_run(dir.path(), "vae");
    let server = TestServer::start(
        &[vae],
        ServeOptions {
            max_body: 256 << 10,
            ..Default::default()
        },
    );
    let addr = server.addr;
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let ops: Vec<&str> = aekit::serve::api::OPERATIONS
        .iter()
        .copied()
        .chain(["nope", ""])
        .collect();
    let runs = [
        "shapes-vae",
        "..",
        "..%2f..%2fetc%2fpasswd",
        "%00",
        "shapes-vae%2f..",
        "x".repeat(3000).leak(),
    ];
    let methods = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW",
    ];
    let types = [
        Some("application/json"),
        Some("application/octet-stream"),
        Some("application/x-npy"),
        Some("image/png"),
        Some("text/html"),
        Some("application/json; charset=\u{1}"),
        None,
    ];
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut rss_after_warmup = None;
    for i in 0..REQUESTS {
        if i == 1000 {
            rss_after_warmup = rss_bytes();
        }
        let kind = rng.random_range(0..10);
        let raw = match kind {
            // Not HTTP at all.
            0 => random_bytes(&mut rng, 2048),
            // A request line and headers of random bytes.
            1 => {
                let mut r = b"POST /v1/runs/shapes-vae/encode HTTP/1.1\r\n".to_vec();
                r.extend(random_bytes(&mut rng, 512));
                r.extend_from_slice(b"\r\n\r\n");
                r
            }
            // Random bytes under a random content type.
            2 => {
                let op = ops.choose(&mut rng).unwrap();
                let body = random_bytes(&mut rng, 8192);
                request(
                    "POST",
                    &format!("/v1/runs/shapes-vae/{op}"),
                    *types.choose(&mut rng).unwrap(),
                    &body,
                )
            }
            // A body over the limit.
            3 if rng.random_bool(0.1) => request(
                "POST",
                "/v1/runs/shapes-vae/encode",
                Some("application/octet-stream"),
                &vec![0u8; 300 << 10],
            ),
            // Paths that try to leave the served runs, odd methods.
            4 => {
                let run = runs.choose(&mut rng).unwrap();
                let op = ops.choose(&mut rng).unwrap();
                let method = methods.choose(&mut rng).unwrap();
                request(
                    method,
                    &format!("/v1/runs/{run}/{op}"),
                    Some("application/json"),
                    b"{}",
                )
            }
            // Well-formed requests with valid or damaged bodies.
            _ => {
                let op = aekit::serve::api::OPERATIONS.choose(&mut rng).unwrap();
                let body = body_for(&mut rng, op, 784);
                request(
                    "POST",
                    &format!("/v1/runs/shapes-vae/{op}"),
                    Some("application/json"),
                    &body,
                )
            }
        };
        let status = exchange(addr, &raw, kind >= 2);
        if kind >= 2 {
            let s = status.unwrap_or_else(|| panic!("request {i} (kind {kind}) got no answer"));
            assert!(
                s < 500 || s == 503,
                "request {i} (kind {kind}) answered {s}: {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(300)])
            );
        }
        *statuses.entry(status.unwrap_or(0)).or_default() += 1;
    }
    eprintln!("statuses over {REQUESTS} requests (0 = closed without an answer): {statuses:?}");
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > 1000,
        "{statuses:?}"
    );
    assert!(
        statuses.get(&400).copied().unwrap_or(0) > 1000,
        "{statuses:?}"
    );
    assert!(!statuses.contains_key(&500), "{statuses:?}");

    // Still healthy, and still right.
    let a = agent();
    assert_eq!(get(&a, &server.url("/healthz")).status, 200);
    let dec = post_json(
        &a,
        &server.url("/v1/runs/shapes-vae/decode"),
        &serde_json::json!({ "codes": [[0.0, 0.0]] }),
    );
    assert_eq!(dec.status, 200);
    if let (Some(before), Some(after)) = (rss_after_warmup, rss_bytes()) {
        let growth = after.saturating_sub(before);
        eprintln!(
            "resident memory: {} MiB after 1,000 requests, {} MiB after {REQUESTS}",
            before >> 20,
            after >> 20
        );
        assert!(
            growth < 128 << 20,
            "memory grew by {} MiB over {} requests",
            growth >> 20,
            REQUESTS - 1000
        );
    }
}
