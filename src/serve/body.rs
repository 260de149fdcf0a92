//! Request and response bodies: JSON for people and browsers; raw little-endian f32, NPY and PNG
//! for programs that send large batches or pictures.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::data::Matrix;

/// An answer that is not a success: its status and a one-line message, sent as
/// `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    pub fn busy(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        Self::bad(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            axum::Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    /// Little-endian f32, row after row.
    F32,
    Npy,
    Png,
}

pub const NPY: &str = "application/x-npy";

impl BodyKind {
    pub fn of_content_type(headers: &HeaderMap) -> ApiResult<Self> {
        let Some(value) = headers.get(header::CONTENT_TYPE) else {
            return Ok(BodyKind::Json);
        };
        let text = value.to_str().unwrap_or("");
        let mime = text
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "" | "application/json" | "text/plain" => Ok(BodyKind::Json),
            "application/octet-stream" => Ok(BodyKind::F32),
            "application/x-npy" | "application/npy" => Ok(BodyKind::Npy),
            "image/png" => Ok(BodyKind::Png),
            other => Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                message: format!(
                    "Content-Type {other} is not accepted: send application/json, application/octet-stream (f32), application/x-npy or image/png"
                ),
            }),
        }
    }

    /// The format of the answer's main matrix: JSON unless the client asks for f32 or NPY.
    pub fn of_accept(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if accept.contains("application/octet-stream") {
            BodyKind::F32
        } else if accept.contains("application/x-npy") || accept.contains("application/npy") {
            BodyKind::Npy
        } else {
            BodyKind::Json
        }
    }
}

/// Parses a JSON body into `T`, naming what is wrong in one line.
pub fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> ApiResult<T> {
    if body.is_empty() {
        return Err(ApiError::bad("the request has no body: send a JSON object"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad(format!("malformed JSON body: {e}")))
}

/// A JSON object whose fields of rows were parsed straight into f32 buffers (no tree of
/// values for a batch of samples), with its other fields kept as values.
pub struct JsonRows {
    /// One entry per requested field, `None` when the body lacks it.
    pub rows: Vec<Option<Matrix>>,
    pub rest: Map<String, Value>,
}

/// Parses a JSON object, reading each of `fields` (name, width) as rows of numbers: `[[...],
/// ...]`, or one row as `[...]`, every value a finite f32.
pub fn parse_rows(body: &[u8], fields: &[(&str, usize)]) -> ApiResult<JsonRows> {
    if body.is_empty() {
        return Err(ApiError::bad("the request has no body: send a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = ObjectSeed { fields }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| match e.classify() {
        // Our own messages (widths, finiteness) and wrong types read as they are.
        serde_json::error::Category::Data => ApiError::bad(e.to_string()),
        _ => ApiError::bad(format!("malformed JSON body: {e}")),
    })
}

/// One row given as values (e.g. a sample in a blend request).
pub fn row_matrix(values: &[f64], field: &str, width: usize) -> ApiResult<Matrix> {
    if values.len() != width {
        return Err(ApiError::bad(format!(
            "\"{field}\" has {} values; the run expects {width}",
            values.len()
        )));
    }
    let data: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    if let Some(j) = data.iter().position(|v| !v.is_finite()) {
        return Err(ApiError::bad(format!(
            "\"{field}\"[{j}] is not a finite 32-bit number"
        )));
    }
    Ok(Matrix::new(1, width, data)?)
}

struct ObjectSeed<'a> {
    fields: &'a [(&'a str, usize)],
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = JsonRows;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<JsonRows, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = JsonRows;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<JsonRows, A::Error> {
        let mut rows: Vec<Option<Matrix>> = vec![None; self.fields.len()];
        let mut rest = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match self.fields.iter().position(|(name, _)| *name == key) {
                Some(k) => {
                    let (field, width) = self.fields[k];
                    rows[k] = Some(map.next_value_seed(RowsSeed { field, width })?);
                }
                None => {
                    rest.insert(key, map.next_value()?);
                }
            }
        }
        Ok(JsonRows { rows, rest })
    }
}

struct RowsSeed<'a> {
    field: &'a str,
    width: usize,
}

impl<'de> DeserializeSeed<'de> for RowsSeed<'_> {
    type Value = Matrix;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Matrix, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_> {
    type Value = Matrix;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "\"{}\" as an array of rows of numbers (or one row)",
            self.field
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Matrix, A::Error> {
        let (field, width) = (self.field, self.width);
        let mut data: Vec<f32> = Vec::with_capacity(width);
        let mut rows = 0;
        let mut flat = None;
        while let Some(item) = seq.next_element_seed(ItemSeed {
            data: &mut data,
            field,
            width,
            row: rows,
        })? {
            match (flat, item) {
                (None, item) => flat = Some(item == Item::Number),
                (Some(true), Item::Number) | (Some(false), Item::Row) => {}
                _ => {
                    return Err(A::Error::custom(format!(
                        "\"{field}\" mixes numbers and rows"
                    )));
                }
            }
            if flat == Some(false) {
                rows += 1;
                crate::model::fits_in_memory(rows, width, field).map_err(A::Error::custom)?;
            }
        }
        if flat == Some(true) {
            if data.len() != width {
                return Err(A::Error::custom(format!(
                    "\"{field}\" has {} values; the run expects {width}",
                    data.len()
                )));
            }
            rows = 1;
        }
        if rows == 0 {
            return Err(A::Error::custom(format!("\"{field}\" has no rows")));
        }
        Matrix::new(rows, width, data).map_err(A::Error::custom)
    }
}

#[derive(PartialEq, Eq)]
enum Item {
    Number,
    Row,
}

/// One element of a rows array: a row (appended to `data`) or, for a single flat row, a number.
struct ItemSeed<'a> {
    data: &'a mut Vec<f32>,
    field: &'a str,
    width: usize,
    row: usize,
}

impl ItemSeed<'_> {
    fn push<E: serde::de::Error>(
        &mut self,
        v: f64,
        j: Option<usize>,
    ) -> std::result::Result<(), E> {
        let x = v as f32;
        if !x.is_finite() {
            let at = match j {
                Some(j) => format!("[{}][{j}]", self.row),
                None => format!("[{}]", self.data.len()),
            };
            return Err(E::custom(format!(
                "\"{}\"{at} is not a finite 32-bit number",
                self.field
            )));
        }
        self.data.push(x);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = Item;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Item, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_> {
    type Value = Item;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "\"{}\" as an array of rows of numbers (or one row)",
            self.field
        )
    }

    fn visit_f64<E: serde::de::Error>(mut self, v: f64) -> std::result::Result<Item, E> {
        self.push(v, None).map(|()| Item::Number)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Item, E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Item, E> {
        self.visit_f64(v as f64)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> std::result::Result<Item, A::Error> {
        let start = self.data.len();
        let mut j = 0;
        while let Some(v) = seq.next_element::<f64>()? {
            if j == self.width {
                return Err(A::Error::custom(format!(
                    "\"{}\" row {} has more than {} values; the run expects {}",
                    self.field, self.row, self.width, self.width
                )));
            }
            self.push(v, Some(j))?;
            j += 1;
        }
        if self.data.len() - start != self.width {
            return Err(A::Error::custom(format!(
                "\"{}\" row {} has {} values; the run expects {}",
                self.field,
                self.row,
                self.data.len() - start,
                self.width
            )));
        }
        Ok(Item::Row)
    }
}

/// Rows of raw little-endian f32.
pub fn matrix_from_f32(body: &[u8], width: usize) -> ApiResult<Matrix> {
    let row_bytes = width * 4;
    if body.is_empty() || !body.len().is_multiple_of(row_bytes) {
        return Err(ApiError::bad(format!(
            "the f32 body has {} bytes, not a positive multiple of a row ({width} values = {row_bytes} bytes)",
            body.len()
        )));
    }
    let data: Vec<f32> = body
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    check_finite(&data)?;
    Ok(Matrix::new(body.len() / row_bytes, width, data)?)
}

/// A 2-D (or, for one row, 1-D) NPY array, decoded by the library's reader with all its
/// guards (the header and the data it declares checked against the body first).
pub fn matrix_from_npy(body: &[u8], width: usize) -> ApiResult<Matrix> {
    let array = crate::data::npy::parse_array(body, std::path::Path::new("the NPY body"))?;
    let rows = match array.shape.as_slice() {
        [n] if *n == width => 1,
        [n, w] if *w == width && *n > 0 => *n,
        shape => {
            return Err(ApiError::bad(format!(
                "the NPY array has shape {shape:?}; the run expects [rows, {width}]"
            )));
        }
    };
    crate::model::fits_in_memory(rows, width, "the NPY array")?;
    check_finite(&array.values)?;
    Ok(Matrix::new(rows, width, array.values)?)
}

/// One picture as one row in the run's layout (channels first). It is resized to the run's
/// size when it differs; its bytes are the raw values when the run scales bytes by 1/255, and
/// fractions of 255 otherwise.
pub fn matrix_from_png(
    body: &[u8],
    shape: (usize, usize, usize),
    bytes_are_raw: bool,
) -> ApiResult<Matrix> {
    let (c, h, w) = shape;
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(body), image::ImageFormat::Png);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(8192);
    limits.max_image_height = Some(8192);
    limits.max_alloc = Some(256 << 20);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| ApiError::bad(format!("not a readable PNG: {e}")))?;
    let img = if (img.width() as usize, img.height() as usize) != (w, h) {
        img.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle)
    } else {
        img
    };
    let scale = if bytes_are_raw { 1.0 } else { 1.0 / 255.0 };
    let data: Vec<f32> = match c {
        1 => img
            .to_luma8()
            .into_raw()
            .into_iter()
            .map(|v| v as f32 * scale)
            .collect(),
        3 => {
            let rgb = img.to_rgb8().into_raw();
            let plane = h * w;
            (0..3 * plane)
                .map(|k| rgb[(k % plane) * 3 + k / plane] as f32 * scale)
                .collect()
        }
        _ => {
            return Err(ApiError::bad(format!(
                "the run's images have {c} channels; PNG input needs 1 or 3"
            )));
        }
    };
    Ok(Matrix::new(1, c * h * w, data)?)
}

fn check_finite(data: &[f32]) -> ApiResult<()> {
    match data.iter().position(|v| !v.is_finite()) {
        Some(k) => Err(ApiError::bad(format!(
            "value {k} of the body is NaN or infinite"
        ))),
        None => Ok(()),
    }
}

/// A matrix answer in the format the client accepts; JSON answers put it under `field` beside
/// `extra`.
pub fn matrix_response(
    m: &Matrix,
    kind: BodyKind,
    field: &str,
    extra: Map<String, Value>,
) -> ApiResult<Response> {
    let shape = HeaderValue::from_str(&format!("{},{}", m.rows, m.cols))
        .expect("digits are a header value");
    let (bytes, content_type) = match kind {
        BodyKind::F32 => (
            m.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            "application/octet-stream",
        ),
        BodyKind::Npy => (npy_bytes(m)?, NPY),
        BodyKind::Json | BodyKind::Png => return Ok(json_response(&[(field, m)], extra)),
    };
    let mut res = bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert("x-aekit-shape", shape);
    Ok(res)
}

fn npy_bytes(m: &Matrix) -> ApiResult<Vec<u8>> {
    crate::data::npy::to_bytes(&[m.rows, m.cols], &m.data)
        .map_err(|e| ApiError::internal(format!("cannot write NPY: {e}")))
}

/// Rows of a matrix as JSON, each value the shortest decimal that reads back as the same f32.
struct Rows<'a>(&'a Matrix);

impl serde::Serialize for Rows<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.rows))?;
        for i in 0..self.0.rows {
            seq.serialize_element(self.0.row(i))?;
        }
        seq.end()
    }
}

/// A JSON object of matrices (written as f32 rows) and other fields.
pub fn json_response(matrices: &[(&str, &Matrix)], extra: Map<String, Value>) -> Response {
    let mut out = Vec::with_capacity(
        64 + matrices
            .iter()
            .map(|(_, m)| m.data.len() * 12)
            .sum::<usize>(),
    );
    out.push(b'{');
    let mut first = true;
    let mut field = |out: &mut Vec<u8>, name: &str| {
        if !first {
            out.push(b',');
        }
        first = false;
        serde_json::to_writer(&mut *out, name).expect("a string serialises");
        out.push(b':');
    };
    for (name, m) in matrices {
        field(&mut out, name);
        serde_json::to_writer(&mut out, &Rows(m)).expect("finite f32 rows serialise");
    }
    for (name, value) in &extra {
        field(&mut out, name);
        serde_json::to_writer(&mut out, value).expect("a JSON value serialises");
    }
    out.push(b'}');
    let mut res = out.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}
