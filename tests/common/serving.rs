//! A server on an ephemeral 127.0.0.1 port over runs trained for the test, and a client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use aekit::serve::{ServeOptions, Server};

/// Trains a small run on the built-in shapes: a 2-D VAE (`"vae"`), a 2-D conditional VAE
/// (`"cvae"`), a dense autoencoder with an 8-D code (`"dense"`) or the same trained to denoise
/// (`"denoise"`), with the anomaly threshold stored as `aekit train` stores it.
pub fn train_shapes_run(dir: &Path, kind: &str) -> PathBuf {
    let mut cfg = aekit::RunConfig::default();
    cfg.data.shapes_train = 1000;
    cfg.data.shapes_test = 300;
    cfg.model = match kind {
        "vae" => aekit::ModelConfig::new(aekit::VaeConfig::new(vec![64], 2)),
        "cvae" => aekit::ModelConfig::new(aekit::model::CvaeConfig {
            vae: aekit::VaeConfig::new(vec![64], 2),
        }),
        "ssvae" => aekit::ModelConfig::new(aekit::model::variants::ssvae::SsVaeConfig {
            vae: aekit::VaeConfig::new(vec![64], 2),
            labelled: aekit::data::LabelChoice::Balanced(40),
            labelled_batch: 20,
            class_weight: 50.0,
        }),
        _ => aekit::ModelConfig::new(aekit::DenseConfig::new(vec![64], 8)),
    };
    if kind == "denoise" {
        cfg.model.shared_mut().noise = Some("gaussian:0.3".parse().unwrap());
    }
    cfg.train.epochs = 3;
    cfg.train.batch_size = 50;
    let out = dir.join(format!("shapes-{kind}"));
    let mut opts = aekit::FitOptions::new(&out);
    opts.quiet = true;
    aekit::train(&cfg, &opts).expect("training the test run");
    // The library stores the run's detector where the run is made, for every front end.
    assert!(
        out.join("anomaly.json").is_file(),
        "aekit::train stores the anomaly threshold"
    );
    out
}

/// A running server; dropping it shuts the server down and waits for it.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(dirs: &[PathBuf], opts: ServeOptions) -> Self {
        let dirs: Vec<(PathBuf, Option<aekit::DataConfig>)> =
            dirs.iter().map(|d| (d.clone(), None)).collect();
        let runs = aekit::serve::load_runs(&dirs, &opts.load, &burn::tensor::Device::flex())
            .expect("loading the runs");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = Server::bind("127.0.0.1:0".parse().unwrap(), runs, &opts)
                    .await
                    .unwrap();
                addr_tx.send(server.local_addr().unwrap()).unwrap();
                server
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let addr = addr_rx.recv().expect("the server reports its address");
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Begins a graceful shutdown: no new connections; requests in progress finish.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// Stops and waits for the server to end.
    pub fn shutdown(&mut self) {
        self.stop();
        if let Some(t) = self.thread.take() {
            t.join().expect("the server thread ends cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Status, content type and body of an answer.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The JSON of an answer that must be 200 OK (the body shown where it is not).
    pub fn ok_json(&self) -> serde_json::Value {
        assert_eq!(self.status, 200, "{}", String::from_utf8_lossy(&self.body));
        self.json()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn answer(res: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut res = res.expect("the request reaches the server");
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let status = res.status().as_u16();
    let body = res
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_vec()
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        headers,
        body,
    }
}

pub fn get(agent: &ureq::Agent, url: &str) -> Answer {
    answer(agent.get(url).call())
}

pub fn post(agent: &ureq::Agent, url: &str, content_type: &str, body: &[u8]) -> Answer {
    post_accept(agent, url, content_type, "application/json", body)
}

pub fn post_accept(
    agent: &ureq::Agent,
    url: &str,
    content_type: &str,
    accept: &str,
    body: &[u8],
) -> Answer {
    answer(
        agent
            .post(url)
            .header("Content-Type", content_type)
            .header("Accept", accept)
            .send(body),
    )
}

pub fn post_json(agent: &ureq::Agent, url: &str, body: &serde_json::Value) -> Answer {
    post(agent, url, "application/json", body.to_string().as_bytes())
}

/// Rows of f32 from a JSON answer's field.
pub fn rows(v: &serde_json::Value, field: &str) -> Vec<Vec<f32>> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("no rows under {field:?} in {v}"))
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

pub fn matrix_rows(m: &aekit::Matrix) -> Vec<Vec<f32>> {
    (0..m.rows).map(|i| m.row(i).to_vec()).collect()
}

/// Bit patterns, so that comparisons are exact and NaN-safe.
pub fn bits(rows: &[Vec<f32>]) -> Vec<Vec<u32>> {
    rows.iter()
        .map(|r| r.iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// Resident memory of this process, in bytes (Linux).
pub fn rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Serve options whose batcher runs each request at once (no wait to gather a batch).
pub fn unbatched() -> aekit::serve::ServeOptions {
    let mut opts = aekit::serve::ServeOptions::default();
    opts.load.batch = aekit::serve::BatchPolicy {
        max_wait: std::time::Duration::ZERO,
        ..aekit::serve::BatchPolicy::default()
    };
    opts
}

/// `POST /v1/runs/RUN/predict` of the rows `raw` (as given, before the run's scaling): must
/// answer `want`'s probabilities bit for bit and their most probable classes. Returns the
/// answer.
pub fn assert_predicts(
    server: &TestServer,
    run: &str,
    raw: &aekit::Matrix,
    want: &aekit::Matrix,
) -> serde_json::Value {
    let body = serde_json::json!({ "x": matrix_rows(raw) });
    let answer = post_json(
        &agent(),
        &server.url(&format!("/v1/runs/{run}/predict")),
        &body,
    );
    let json = answer.ok_json();
    assert_eq!(
        rows(&json, "probabilities"),
        matrix_rows(want),
        "the answer is the library's, bit for bit"
    );
    let classes: Vec<u32> = serde_json::from_value(json["classes"].clone()).unwrap();
    assert_eq!(classes, aekit::model::classifier::predicted_classes(want));
    json
}
