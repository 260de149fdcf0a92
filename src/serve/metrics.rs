//! `/metrics` in Prometheus' text format: requests, errors and latency per route, requests
//! refused for load, and how the batchers grouped requests into forward passes.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

use super::AppState;
use super::batcher::BatchStats;
use super::body::ApiError;
use super::runs::ServedRun;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabel {
    run: String,
}

fn latency_histogram() -> Histogram {
    // 50 µs to about 13 s.
    Histogram::new(exponential_buckets(50e-6, 2.0, 19))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    errors: Family<RouteStatus, Counter>,
    latency: Family<RouteLabel, Histogram, fn() -> Histogram>,
    shed: Counter,
    in_flight_gauge: Gauge,
    in_flight: Arc<Semaphore>,
}

impl Metrics {
    pub fn new(runs: &[ServedRun], max_in_flight: usize) -> Self {
        let mut registry = Registry::with_prefix("aekit");
        let requests = Family::<RouteStatus, Counter>::default();
        let errors = Family::<RouteStatus, Counter>::default();
        let latency: Family<RouteLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let shed = Counter::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_errors",
            "HTTP requests answered with a 4xx or 5xx status",
            errors.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response",
            latency.clone(),
        );
        registry.register(
            "http_shed",
            "Requests refused because too many were in progress",
            shed.clone(),
        );
        let in_flight_gauge = Gauge::default();
        registry.register(
            "http_in_flight",
            "Requests in progress",
            in_flight_gauge.clone(),
        );
        registry.register_collector(Box::new(BatchCollector {
            runs: runs
                .iter()
                .map(|r| (r.name.clone(), r.batcher.stats_handle()))
                .collect(),
        }));
        Self {
            registry,
            requests,
            errors,
            latency,
            shed,
            in_flight_gauge,
            in_flight: Arc::new(Semaphore::new(max_in_flight.max(1))),
        }
    }
}

/// The route a request matched, with the operation named for `/v1/runs/{run}/{op}` (a closed
/// set, so labels cannot grow with what clients send).
fn route_label(req: &Request) -> String {
    let Some(matched) = req.extensions().get::<MatchedPath>() else {
        return "unmatched".into();
    };
    let route = matched.as_str();
    if route == "/v1/runs/{run}/{op}" {
        let op = req.uri().path().rsplit('/').next().unwrap_or("");
        if super::api::OPERATIONS.contains(&op) {
            return format!("/v1/runs/{{run}}/{op}");
        }
    }
    route.to_string()
}

/// Counts and times every request, and refuses new ones while too many are in progress.
pub async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let m = &state.metrics;
    let route = route_label(&req);
    let start = Instant::now();
    let response = match m.in_flight.clone().try_acquire_owned() {
        Ok(permit) => {
            // Dropped however the request ends, a timeout's cancellation included.
            let _held = (permit, InFlight::new(&m.in_flight_gauge));
            next.run(req).await
        }
        Err(_) => {
            m.shed.inc();
            ApiError::busy("too many requests in progress; retry shortly").into_response()
        }
    };
    let status = response.status();
    let labels = RouteStatus {
        route: route.clone(),
        status: status.as_u16(),
    };
    m.requests.get_or_create(&labels).inc();
    if status.is_client_error() || status.is_server_error() {
        m.errors.get_or_create(&labels).inc();
    }
    m.latency
        .get_or_create(&RouteLabel { route })
        .observe(start.elapsed().as_secs_f64());
    response
}

struct InFlight(Gauge);

impl InFlight {
    fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub async fn scrape(State(state): State<Arc<AppState>>) -> Response {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &state.metrics.registry).is_err() {
        return ApiError::internal("the metrics could not be written").into_response();
    }
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

/// Reads the batchers' counters at each scrape.
#[derive(Debug)]
struct BatchCollector {
    runs: Vec<(String, Arc<BatchStats>)>,
}

impl Collector for BatchCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        type Read = fn(&BatchStats) -> u64;
        let families: [(&str, &str, Read); 3] = [
            ("batch_passes", "Forward passes run by the batchers", |s| {
                s.passes()
            }),
            ("batch_jobs", "Requests answered by the batchers", |s| {
                s.jobs()
            }),
            ("batch_rows", "Rows computed by the batchers", |s| s.rows()),
        ];
        for (name, help, read) in families {
            let first = ConstCounter::new(0u64);
            let mut family = encoder.encode_descriptor(name, help, None, first.metric_type())?;
            for (run, stats) in &self.runs {
                let label = RunLabel { run: run.clone() };
                ConstCounter::new(read(stats)).encode(family.encode_family(&label)?)?;
            }
        }
        Ok(())
    }
}
