//! `aekit serve` as a program: it prints its URL, answers, stops cleanly on SIGTERM, and
//! refuses bad arguments with one line and exit code 2.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::serving::*;

fn aekit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_aekit"))
}

fn refused(args: &[&str], needle: &str) {
    let out = aekit().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn serve_prints_its_url_answers_and_stops_on_sigterm() {
    let dir = common::tmp();
    let run = train_shapes_run(dir.path(), "vae");
    let run = run.to_str().unwrap();

    refused(&["serve", "/no/such/run"], "/no/such/run");
    refused(&["serve", run, "--addr", "nonsense"], "--addr");
    refused(&["serve", run, "--max-body-mib", "0"], "--max-body-mib");
    refused(
        &["serve", run, "--data", "idx:/no/such/data"],
        "/no/such/data",
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    refused(
        &["serve", run, "--addr", &format!("127.0.0.1:{port}")],
        "--addr",
    );

    let mut child = aekit()
        .args(["serve", run, "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .trim_end_matches('/')
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let a = agent();
    assert_eq!(get(&a, &format!("{url}/healthz")).status, 200);
    let page = get(&a, &format!("{url}/"));
    assert!(String::from_utf8_lossy(&page.body).contains("aekit explorer"));
    assert_eq!(get(&a, &format!("{url}/explorer.js")).status, 200);

    // Clients that hang up before reading a large answer (the server then writes to a closed
    // socket) must not end the server.
    let codes: Vec<Vec<f32>> = (0..256).map(|i| vec![i as f32 / 100.0, -1.0]).collect();
    let body = serde_json::json!({ "codes": codes }).to_string();
    let path = format!(
        "/v1/runs/{}/decode",
        std::path::Path::new(run)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
    );
    let addr = url.trim_start_matches("http://").to_string();
    for _ in 0..20 {
        use std::io::Write;
        let mut conn = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            conn,
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        // Closing with unread data pending makes the kernel reset the connection.
        std::thread::sleep(std::time::Duration::from_millis(5));
        drop(conn);
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        get(&a, &format!("{url}/healthz")).status,
        200,
        "the server outlives clients that hang up"
    );

    // SAFETY: kill(2) on the child's own pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped"));
}
