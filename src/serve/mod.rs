//! `aekit serve`: trained runs behind an HTTP API, with the latent-space explorer at `/`.
//!
//! The runs are loaded once at start ([`runs::ServedRun`]); each has a worker thread that owns
//! its model and batches concurrent requests ([`batcher`]). Routes ([`api`]) only ever name
//! runs by the names given at start, so no request reaches a file. Limits: a body size limit
//! (413), a per-request timeout (408), a cap on requests in progress and a bounded queue per run
//! (503), and one-line JSON errors for everything a client can get wrong (400/404/415).

pub mod api;
pub mod batcher;
pub mod body;
pub mod metrics;
pub mod runs;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::{Error, Result};

pub use batcher::BatchPolicy;
pub use runs::{LoadOptions, ServedRun, without_paths};

/// Limits and settings of a server.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub load: LoadOptions,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Longest a request may take before it is answered 408.
    pub timeout: Duration,
    /// Requests in progress at once, over all runs; more are answered 503.
    pub max_in_flight: usize,
    /// Largest answer a request may ask for, in bytes (as sent: JSON text or binary).
    pub max_answer: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            load: LoadOptions::default(),
            max_body: 8 << 20,
            timeout: Duration::from_secs(30),
            max_in_flight: 512,
            max_answer: 64 << 20,
        }
    }
}

/// What the handlers share.
pub struct AppState {
    pub runs: Vec<ServedRun>,
    pub metrics: metrics::Metrics,
    /// [`ServeOptions::max_answer`].
    pub max_answer: usize,
}

/// Loads each run directory, with the data that replaces its own when given.
pub fn load_runs(
    dirs: &[(PathBuf, Option<crate::data::DataConfig>)],
    opts: &LoadOptions,
    device: &burn::tensor::Device,
) -> Result<Vec<ServedRun>> {
    if dirs.is_empty() {
        return Err(Error::invalid("serve needs at least one run directory"));
    }
    let paths: Vec<PathBuf> = dirs.iter().map(|(p, _)| p.clone()).collect();
    dirs.iter()
        .zip(runs::names(&paths))
        .map(|((p, data), name)| ServedRun::load(p, name, data.as_ref(), opts, device))
        .collect()
}

/// The application: routes, limits and metrics over the loaded runs.
pub fn router(runs: Vec<ServedRun>, opts: &ServeOptions) -> Router {
    let metrics = metrics::Metrics::new(&runs, opts.max_in_flight);
    let state = Arc::new(AppState {
        runs,
        metrics,
        max_answer: opts.max_answer,
    });
    Router::new()
        .route("/", get(explorer_page))
        .route("/explorer.js", get(explorer_script))
        .route("/explorer.css", get(explorer_style))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics::scrape))
        .route("/v1/runs", get(api::list_runs))
        .route("/v1/runs/{run}/codes", get(api::codes))
        .route("/v1/runs/{run}/samples/{index}", get(api::sample_at))
        .route("/v1/runs/{run}/{op}", post(api::operation))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            opts.timeout,
        ))
        .layer(RequestBodyLimitLayer::new(opts.max_body))
        .layer(DefaultBodyLimit::max(opts.max_body))
        .layer(axum::middleware::from_fn(cap_headers))
        .layer(axum::middleware::map_response(json_errors(opts)))
        .with_state(state)
}

/// Bytes a request's target and headers may take, as common servers cap the header block
/// (nginx's large buffers are 8 KiB each, Apache's fields 8 KiB): more is answered 431.
pub const MAX_HEADER_BYTES: usize = 16 << 10;

/// Answers 431 to a request whose target and headers take more than [`MAX_HEADER_BYTES`]
/// (hyper alone accepts about 400 KB of them).
async fn cap_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let bytes = req.uri().to_string().len()
        + req
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum::<usize>();
    if bytes > MAX_HEADER_BYTES {
        return body::ApiError {
            status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            message: format!(
                "the request's target and headers take {bytes} bytes, more than the server's limit of {MAX_HEADER_BYTES}"
            ),
        }
        .into_response();
    }
    next.run(req).await
}

/// The limits' own answers (413, 408) and the router's 405 carry plain text; clients get the
/// same JSON error shape as from every other route.
fn json_errors(
    opts: &ServeOptions,
) -> impl Fn(Response) -> std::future::Ready<Response> + Clone + Send + Sync + 'static {
    let (max_body, timeout) = (opts.max_body, opts.timeout);
    move |res: Response| {
        let is_json = res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let message = match res.status() {
            _ if is_json => None,
            StatusCode::PAYLOAD_TOO_LARGE => Some(format!(
                "the request body is larger than the server's limit of {}",
                crate::device::human_bytes(max_body as u64)
            )),
            StatusCode::REQUEST_TIMEOUT => Some(format!(
                "the request took longer than the server's limit of {:.1} s",
                timeout.as_secs_f64()
            )),
            StatusCode::METHOD_NOT_ALLOWED => {
                Some("method not allowed: the /v1 operations take POST, everything else GET".into())
            }
            _ => None,
        };
        std::future::ready(match message {
            Some(message) => body::ApiError {
                status: res.status(),
                message,
            }
            .into_response(),
            None => res,
        })
    }
}

async fn not_found() -> Response {
    body::ApiError::not_found("no such route: see GET /v1/runs and the README's API section")
        .into_response()
}

/// A bound server, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    app: Router,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port) for `runs`.
    pub async fn bind(addr: SocketAddr, runs: Vec<ServedRun>, opts: &ServeOptions) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::invalid(format!("--addr {addr}: cannot listen: {e}")))?;
        Ok(Self {
            listener,
            app: router(runs, opts),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener
            .local_addr()
            .map_err(|e| Error::invalid(format!("the server's address is unknown: {e}")))
    }

    /// Serves until `shutdown` resolves; requests in progress then finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        axum::serve(self.listener, self.app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::invalid(format!("the server stopped: {e}")))
    }
}

/// The server's asynchronous runtime: `workers` threads, or one per core.
pub fn runtime(workers: Option<usize>) -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    builder
        .enable_all()
        .build()
        .map_err(|e| Error::invalid(format!("cannot start the server's runtime: {e}")))
}

/// A server on a thread and runtime of its own, for a front end that embeds the explorer (a
/// notebook's cell): listening before this returns, stopped when dropped (or with the process).
pub struct BackgroundServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    /// Serves `runs` at `addr` (port 0 picks a free port).
    pub fn start(addr: SocketAddr, runs: Vec<ServedRun>, opts: &ServeOptions) -> Result<Self> {
        // Two workers: a notebook's explorer serves one browser.
        let runtime = runtime(Some(2))?;
        let server = runtime.block_on(Server::bind(addr, runs, opts))?;
        let addr = server.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("aekit-explorer".into())
            .spawn(move || {
                let shutdown = async {
                    let _ = stopped.await;
                };
                if let Err(e) = runtime.block_on(server.run(shutdown)) {
                    tracing::warn!("the explorer's server stopped: {e}");
                }
            })
            .map_err(|e| Error::invalid(format!("cannot start the server's thread: {e}")))?;
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

// The explorer is compiled in: the page works offline and the server reads no file for it.
const EXPLORER_HTML: &str = include_str!("explorer/index.html");
const EXPLORER_JS: &str = include_str!("explorer/explorer.js");
const EXPLORER_CSS: &str = include_str!("explorer/explorer.css");

fn asset(text: &'static str, content_type: &'static str) -> Response {
    let mut res = text.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

async fn explorer_page() -> Response {
    asset(EXPLORER_HTML, "text/html; charset=utf-8")
}

async fn explorer_script() -> Response {
    asset(EXPLORER_JS, "text/javascript; charset=utf-8")
}

async fn explorer_style() -> Response {
    asset(EXPLORER_CSS, "text/css; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(status: StatusCode, body: &'static str) -> (StatusCode, serde_json::Value) {
        let opts = ServeOptions {
            max_body: 1 << 20,
            timeout: Duration::from_millis(1500),
            ..Default::default()
        };
        let mut plain = body.into_response();
        *plain.status_mut() = status;
        let res = json_errors(&opts)(plain).into_inner();
        let status = res.status();
        let bytes = futures_bytes(res);
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    fn futures_bytes(res: Response) -> Vec<u8> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(axum::body::to_bytes(res.into_body(), 1 << 20))
            .unwrap()
            .to_vec()
    }

    #[test]
    fn the_limits_plain_answers_become_json_errors_naming_the_limit() {
        let (s, v) = mapped(StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded");
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(v["error"].as_str().unwrap().contains("1.0 MiB"), "{v}");
        let (s, v) = mapped(StatusCode::REQUEST_TIMEOUT, "");
        assert_eq!(s, StatusCode::REQUEST_TIMEOUT);
        assert!(v["error"].as_str().unwrap().contains("1.5 s"), "{v}");
        let (_, v) = mapped(StatusCode::METHOD_NOT_ALLOWED, "");
        assert!(v["error"].as_str().unwrap().contains("POST"), "{v}");
        // Other answers pass through untouched.
        let (s, v) = mapped(StatusCode::OK, "ok");
        assert_eq!((s, v), (StatusCode::OK, serde_json::Value::Null));
    }
}
