//! `aekit serve`'s HTTP API on an ephemeral 127.0.0.1 port: every route answers exactly what
//! the library computes for the same input, batched answers equal unbatched ones, and bad
//! requests get JSON errors with the right status.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use aekit::data::{Matrix, Split};
use aekit::eval::anomaly::AnomalyDetector;
use aekit::serve::{BatchPolicy, ServeOptions};
use serde_json::json;

use common::serving::*;

struct Fixture {
    _dir: tempfile::TempDir,
    vae: aekit::Run,
    dense: aekit::Run,
    server: TestServer,
}

fn fixture(opts: ServeOptions) -> Fixture {
    let dir = common::tmp();
    let vae_dir = train_shapes_run(dir.path(), "vae");
    let dense_dir = train_shapes_run(dir.path(), "dense");
    // The dense run's stored threshold is removed: the server fits it itself, as for runs
    // trained before thresholds were stored.
    std::fs::remove_file(dense_dir.join("anomaly.json")).unwrap();
    let device = burn::tensor::Device::flex();
    let vae = aekit::Run::open(&vae_dir, &device).unwrap();
    let dense = aekit::Run::open(&dense_dir, &device).unwrap();
    let server = TestServer::start(&[vae_dir, dense_dir], opts);
    Fixture {
        _dir: dir,
        vae,
        dense,
        server,
    }
}

/// Test samples in the raw scale (what a client sends) and in the model's scale.
fn test_samples(run: &aekit::Run, n: usize) -> (Matrix, Matrix) {
    let data = run.load_data(None, Split::Test).unwrap();
    let x = Matrix::new(n, data.x.cols, data.x.data[..n * data.x.cols].to_vec()).unwrap();
    let mut raw = x.clone();
    run.preprocessor.invert(&mut raw).unwrap();
    (raw, x)
}

fn raw_of(run: &aekit::Run, mut m: Matrix) -> Vec<Vec<f32>> {
    run.preprocessor.invert(&mut m).unwrap();
    matrix_rows(&m)
}

fn f32_bytes(m: &Matrix) -> Vec<u8> {
    m.data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn every_route_answers_what_the_library_computes_bit_for_bit() {
    let f = fixture(ServeOptions::default());
    let a = agent();
    let url = |p: &str| f.server.url(p);

    // The run list names both runs, their capabilities and the stored or fitted threshold.
    let runs = get(&a, &url("/v1/runs")).json();
    let names: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shapes-vae", "shapes-dense"]);
    assert_eq!(runs["runs"][0]["capabilities"]["prior"], true);
    assert_eq!(runs["runs"][1]["capabilities"]["prior"], false);
    let stored = AnomalyDetector::stored(&f.vae).unwrap().unwrap();
    assert_eq!(
        runs["runs"][0]["anomaly"]["threshold"].as_f64(),
        Some(stored.threshold)
    );
    let train = f.dense.load_data(None, Split::Train).unwrap();
    let fitted = AnomalyDetector::fit(
        &f.dense,
        &train.x,
        None,
        aekit::eval::anomaly::ScoreKind::SquaredError,
        0.1,
    )
    .unwrap();
    assert_eq!(
        runs["runs"][1]["anomaly"]["threshold"].as_f64(),
        Some(fitted.threshold)
    );

    for (name, run) in [("shapes-vae", &f.vae), ("shapes-dense", &f.dense)] {
        let route = |op: &str| url(&format!("/v1/runs/{name}/{op}"));
        let (raw, x) = test_samples(run, 7);
        let codes = run.model.encode(&x).unwrap();

        // encode: JSON, f32 and NPY bodies and answers.
        let body = json!({ "x": matrix_rows(&raw) });
        let enc = post_json(&a, &route("encode"), &body);
        assert_eq!(enc.status, 200);
        assert_eq!(
            bits(&rows(&enc.json(), "codes")),
            bits(&matrix_rows(&codes)),
            "{name} encode"
        );
        let bin = post_accept(
            &a,
            &route("encode"),
            "application/octet-stream",
            "application/octet-stream",
            &f32_bytes(&raw),
        );
        assert_eq!(bin.status, 200);
        assert_eq!(
            bin.header("x-aekit-shape"),
            Some(format!("7,{}", codes.cols).as_str())
        );
        assert_eq!(bin.body, f32_bytes(&codes), "{name} encode, f32 in and out");
        let npy = aekit::data::npy::to_bytes(&[raw.rows, raw.cols], &raw.data).unwrap();
        let npy_answer = post_accept(
            &a,
            &route("encode"),
            "application/x-npy",
            "application/x-npy",
            &npy,
        );
        assert_eq!(npy_answer.status, 200);
        assert_eq!(
            npy_answer.body,
            aekit::data::npy::to_bytes(&[codes.rows, codes.cols], &codes.data).unwrap(),
            "{name} encode, NPY in and out"
        );

        // decode: outputs in the raw scale.
        let dec = post_json(
            &a,
            &route("decode"),
            &json!({ "codes": matrix_rows(&codes) }),
        );
        assert_eq!(dec.status, 200);
        let expected = raw_of(run, run.model.decode(&codes).unwrap());
        assert_eq!(
            bits(&rows(&dec.json(), "x")),
            bits(&expected),
            "{name} decode"
        );

        // reconstruct.
        let rec = post_json(&a, &route("reconstruct"), &body);
        let expected = raw_of(run, run.model.reconstruct(&x).unwrap());
        assert_eq!(
            bits(&rows(&rec.json(), "x")),
            bits(&expected),
            "{name} reconstruct"
        );

        // score: the library's detector scores, the threshold, and per-feature errors.
        let score = post_json(&a, &route("score"), &body).json();
        let detector = AnomalyDetector::with_threshold(Default::default(), 1.0).unwrap();
        let scores = detector.decision_function(run, &x, None).unwrap();
        let got: Vec<f64> = score["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(got, scores, "{name} score");
        let errors = rows(&score, "errors");
        let recon = run.model.reconstruct(&x).unwrap();
        assert_eq!(
            errors[3][100].to_bits(),
            ((recon.row(3)[100] - x.row(3)[100]).powi(2)).to_bits()
        );
        let t = score["threshold"].as_f64().unwrap();
        let flagged: Vec<bool> = score["anomalous"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        assert_eq!(flagged, scores.iter().map(|s| *s > t).collect::<Vec<_>>());

        // blend, by map index and by values: the library's blend of the same two samples.
        let blend = post_json(
            &a,
            &route("blend"),
            &json!({ "a": 0, "b": matrix_rows(&raw)[1], "steps": 5 }),
        )
        .json();
        let lib = aekit::explore::blend(
            &run.model,
            x.row(0),
            x.row(1),
            5,
            run.model.capabilities().prior,
        )
        .unwrap();
        assert_eq!(
            bits(&rows(&blend, "latent")),
            bits(&raw_of(run, lib.latent)),
            "{name} blend latent"
        );
        assert_eq!(
            bits(&rows(&blend, "pixel")),
            bits(&raw_of(run, lib.pixel)),
            "{name} blend pixels"
        );
        assert_eq!(blend["spherical"], run.model.capabilities().prior);

        // traverse.
        let tr = post_json(
            &a,
            &route("traverse"),
            &json!({ "x": 2, "dims": [1], "deltas": [-10.0, 1.0] }),
        )
        .json();
        let lib = aekit::explore::traverse(&run.model, x.row(2), &[1], &[-10.0, 1.0]).unwrap();
        assert_eq!(
            bits(&rows(&tr, "x")),
            bits(&raw_of(run, lib)),
            "{name} traverse"
        );

        // The sample on the map and its code (the map's codes come from one pass over all
        // its samples).
        let s = get(&a, &url(&format!("/v1/runs/{name}/samples/4"))).json();
        assert_eq!(bits(&rows(&s, "x")), bits(&matrix_rows(&raw))[4..5]);
        let (_, all) = test_samples(run, 300);
        let map_codes = matrix_rows(&run.model.encode(&all).unwrap());
        assert_eq!(bits(&rows(&s, "code")), bits(&map_codes[4..5]));

        // The map: as many points as test samples, labelled.
        let map = get(&a, &url(&format!("/v1/runs/{name}/codes"))).json();
        assert_eq!(map["points"].as_array().unwrap().len(), 300);
        assert_eq!(map["labels"].as_array().unwrap().len(), 300);
        assert_eq!(
            map["axes"],
            if run.model.latent_dim() == 2 {
                "code"
            } else {
                "pca"
            }
        );
    }

    // sample: the library's prior draws for the VAE; the plain autoencoder has no prior.
    let s = post_json(
        &a,
        &url("/v1/runs/shapes-vae/sample"),
        &json!({ "n": 5, "seed": 3 }),
    )
    .json();
    let lib = aekit::eval::sample_prior(&f.vae.model, 5, 3).unwrap();
    assert_eq!(bits(&rows(&s, "x")), bits(&raw_of(&f.vae, lib)));
    let refused = post_json(&a, &url("/v1/runs/shapes-dense/sample"), &json!({ "n": 5 }));
    assert_eq!(refused.status, 400);
    assert!(refused.json()["error"].as_str().unwrap().contains("prior"));

    // Decoding a map point of the 8-D run decodes its PCA preimage.
    let map = get(&a, &url("/v1/runs/shapes-dense/codes")).json();
    let p = map["points"][5].clone();
    let d = post_json(
        &a,
        &url("/v1/runs/shapes-dense/decode"),
        &json!({ "map": [p] }),
    )
    .json();
    let code = rows(&d, "codes");
    assert_eq!(code[0].len(), 8);

    // A PNG of a test image encodes like its bytes.
    let (raw, _) = test_samples(&f.vae, 1);
    let pixels: Vec<u8> = raw.data.iter().map(|v| v.round() as u8).collect();
    let raw = Matrix::new(1, 784, pixels.iter().map(|&p| p as f32).collect()).unwrap();
    let mut png = Vec::new();
    image::GrayImage::from_raw(28, 28, pixels)
        .unwrap()
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let from_png = post(&a, &url("/v1/runs/shapes-vae/encode"), "image/png", &png).json();
    let from_json = post_json(
        &a,
        &url("/v1/runs/shapes-vae/encode"),
        &json!({ "x": matrix_rows(&raw) }),
    )
    .json();
    assert_eq!(
        bits(&rows(&from_png, "codes")),
        bits(&rows(&from_json, "codes"))
    );

    assert_eq!(get(&a, &url("/healthz")).status, 200);
    let metrics = String::from_utf8(get(&a, &url("/metrics")).body).unwrap();
    assert!(
        metrics
            .contains("aekit_http_requests_total{route=\"/v1/runs/{run}/encode\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aekit_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("aekit_batch_passes_total{run=\"shapes-vae\"}"),
        "{metrics}"
    );
}

#[test]
fn a_denoising_run_corrupts_with_its_own_noise_and_restores() {
    let dir = common::tmp();
    let path = train_shapes_run(dir.path(), "denoise");
    let run = aekit::Run::open(&path, &burn::tensor::Device::flex()).unwrap();
    let server = TestServer::start(&[path], ServeOptions::default());
    let (raw, x) = test_samples(&run, 3);
    let answer = post_json(
        &agent(),
        &server.url("/v1/runs/shapes-denoise/reconstruct"),
        &json!({ "x": matrix_rows(&raw), "corrupt": true, "seed": 4 }),
    )
    .json();
    let noisy = aekit::eval::corrupt(&x, run.model.config().noise().unwrap(), 4);
    assert_ne!(noisy.data, x.data);
    let restored = run.model.reconstruct(&noisy).unwrap();
    assert_eq!(bits(&rows(&answer, "noisy")), bits(&raw_of(&run, noisy)));
    assert_eq!(bits(&rows(&answer, "x")), bits(&raw_of(&run, restored)));
    let runs = get(&agent(), &server.url("/v1/runs")).json();
    assert_eq!(runs["runs"][0]["denoising"], true);
}

#[test]
fn concurrent_requests_share_forward_passes_and_get_their_own_rows_back() {
    let f = fixture(ServeOptions {
        load: aekit::serve::LoadOptions {
            // A long wait makes the gathering certain rather than likely.
            batch: BatchPolicy {
                max_wait: Duration::from_millis(300),
                ..BatchPolicy::default()
            },
            ..Default::default()
        },
        ..Default::default()
    });
    let (raw, x) = test_samples(&f.vae, 48);
    let expected = matrix_rows(&f.vae.model.encode(&x).unwrap());
    let url = f.server.url("/v1/runs/shapes-vae/encode");
    let clients = 24;
    let barrier = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let (url, barrier) = (url.clone(), barrier.clone());
            // Client c asks for rows 2c and 2c+1.
            let body = json!({ "x": [raw.row(2 * c), raw.row(2 * c + 1)] });
            std::thread::spawn(move || {
                let a = agent();
                barrier.wait();
                rows(&post_json(&a, &url, &body).json(), "codes")
            })
        })
        .collect();
    // A row computed in a batch of many rows may differ from the same row computed alone in
    // the last bits: the matrix-product kernel picks its blocking of the inner dimension by
    // the matrix's size. Each client must get its own rows, to float rounding.
    for (c, h) in handles.into_iter().enumerate() {
        let got = h.join().unwrap();
        for (g, e) in got
            .iter()
            .flatten()
            .zip(expected[2 * c..2 * c + 2].iter().flatten())
        {
            assert!(
                (g - e).abs() <= 1e-5 * e.abs().max(1.0),
                "client {c}: {g} against {e}"
            );
        }
    }
    let metrics = String::from_utf8(get(&agent(), &f.server.url("/metrics")).body).unwrap();
    let count = |name: &str| -> u64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{run=\"shapes-vae\"}}")))
            .unwrap_or_else(|| panic!("{name} missing: {metrics}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let (passes, jobs) = (
        count("aekit_batch_passes_total"),
        count("aekit_batch_jobs_total"),
    );
    assert_eq!(jobs, clients as u64);
    assert!(
        passes < jobs,
        "{clients} simultaneous requests ran as {passes} passes"
    );
}

#[test]
fn bad_requests_get_json_errors_with_the_right_status() {
    let f = fixture(ServeOptions {
        max_body: 64 << 10,
        ..Default::default()
    });
    let a = agent();
    let url = |p: &str| f.server.url(p);
    let check = |ans: Answer, status: u16, needle: &str| {
        assert_eq!(ans.status, status, "{}", String::from_utf8_lossy(&ans.body));
        let msg = ans.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
        assert!(!msg.contains('\n'), "one line: {msg:?}");
    };
    let enc = url("/v1/runs/shapes-vae/encode");
    check(
        post(&a, &enc, "application/json", b"{\"x\": [[1, 2"),
        400,
        "malformed JSON",
    );
    check(
        post_json(
            &a,
            &url("/v1/runs/shapes-vae/decode"),
            &json!({ "codes": [[0.0, 0.0]], "class": 1 }),
        ),
        400,
        "not conditional",
    );
    check(post(&a, &enc, "application/json", b""), 400, "no body");
    check(
        post_json(&a, &enc, &json!({ "x": [[1.0, 2.0]] })),
        400,
        "expects 784",
    );
    check(post_json(&a, &enc, &json!({ "y": [[1.0]] })), 400, "\"x\"");
    check(
        post_json(&a, &enc, &json!({ "x": [vec![1e39; 784]] })),
        400,
        "finite",
    );
    check(post_json(&a, &enc, &json!({ "x": [] })), 400, "no rows");
    let mut nan = vec![0u8; 784 * 4];
    nan[8..12].copy_from_slice(&f32::NAN.to_le_bytes());
    check(post(&a, &enc, "application/octet-stream", &nan), 400, "NaN");
    check(
        post(&a, &enc, "application/octet-stream", &[0u8; 13]),
        400,
        "multiple of a row",
    );
    check(
        post(&a, &enc, "application/x-npy", b"\x93NUMPY garbage"),
        400,
        "NPY",
    );
    check(
        post(&a, &enc, "image/png", b"\x89PNG\r\n\x1a\n not really"),
        400,
        "PNG",
    );
    check(post(&a, &enc, "text/csv", b"1,2,3"), 415, "Content-Type");
    // The server answers 413 without reading the body and closes that connection: the request
    // goes on an agent of its own, so that no later request is sent on the closed connection.
    check(
        post(
            &agent(),
            &enc,
            "application/octet-stream",
            &vec![0u8; 128 << 10],
        ),
        413,
        "limit of 64.0 KiB",
    );
    check(
        post_json(&a, &url("/v1/runs/nope/encode"), &json!({})),
        404,
        "no run named",
    );
    check(
        get(&a, &url("/v1/runs/..%2f..%2fetc%2fpasswd/codes")),
        404,
        "no run named",
    );
    check(get(&a, &url("/v1/runs/../../etc/passwd")), 404, "");
    check(
        get(&a, &url("/v1/runs/shapes-vae/samples/100000")),
        404,
        "not on the map",
    );
    check(
        get(&a, &url("/v1/runs/shapes-vae/samples/-1")),
        404,
        "not on the map",
    );
    check(
        post_json(&a, &url("/v1/runs/shapes-vae/launch"), &json!({})),
        404,
        "no operation",
    );
    check(
        post_json(
            &a,
            &url("/v1/runs/shapes-vae/decode"),
            &json!({ "codes": [[0.0, 0.0]], "map": [[0.0, 0.0]] }),
        ),
        400,
        "either",
    );
    check(
        post_json(
            &a,
            &url("/v1/runs/shapes-vae/decode"),
            &json!({ "codes": [[0.0, 0.0]], "extra": 1 }),
        ),
        400,
        "unknown field",
    );
    check(
        post_json(
            &a,
            &url("/v1/runs/shapes-vae/sample"),
            &json!({ "n": 1000000 }),
        ),
        400,
        "between 1 and",
    );
    check(
        post_json(
            &a,
            &url("/v1/runs/shapes-vae/traverse"),
            &json!({ "x": 0, "dims": [5] }),
        ),
        400,
        "does not exist",
    );
    check(
        post_json(
            &a,
            &url("/v1/runs/shapes-vae/reconstruct"),
            &json!({ "x": 0, "corrupt": true }),
        ),
        400,
        "",
    );
    check(get(&a, &url("/v2/anything")), 404, "no such route");
    // A small request for a huge answer: 6,000 points on the map (36 KB) would decode into
    // 6,000 images as JSON text (about 75 MB), past the 64 MiB limit; refused before it is
    // computed.
    let points = vec![[0.0f32, 0.0]; 6000];
    check(
        post_json(
            &a,
            &url("/v1/runs/shapes-vae/decode"),
            &json!({ "map": points }),
        ),
        400,
        "--max-answer-mib",
    );
    // A header block of 200 KB is refused (431), in the same JSON shape; 15 KB passes.
    for (bytes, status) in [(200_000, "431"), (15_000, "200")] {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(f.server.addr).unwrap();
        write!(
            conn,
            "GET /healthz HTTP/1.1\r\nHost: test\r\nX-Padding: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(bytes)
        )
        .unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).unwrap();
        let answer = String::from_utf8_lossy(&answer).to_string();
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{}",
            &answer[..answer.len().min(200)]
        );
        if status == "431" {
            assert!(
                answer.contains("\"error\"") && answer.contains("limit of 16384"),
                "{answer}"
            );
        }
    }
    // A GET on a POST route is refused by the router, not answered.
    check(get(&a, &url("/v1/runs/shapes-vae/encode")), 405, "POST");
    assert_eq!(get(&a, &url("/healthz")).status, 200);
}

#[test]
fn a_full_queue_answers_503_and_shutdown_lets_requests_in_progress_finish() {
    let mut f = fixture(ServeOptions {
        load: aekit::serve::LoadOptions {
            batch: BatchPolicy {
                max_wait: Duration::ZERO,
                max_rows: 1,
                queue: 1,
            },
            ..Default::default()
        },
        ..Default::default()
    });
    let (raw, _) = test_samples(&f.vae, 300);
    // 300 rows per request keeps the worker busy while the others arrive.
    let body = Arc::new(f32_bytes(&raw));
    let url = f.server.url("/v1/runs/shapes-vae/reconstruct");
    let clients = 16;
    // Whether the queue is found full depends on how the threads are scheduled: a burst on a
    // loaded machine can be served one request at a time. Up to five bursts, until one sees it.
    let mut results: Vec<(u16, Option<String>)> = Vec::new();
    for _ in 0..5 {
        let barrier = Arc::new(Barrier::new(clients));
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let (url, barrier, body) = (url.clone(), barrier.clone(), body.clone());
                std::thread::spawn(move || {
                    let a = agent();
                    barrier.wait();
                    let ans = post(&a, &url, "application/octet-stream", &body);
                    (ans.status, ans.header("retry-after").map(str::to_string))
                })
            })
            .collect();
        results.extend(handles.into_iter().map(|h| h.join().unwrap()));
        if results.iter().any(|(s, _)| *s == 503) {
            break;
        }
    }
    assert!(
        results.iter().all(|(s, _)| *s == 200 || *s == 503),
        "{results:?}"
    );
    assert!(
        results.iter().any(|(s, _)| *s == 503),
        "bursts of 16 requests into a queue of 1: {results:?}"
    );
    assert!(results.iter().any(|(s, _)| *s == 200));
    assert!(
        results
            .iter()
            .filter(|(s, _)| *s == 503)
            .all(|(_, r)| r.as_deref() == Some("1"))
    );

    // A request in progress when shutdown begins still gets its answer: its headers and half
    // its body are sent, the server is seen to hold it, shutdown begins, then the rest follows.
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(f.server.addr).unwrap();
    write!(
        conn,
        "POST /v1/runs/shapes-vae/reconstruct HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let half = body.len() / 2;
    conn.write_all(&body[..half]).unwrap();
    let a = agent();
    let metrics_url = f.server.url("/metrics");
    while !String::from_utf8(get(&a, &metrics_url).body)
        .unwrap()
        .lines()
        .any(|l| l == "aekit_http_in_flight 2")
    {
        // 2: the held request and this scrape.
        std::thread::yield_now();
    }
    f.server.stop();
    conn.write_all(&body[half..]).unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let head = String::from_utf8_lossy(&answer[..40.min(answer.len())]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    f.server.shutdown();
}

/// A conditional run's requests name a class: answers are the library's under that class, a
/// sample on the map is taken under its own label, samples without a class go through every
/// class in turn, and a request that needs a class and gives none is refused saying so.
#[test]
fn a_conditional_run_answers_under_the_class_asked_for() {
    let dir = common::tmp();
    let path = train_shapes_run(dir.path(), "cvae");
    let run = aekit::Run::open(&path, &burn::tensor::Device::flex()).unwrap();
    let server = TestServer::start(&[path], ServeOptions::default());
    let url = |op: &str| server.url(&format!("/v1/runs/shapes-cvae/{op}"));
    let runs = get(&agent(), &server.url("/v1/runs")).json();
    let classes = runs["runs"][0]["condition_classes"].as_u64().unwrap() as u32;
    assert_eq!(classes as usize, run.model.classes());
    assert!(classes >= 2);

    let z = Matrix::new(1, 2, vec![0.4, -0.3]).unwrap();
    let mut decoded = Vec::new();
    for c in 0..classes {
        let answer = post_json(
            &agent(),
            &url("decode"),
            &json!({ "codes": matrix_rows(&z), "class": c }),
        )
        .json();
        let want = run.model.with_class(c).unwrap().decode(&z).unwrap();
        assert_eq!(bits(&rows(&answer, "x")), bits(&raw_of(&run, want)));
        decoded.push(rows(&answer, "x"));
    }
    assert_ne!(decoded[0], decoded[1]);

    let (raw, x) = test_samples(&run, 3);
    let answer = post_json(
        &agent(),
        &url("encode"),
        &json!({ "x": matrix_rows(&raw), "class": 1 }),
    )
    .json();
    let want = run.model.encode_given(&x, Some(&[1, 1, 1])).unwrap();
    assert_eq!(bits(&rows(&answer, "codes")), bits(&matrix_rows(&want)));

    let answer = post_json(&agent(), &url("sample"), &json!({ "n": 4, "seed": 2 })).json();
    let want = aekit::eval::sample_prior(&run.model, 4, 2).unwrap();
    assert_eq!(bits(&rows(&answer, "x")), bits(&raw_of(&run, want)));

    let label = run.load_data(None, Split::Test).unwrap().labels.unwrap()[0];
    let answer = post_json(
        &agent(),
        &url("traverse"),
        &json!({ "x": 0, "dims": [0], "deltas": [0.0, 1.0] }),
    )
    .json();
    let want = aekit::explore::traverse(
        &run.model.with_class(label).unwrap(),
        x.row(0),
        &[0],
        &[0.0, 1.0],
    )
    .unwrap();
    assert_eq!(bits(&rows(&answer, "x")), bits(&raw_of(&run, want)));

    for (op, body, says) in [
        (
            "decode",
            json!({ "codes": matrix_rows(&z) }),
            "conditional on the class",
        ),
        (
            "reconstruct",
            json!({ "x": matrix_rows(&raw) }),
            "conditional on the class",
        ),
        (
            "decode",
            json!({ "codes": matrix_rows(&z), "class": classes }),
            "\"class\" must lie",
        ),
        (
            "decode",
            json!({ "codes": matrix_rows(&z), "class": "two" }),
            "class index",
        ),
    ] {
        let answer = post_json(&agent(), &url(op), &body);
        assert_eq!(answer.status, 400, "{op} {body}");
        let error = answer.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(says), "{op} {body}: {error}");
    }
}

/// Answers name the data by its files' names, not by the server's directories, unless the
/// operator asks (`--show-paths`).
#[test]
fn answers_name_the_data_without_the_servers_directories() {
    use aekit::serve::without_paths;
    assert_eq!(
        without_paths("images:/srv/data/faces (test)"),
        "images:faces (test)"
    );
    assert_eq!(without_paths("/home/a/m.csv"), "m.csv");
    assert_eq!(
        without_paths("mnist/train (/root/.cache/aekit/mnist)"),
        "mnist/train (mnist)"
    );
    assert_eq!(without_paths("the array X"), "the array X");
    let dir = common::tmp();
    let run_dir = train_shapes_run(dir.path(), "vae");
    let device = burn::tensor::Device::flex();
    let run = aekit::Run::open(&run_dir, &device).unwrap();
    let secret = dir.path().join("secret-place");
    std::fs::create_dir_all(&secret).unwrap();
    let npy = secret.join("held-out.npy");
    aekit::data::npy::write(&npy, &run.load_data(None, Split::Test).unwrap().x).unwrap();
    let data = aekit::data::DataConfig::for_source(&format!("npy:{}", npy.display()));
    for show_paths in [false, true] {
        let opts = aekit::serve::LoadOptions {
            show_paths,
            ..Default::default()
        };
        let served =
            aekit::serve::ServedRun::load(&run_dir, "r".into(), Some(&data), &opts, &device)
                .unwrap();
        let answers = format!("{} {}", served.info, served.map.origin);
        assert!(answers.contains("held-out.npy"), "{answers}");
        assert_eq!(answers.contains("secret-place"), show_paths, "{answers}");
    }
}
