//! The `/v1` routes. Inputs arrive in the run's raw data scale and are preprocessed as training
//! preprocessed them; outputs go back in the raw scale. Every answer for a run goes through its
//! batcher, so concurrent requests share forward passes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::data::Matrix;
use crate::eval::anomaly::scores_of_reconstructions;
use crate::model::ReconLoss;

use super::AppState;
use super::batcher::{Pass, Refusal};
use super::body::{
    ApiError, ApiResult, BodyKind, json_response, matrix_from_f32, matrix_from_npy,
    matrix_from_png, matrix_response, parse_json, parse_rows, row_matrix,
};
use super::runs::ServedRun;

/// The operations `POST /v1/runs/{run}/{op}` takes.
pub const OPERATIONS: [&str; 9] = [
    "encode",
    "decode",
    "reconstruct",
    "score",
    "score-points",
    "sample",
    "blend",
    "traverse",
    "predict",
];

/// Most rows one request may produce (samples, blend steps, traversal rows).
const MAX_GENERATED_ROWS: usize = 4096;

pub async fn list_runs(State(state): State<Arc<AppState>>) -> Response {
    let runs: Vec<&Value> = state.runs.iter().map(|r| &r.info).collect();
    axum::Json(json!({ "runs": runs })).into_response()
}

fn find<'a>(state: &'a AppState, name: &str) -> ApiResult<&'a ServedRun> {
    state.runs.iter().find(|r| r.name == name).ok_or_else(|| {
        let names: Vec<&str> = state.runs.iter().map(|r| r.name.as_str()).collect();
        ApiError::not_found(format!(
            "no run named {name:?}; this server has {}",
            names.join(", ")
        ))
    })
}

pub async fn codes(
    State(state): State<Arc<AppState>>,
    Path(run): Path<String>,
) -> ApiResult<Response> {
    let run = find(&state, &run)?;
    let map = &run.map;
    let mut extra = Map::new();
    extra.insert("labels".into(), json!(map.labels));
    extra.insert("classes".into(), json!(map.class_names));
    extra.insert(
        "axes".into(),
        json!(if map.projection.is_some() {
            "pca"
        } else {
            "code"
        }),
    );
    extra.insert(
        "projection".into(),
        json!(map.projection.as_ref().map(|p| json!({
            "mean": p.mean,
            "components": p.components,
            "explained_variance_ratio": p.explained_variance_ratio,
        }))),
    );
    extra.insert("data".into(), json!(map.origin));
    Ok(json_response(&[("points", &map.points)], extra))
}

pub async fn sample_at(
    State(state): State<Arc<AppState>>,
    Path((run, index)): Path<(String, String)>,
) -> ApiResult<Response> {
    let run = find(&state, &run)?;
    let i = map_index(run, &index)?;
    let map = &run.map;
    let label = map.labels.as_ref().map(|l| l[i]);
    let mut extra = Map::new();
    extra.insert("index".into(), json!(i));
    extra.insert("label".into(), json!(label));
    extra.insert(
        "class".into(),
        json!(label.and_then(|l| map.class_names.as_ref()?.get(l as usize).cloned())),
    );
    let one = |m: &Matrix| Matrix::new(1, m.cols, m.row(i).to_vec());
    if run.run.preprocessor.columns.is_some() {
        // A typed table's row is shown column by column: its values, their reconstructions
        // and their shares of its score, in the table's order.
        let explained = crate::eval::columns::explain(&run.run, &one(&map.x)?, 0)?;
        extra.insert("explain".into(), json!(explained[0]));
    }
    Ok(json_response(
        &[
            ("x", &one(&map.raw)?),
            ("code", &one(&map.codes)?),
            ("point", &one(&map.points)?),
        ],
        extra,
    ))
}

fn map_index(run: &ServedRun, text: &str) -> ApiResult<usize> {
    let n = run.map.points.rows;
    match text.parse::<usize>() {
        Ok(i) if i < n => Ok(i),
        _ => Err(ApiError::not_found(format!(
            "sample {text:?} is not on the map: indices run from 0 to {}",
            n - 1
        ))),
    }
}

/// `POST /v1/runs/{run}/{op}`.
pub async fn operation(
    State(state): State<Arc<AppState>>,
    Path((run, op)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let run = find(&state, &run)?;
    let accept = BodyKind::of_accept(&headers);
    let answer = AnswerLimit {
        bytes: state.max_answer,
        accept,
    };
    match op.as_str() {
        "encode" => encode(run, &headers, &body, answer).await,
        "decode" => decode(run, &body, answer).await,
        "reconstruct" => reconstruct(run, &headers, &body, answer).await,
        "score" => score(run, &headers, &body, answer).await,
        "score-points" => score_points(run, &headers, &body, answer).await,
        "sample" => sample(run, &body, answer).await,
        "blend" => blend(run, &body, answer).await,
        "traverse" => traverse(run, &body, answer).await,
        "predict" => predict(run, &headers, &body, answer).await,
        other => Err(ApiError::not_found(format!(
            "no operation {other:?}: use one of {}",
            OPERATIONS.join(", ")
        ))),
    }
}

/// Bytes one value takes in an answer at most: as JSON text (`-1.1754944e-38,`), or as f32.
const JSON_VALUE_BYTES: u64 = 16;
const BINARY_VALUE_BYTES: u64 = 4;

/// How large an answer may be, and in which form it goes out.
#[derive(Clone, Copy)]
struct AnswerLimit {
    bytes: usize,
    accept: BodyKind,
}

impl AnswerLimit {
    /// Refuses, before anything is computed, a request whose answer — `rows` rows of
    /// `values` numbers each — would pass the server's limit or half the memory available: a
    /// few megabytes of 2-D map points once asked `decode` for gigabytes of images.
    fn check(self, rows: usize, values: usize) -> ApiResult<()> {
        let per_value = if self.accept == BodyKind::Json {
            JSON_VALUE_BYTES
        } else {
            BINARY_VALUE_BYTES
        };
        let bytes = (rows as u64)
            .saturating_mul(values as u64)
            .saturating_mul(per_value);
        if bytes > self.bytes as u64 {
            return Err(ApiError::bad(format!(
                "the answer would take up to {} ({rows} rows of {values} values), more than the server's limit of {} (--max-answer-mib): ask for fewer rows",
                crate::device::human_bytes(bytes),
                crate::device::human_bytes(self.bytes as u64)
            )));
        }
        if let Some(words) = crate::device::beyond_budget_words(bytes) {
            return Err(ApiError::busy(format!(
                "the answer would take up to {words} now"
            )));
        }
        Ok(())
    }
}

async fn pass(
    run: &ServedRun,
    pass: Pass,
    x: Matrix,
    labels: Option<Vec<u32>>,
) -> ApiResult<Matrix> {
    run.batcher.run(pass, x, labels).await.map_err(|r| match r {
        Refusal::Busy => {
            ApiError::busy(format!("run {} has a full queue; retry shortly", run.name))
        }
        Refusal::Failed(e) => ApiError::from(e),
        Refusal::Gone => ApiError::internal(format!("the worker of run {} stopped", run.name)),
    })
}

/// The value of a JSON request's `"class"` field, if present.
fn class_field(field: Option<&Value>) -> ApiResult<Option<u32>> {
    match field {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad("\"class\" must be a class index (0, 1, ...)")),
    }
}

/// The classes of `n` rows of a request: for a conditional run, `class` for every row (or
/// `fallback`, a class the request implies); `None` for other runs, which refuse a class.
fn request_labels(
    run: &ServedRun,
    class: Option<u32>,
    fallback: Option<u32>,
    n: usize,
) -> ApiResult<Option<Vec<u32>>> {
    let classes = run.run.model.classes();
    if classes == 0 && class.is_none() {
        return Ok(None);
    }
    match (classes, class.or(fallback)) {
        (0, _) => Err(ApiError::bad(format!(
            "run {} is not conditional: \"class\" does not apply",
            run.name
        ))),
        (_, Some(c)) if c as usize >= classes => Err(ApiError::bad(format!(
            "\"class\" must lie between 0 and {}, got {c}",
            classes - 1
        ))),
        (_, Some(c)) => Ok(Some(vec![c; n])),
        (_, None) => Err(ApiError::bad(format!(
            "run {} is conditional on the class: give \"class\" (0 to {}) in a JSON body",
            run.name,
            classes - 1
        ))),
    }
}

/// Samples in the model's space from a body in any accepted format, under `field` for JSON.
fn samples(
    run: &ServedRun,
    headers: &HeaderMap,
    body: &[u8],
    field: &str,
) -> ApiResult<(Matrix, Value)> {
    let width = run.input_dim();
    let (raw, json) = match BodyKind::of_content_type(headers)? {
        BodyKind::Json => {
            let mut parsed = parse_rows(body, &[(field, width)])?;
            let x = parsed.rows.pop().flatten().ok_or_else(|| {
                ApiError::bad(format!(
                    "the JSON body needs \"{field}\": rows of {width} values"
                ))
            })?;
            (x, Value::Object(parsed.rest))
        }
        BodyKind::F32 => (matrix_from_f32(body, width)?, Value::Null),
        BodyKind::Npy => (matrix_from_npy(body, width)?, Value::Null),
        BodyKind::Png => {
            let shape = run.run.image_shape()?;
            let bytes_are_raw = run.run.preprocessor.scaling == crate::data::Scaling::Unit;
            (matrix_from_png(body, shape, bytes_are_raw)?, Value::Null)
        }
    };
    Ok((run.preprocess(raw)?, json))
}

async fn encode(
    run: &ServedRun,
    headers: &HeaderMap,
    body: &[u8],
    answer: AnswerLimit,
) -> ApiResult<Response> {
    let accept = answer.accept;
    let (x, json) = samples(run, headers, body, "x")?;
    answer.check(x.rows, run.latent() + 2)?;
    let labels = request_labels(run, class_field(json.get("class"))?, None, x.rows)?;
    let codes = pass(run, Pass::Encode, x, labels).await?;
    if accept != BodyKind::Json {
        return matrix_response(&codes, accept, "codes", Map::new());
    }
    let points = run.map.points_of(&codes)?;
    Ok(json_response(
        &[("codes", &codes), ("map", &points)],
        Map::new(),
    ))
}

/// A classifying run's class probabilities of the samples, and each sample's most probable
/// class (its index and name).
async fn predict(
    run: &ServedRun,
    headers: &HeaderMap,
    body: &[u8],
    answer: AnswerLimit,
) -> ApiResult<Response> {
    let Some(class_names) = &run.class_names else {
        return Err(ApiError::bad(format!(
            "run {} is an autoencoder, not a classifier: make one with `aekit finetune` (or train --model ssvae)",
            run.name
        )));
    };
    let (x, _) = samples(run, headers, body, "x")?;
    // Probabilities, and a class index and name per row.
    answer.check(x.rows, class_names.len() + 4)?;
    let probabilities = pass(run, Pass::Predict, x, None).await?;
    if answer.accept != BodyKind::Json {
        return matrix_response(&probabilities, answer.accept, "probabilities", Map::new());
    }
    let classes = crate::model::classifier::predicted_classes(&probabilities);
    let names: Vec<String> = classes
        .iter()
        .map(|&c| class_names[c as usize].clone())
        .collect();
    let mut extra = Map::new();
    extra.insert("classes".into(), Value::from(classes));
    extra.insert("class_names".into(), Value::from(names));
    Ok(json_response(&[("probabilities", &probabilities)], extra))
}

async fn decode(run: &ServedRun, body: &[u8], answer: AnswerLimit) -> ApiResult<Response> {
    let accept = answer.accept;
    // Codes, or points on the map's plane.
    let parsed = parse_rows(body, &[("codes", run.latent()), ("map", 2)])?;
    if let Some(key) = parsed.rest.keys().find(|k| *k != "class") {
        return Err(ApiError::bad(format!(
            "unknown field \"{key}\": decode takes \"codes\" or \"map\" (and \"class\")"
        )));
    }
    let class = class_field(parsed.rest.get("class"))?;
    let codes = match parsed.rows.as_slice() {
        [Some(c), None] => c.clone(),
        [None, Some(p)] => run.map.codes_of_points(p, run.latent())?,
        _ => {
            return Err(ApiError::bad(format!(
                "the JSON body needs either \"codes\" (rows of {} values) or \"map\" (rows of 2)",
                run.latent()
            )));
        }
    };
    answer.check(codes.rows, run.input_dim() + run.latent())?;
    let labels = request_labels(run, class, None, codes.rows)?;
    let x = run.to_raw(pass(run, Pass::Decode, codes.clone(), labels).await?)?;
    if accept != BodyKind::Json {
        return matrix_response(&x, accept, "x", Map::new());
    }
    Ok(json_response(&[("x", &x), ("codes", &codes)], Map::new()))
}

async fn reconstruct(
    run: &ServedRun,
    headers: &HeaderMap,
    body: &[u8],
    answer: AnswerLimit,
) -> ApiResult<Response> {
    let accept = answer.accept;
    let (x, json) = samples(run, headers, body, "x")?;
    // Denoising runs show what they were trained for: the input corrupted by their own noise,
    // then restored.
    let corrupt = json
        .get("corrupt")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let seed = json.get("seed").and_then(Value::as_u64).unwrap_or(0);
    let noisy = match (corrupt, run.run.model.config().noise()) {
        (false, _) => None,
        (true, Some(noise)) => Some(crate::eval::corrupt(&x, noise, seed)),
        (true, None) => {
            return Err(ApiError::bad(format!(
                "run {} was not trained with noise, so \"corrupt\" does not apply",
                run.name
            )));
        }
    };
    answer.check(x.rows, run.input_dim() * (1 + usize::from(noisy.is_some())))?;
    let labels = request_labels(run, class_field(json.get("class"))?, None, x.rows)?;
    let recon = pass(run, Pass::Reconstruct, noisy.clone().unwrap_or(x), labels).await?;
    let recon = run.to_raw(recon)?;
    if accept != BodyKind::Json {
        return matrix_response(&recon, accept, "x", Map::new());
    }
    match noisy {
        Some(n) => Ok(json_response(
            &[("x", &recon), ("noisy", &run.to_raw(n)?)],
            Map::new(),
        )),
        None => Ok(json_response(&[("x", &recon)], Map::new())),
    }
}

async fn score(
    run: &ServedRun,
    headers: &HeaderMap,
    body: &[u8],
    answer: AnswerLimit,
) -> ApiResult<Response> {
    if run.run.preprocessor.columns.is_some() {
        return score_table(run, headers, body, answer).await;
    }
    let (x, json) = samples(run, headers, body, "x")?;
    // Always JSON: the errors of every value, a score and a flag per row.
    json_answer(answer).check(x.rows, run.input_dim() + 2)?;
    let labels = request_labels(run, class_field(json.get("class"))?, None, x.rows)?;
    let recon = pass(run, Pass::Reconstruct, x.clone(), labels).await?;
    let scores = scores_of_reconstructions(ReconLoss::Mse, &recon, &x);
    let errors = crate::eval::anomaly::squared_errors(&recon, &x);
    let mut extra = judged(&scores, run.detector.as_ref().map(|d| d.threshold));
    extra.insert("score".into(), json!("squared-error"));
    Ok(json_response(&[("errors", &errors)], extra))
}

/// A typed table run's scores of rows given as JSON objects (`{"rows": [{"column": value,
/// ...}], "explain": K}`): each row's score (the run's loss), its flag under the stored
/// threshold, and with `explain` its K largest columns' shares (0: every column); categories
/// never seen in training are read as "(other)" and listed under `unseen`.
async fn score_table(
    run: &ServedRun,
    headers: &HeaderMap,
    body: &[u8],
    answer: AnswerLimit,
) -> ApiResult<Response> {
    let columns = run
        .run
        .preprocessor
        .columns
        .as_ref()
        .expect("a typed run has its columns");
    if BodyKind::of_content_type(headers)? != BodyKind::Json {
        return Err(ApiError::bad(
            "a typed table's rows are JSON objects: {\"rows\": [{\"column\": value, ...}]}",
        ));
    }
    let json: Value = parse_json(body)?;
    let rows: Vec<Map<String, Value>> = match json.get("rows") {
        Some(Value::Array(rows)) => rows
            .iter()
            .enumerate()
            .map(|(r, row)| match row {
                Value::Object(o) => Ok(o.clone()),
                _ => Err(ApiError::bad(format!(
                    "row {r} is not an object of column values"
                ))),
            })
            .collect::<ApiResult<_>>()?,
        _ => {
            return Err(ApiError::bad(
                "the JSON body needs \"rows\": a list of objects of column values",
            ));
        }
    };
    let explain = match json.get("explain") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().map(|k| k as usize).ok_or_else(|| {
            ApiError::bad("\"explain\" must be a number of columns (0: every column)")
        })?),
    };
    let shown = match explain {
        Some(0) => columns.columns.len(),
        Some(k) => k.min(columns.columns.len()),
        None => 0,
    };
    // A score and a flag per row, and four values per explaining column.
    json_answer(answer).check(rows.len(), 2 + 4 * shown)?;
    let batch = columns.batch_from_json(&rows)?;
    let encoded = columns.encode(&batch, std::path::Path::new("the request"))?;
    let x = run.preprocess(encoded.x)?;
    let recon = pass(run, Pass::Reconstruct, x.clone(), None).await?;
    let output = run
        .run
        .model
        .config()
        .columns()
        .expect("a typed run's model has its columns");
    let scores: Vec<f64> = (0..x.rows)
        .map(|i| output.score(recon.row(i), x.row(i)))
        .collect();
    let mut extra = judged(&scores, run.detector.as_ref().map(|d| d.threshold));
    extra.insert("score".into(), json!("loss"));
    extra.insert("unseen".into(), json!(encoded.unseen));
    if let Some(k) = explain {
        let explained = crate::eval::columns::explain_reconstructed(&run.run, &x, &recon, k)?;
        extra.insert("explain".into(), json!(explained));
    }
    Ok(json_response(&[], extra))
}

/// A series run's scores of every point of one series given as `points × channels` (JSON
/// `"x"`, f32 or NPY): each point's score as `aekit score` gives it with the run's stored
/// point detector, the flags, and the series' reconstruction.
async fn score_points(
    run: &ServedRun,
    headers: &HeaderMap,
    body: &[u8],
    answer: AnswerLimit,
) -> ApiResult<Response> {
    use crate::data::series::{PointReduce, Series};
    let cfg = &run.run.config.data;
    let (Some(window), Some([channels, _])) = (
        cfg.window,
        run.run.model.config().shared().input_shape.as_deref(),
    ) else {
        return Err(ApiError::bad(format!(
            "run {} was not trained on a time series (no --window): score its samples with score",
            run.name
        )));
    };
    let channels = *channels;
    let points = match BodyKind::of_content_type(headers)? {
        BodyKind::Json => parse_rows(body, &[("x", channels)])?
            .rows
            .pop()
            .flatten()
            .ok_or_else(|| {
                ApiError::bad(format!(
                    "the JSON body needs \"x\": the series, rows of {channels} values (one per channel) in time order"
                ))
            })?,
        BodyKind::F32 => matrix_from_f32(body, channels)?,
        BodyKind::Npy => matrix_from_npy(body, channels)?,
        BodyKind::Png => return Err(ApiError::bad("a series is not an image: send JSON, f32 or NPY")),
    };
    // The answer (a score, a flag and the reconstruction per point) and the windows the
    // model reconstructs on the way, both bounded before any work.
    json_answer(answer).check(points.rows, channels + 2)?;
    let windows = points.rows.div_ceil(cfg.stride()) + 1;
    answer.check(windows, window * channels)?;
    let reduce = run
        .points
        .as_ref()
        .map_or(PointReduce::default(), |p| p.reduce);
    let windowed =
        Series::one(points, None, "the request")?.split_windows(cfg, crate::data::Split::Test)?;
    let x = run.preprocess(windowed.data.x.clone())?;
    let recon = pass(run, Pass::Reconstruct, x.clone(), None).await?;
    let errors = crate::eval::anomaly::squared_errors(&recon, &x);
    let scores = windowed.point_scores(&errors, reduce).remove(0);
    let reconstruction = windowed
        .to_points(&run.to_raw(recon)?, PointReduce::Mean)
        .remove(0);
    let mut extra = judged(&scores, run.points.as_ref().map(|p| p.detector.threshold));
    extra.insert("point_score".into(), json!(reduce));
    Ok(json_response(&[("reconstruction", &reconstruction)], extra))
}

/// The fields every score answer has: the scores, the threshold stored with the run (null
/// when none is) and each score's flag under it.
fn judged(scores: &[f64], threshold: Option<f64>) -> Map<String, Value> {
    let mut extra = Map::new();
    extra.insert("scores".into(), json!(scores));
    extra.insert("threshold".into(), json!(threshold));
    extra.insert(
        "anomalous".into(),
        json!(threshold.map(|t| scores.iter().map(|s| *s > t).collect::<Vec<bool>>())),
    );
    extra
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleRequest {
    #[serde(default = "one")]
    n: usize,
    #[serde(default)]
    seed: u64,
    /// For a conditional run: the class to sample (default: every class in turn).
    class: Option<u32>,
}

fn one() -> usize {
    1
}

/// `answer` for the routes that answer JSON whatever the request accepts.
fn json_answer(answer: AnswerLimit) -> AnswerLimit {
    AnswerLimit {
        accept: BodyKind::Json,
        ..answer
    }
}

fn check_rows(n: usize, what: &str) -> ApiResult<()> {
    if n == 0 || n > MAX_GENERATED_ROWS {
        return Err(ApiError::bad(format!(
            "{what} must lie between 1 and {MAX_GENERATED_ROWS}, got {n}"
        )));
    }
    Ok(())
}

async fn sample(run: &ServedRun, body: &[u8], answer: AnswerLimit) -> ApiResult<Response> {
    let req: SampleRequest = if body.is_empty() {
        SampleRequest {
            n: 1,
            seed: 0,
            class: None,
        }
    } else {
        parse_json(body)?
    };
    check_rows(req.n, "\"n\"")?;
    json_answer(answer).check(req.n, run.input_dim() + run.latent())?;
    let codes = crate::eval::prior_codes(&run.run.model, req.n, req.seed)?;
    let labels = match req.class {
        Some(_) => request_labels(run, req.class, None, req.n)?,
        None => run.run.model.generation_labels(req.n),
    };
    let x = run.to_raw(pass(run, Pass::Decode, codes.clone(), labels).await?)?;
    Ok(json_response(&[("x", &x), ("codes", &codes)], Map::new()))
}

/// A sample given as raw values, or as the index of a sample on the map.
#[derive(Deserialize)]
#[serde(untagged)]
enum SampleRef {
    Index(usize),
    Values(Vec<f64>),
}

impl SampleRef {
    /// The label of a sample named by its index on the map.
    fn map_label(&self, run: &ServedRun) -> Option<u32> {
        match self {
            SampleRef::Index(i) => run.map_label(*i),
            SampleRef::Values(_) => None,
        }
    }

    /// The sample in the model's space.
    fn resolve(&self, run: &ServedRun, field: &str) -> ApiResult<Vec<f32>> {
        match self {
            SampleRef::Index(i) => Ok(run.map.x.row(map_index(run, &i.to_string())?).to_vec()),
            SampleRef::Values(v) => {
                let m = row_matrix(v, field, run.input_dim())?;
                Ok(run.preprocess(m)?.data)
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlendRequest {
    a: SampleRef,
    b: SampleRef,
    #[serde(default = "nine")]
    steps: usize,
    /// Default: spherical for models with a prior.
    spherical: Option<bool>,
    /// For a conditional run: the class both ends are encoded and the blend decoded under
    /// (default: each end's label on the map, and a's for the blend).
    class: Option<u32>,
}

fn nine() -> usize {
    9
}

async fn blend(run: &ServedRun, body: &[u8], answer: AnswerLimit) -> ApiResult<Response> {
    let req: BlendRequest = parse_json(body)?;
    check_rows(req.steps, "\"steps\"")?;
    json_answer(answer).check(req.steps, 2 * run.input_dim() + run.latent())?;
    let (a, b) = (req.a.resolve(run, "a")?, req.b.resolve(run, "b")?);
    let weights = crate::explore::blend_weights(req.steps);
    let spherical = req.spherical.unwrap_or_else(|| run.spherical_blend());
    let pair = Matrix::new(2, a.len(), [a.as_slice(), b.as_slice()].concat())?;
    let (label_a, label_b) = (req.a.map_label(run), req.b.map_label(run));
    let ends_labels = match (
        request_labels(run, req.class, label_a, 1)?,
        request_labels(run, req.class, label_b, 1)?,
    ) {
        (Some(la), Some(lb)) => Some([la, lb].concat()),
        _ => None,
    };
    let ends = pass(run, Pass::Encode, pair, ends_labels).await?;
    let codes = crate::explore::blend_codes(ends.row(0), ends.row(1), &weights, spherical)?;
    let labels = request_labels(run, req.class, label_a, codes.rows)?;
    let latent = run.to_raw(pass(run, Pass::Decode, codes.clone(), labels).await?)?;
    let pixel = run.to_raw(crate::explore::pixel_blend(&a, &b, &weights)?)?;
    let mut extra = Map::new();
    extra.insert("weights".into(), json!(weights));
    extra.insert("spherical".into(), json!(spherical));
    Ok(json_response(
        &[("pixel", &pixel), ("latent", &latent), ("codes", &codes)],
        extra,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraverseRequest {
    x: SampleRef,
    /// Default: the first code dimensions (`explore::DEFAULT_TRAVERSE_DIMS`).
    dims: Option<Vec<usize>>,
    /// Default: the lecture's ±1, ±10, ±100 and 0.
    deltas: Option<Vec<f32>>,
    /// For a conditional run: the class (default: the sample's label on the map).
    class: Option<u32>,
}

async fn traverse(run: &ServedRun, body: &[u8], answer: AnswerLimit) -> ApiResult<Response> {
    let req: TraverseRequest = parse_json(body)?;
    let x = req.x.resolve(run, "x")?;
    let dims = req
        .dims
        .unwrap_or_else(|| (0..run.latent().min(crate::explore::DEFAULT_TRAVERSE_DIMS)).collect());
    let deltas = req
        .deltas
        .unwrap_or_else(|| crate::explore::DEFAULT_DELTAS.to_vec());
    check_rows(dims.len() * deltas.len(), "dims × deltas")?;
    json_answer(answer).check(dims.len() * deltas.len(), run.input_dim() + run.latent())?;
    let label = req.x.map_label(run);
    let one = request_labels(run, req.class, label, 1)?;
    let code = pass(run, Pass::Encode, Matrix::new(1, x.len(), x)?, one).await?;
    let codes = crate::explore::traverse_codes(&code.data, &dims, &deltas)?;
    let labels = request_labels(run, req.class, label, codes.rows)?;
    let out = run.to_raw(pass(run, Pass::Decode, codes.clone(), labels).await?)?;
    let mut extra = Map::new();
    extra.insert("dims".into(), json!(dims));
    extra.insert("deltas".into(), json!(deltas));
    Ok(json_response(&[("x", &out), ("codes", &codes)], extra))
}
