//! Numeric CSV: one sample per row, an optional header, an optional label column (by name or
//! zero-based index). Labels may be integers (used as class indices) or strings (mapped to
//! indices in sorted order).

use std::path::Path;

use crate::data::{Dataset, Matrix, ValueKind};
use crate::error::{Error, Result};

/// How to read a CSV file.
#[derive(Debug, Clone, Default)]
pub struct CsvOptions {
    /// `Some(true)`: first row is a header; `Some(false)`: it is data; `None`: a header if any
    /// of its fields is not a number.
    pub header: Option<bool>,
    /// Column holding the label: a header name or a zero-based index.
    pub label_column: Option<String>,
}

fn parse_label_column(
    spec: &str,
    header: Option<&csv::StringRecord>,
    path: &Path,
) -> Result<usize> {
    if let Some(h) = header
        && let Some(i) = h.iter().position(|name| name.trim() == spec)
    {
        return Ok(i);
    }
    spec.parse::<usize>().map_err(|_| {
        Error::bad_file(
            path,
            format!("label column '{spec}' is neither a header name nor a column index"),
        )
    })
}

/// Reads a numeric CSV file into a dataset.
pub fn read(path: &Path, options: &CsvOptions) -> Result<Dataset> {
    let bytes = crate::io::read_file(path)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(bytes.as_slice());
    let mut records = reader.records();
    let first = match records.next() {
        None => return Err(Error::bad_file(path, "CSV file is empty")),
        Some(r) => r.map_err(|e| Error::bad_file(path, format!("CSV error: {e}")))?,
    };
    let looks_like_header = first.iter().any(|f| f.parse::<f64>().is_err());
    let has_header = options.header.unwrap_or(looks_like_header);
    let header = has_header.then(|| first.clone());
    let width = first.len();
    let label_col = options
        .label_column
        .as_deref()
        .map(|s| parse_label_column(s, header.as_ref(), path))
        .transpose()?;
    if let Some(c) = label_col
        && c >= width
    {
        return Err(Error::bad_file(
            path,
            format!("label column {c} does not exist (rows have {width} columns)"),
        ));
    }
    let cols = width - usize::from(label_col.is_some());
    if cols == 0 {
        return Err(Error::bad_file(path, "CSV has no feature columns"));
    }

    let mut data = Vec::new();
    let mut raw_labels: Vec<String> = Vec::new();
    let mut rows = 0usize;
    let data_rows = std::iter::once(Ok(first))
        .skip(usize::from(has_header))
        .chain(records);
    for (i, rec) in data_rows.enumerate() {
        let line = i + 1 + usize::from(has_header);
        let rec = rec.map_err(|e| Error::bad_file(path, format!("line {line}: {e}")))?;
        if rec.len() == 1 && rec.get(0) == Some("") {
            continue; // blank line
        }
        if rec.len() != width {
            return Err(Error::bad_file(
                path,
                format!(
                    "line {line}: {} columns, expected {width} like the first row",
                    rec.len()
                ),
            ));
        }
        for (c, field) in rec.iter().enumerate() {
            if Some(c) == label_col {
                raw_labels.push(field.to_string());
                continue;
            }
            let v: f32 = field.parse().map_err(|_| {
                Error::bad_file(
                    path,
                    format!("line {line} column {}: '{field}' is not a number", c + 1),
                )
            })?;
            if !v.is_finite() {
                return Err(Error::bad_file(
                    path,
                    format!("line {line} column {}: value is {field}", c + 1),
                ));
            }
            data.push(v);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(Error::bad_file(path, "CSV has a header but no data rows"));
    }
    let (labels, class_names) = if label_col.is_some() {
        let (l, n) = encode_labels(&raw_labels);
        (Some(l), n)
    } else {
        (None, None)
    };
    Ok(Dataset {
        x: Matrix::new(rows, cols, data)?,
        labels,
        class_names,
        sample_shape: vec![cols],
        value_kind: ValueKind::Float,
        origin: path.display().to_string(),
    })
}

/// Integer labels are kept as class indices; anything else is mapped to indices of the sorted
/// distinct names.
fn encode_labels(raw: &[String]) -> (Vec<u32>, Option<Vec<String>>) {
    let as_ints: Option<Vec<u32>> = raw.iter().map(|s| s.parse::<u32>().ok()).collect();
    if let Some(ints) = as_ints {
        return (ints, None);
    }
    let mut names: Vec<String> = raw.to_vec();
    names.sort();
    names.dedup();
    let labels = raw
        .iter()
        .map(|s| names.binary_search(s).expect("name is present") as u32)
        .collect();
    (labels, Some(names))
}

/// Writes a matrix as CSV with a header `prefix0,prefix1,...` and an optional label column.
/// A CSV field, quoted where it holds a comma, a quote or a line break (text written beside
/// numbers: names, series ids, category levels).
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn write(path: &Path, m: &Matrix, prefix: &str, labels: Option<&[u32]>) -> Result<()> {
    crate::io::write_atomic_with(path, |w| {
        write_header(w, m.cols, prefix, labels.is_some())?;
        write_rows(w, m, labels)
    })
}

/// The header line of [`write`]: `prefix0,prefix1,...`, then `label` when `labelled`.
pub fn write_header(
    w: &mut impl std::io::Write,
    cols: usize,
    prefix: &str,
    labelled: bool,
) -> std::io::Result<()> {
    let mut header: Vec<String> = (0..cols).map(|j| format!("{prefix}{j}")).collect();
    if labelled {
        header.push("label".into());
    }
    writeln!(w, "{}", header.join(","))
}

/// The data lines of [`write`], one per row of `m`, each ending with its label when given.
pub fn write_rows(
    w: &mut impl std::io::Write,
    m: &Matrix,
    labels: Option<&[u32]>,
) -> std::io::Result<()> {
    for i in 0..m.rows {
        let mut line: Vec<String> = m.row(i).iter().map(|v| format!("{v}")).collect();
        if let Some(l) = labels {
            line.push(l[i].to_string());
        }
        writeln!(w, "{}", line.join(","))?;
    }
    Ok(())
}
