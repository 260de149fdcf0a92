//! One streaming pass over a table: every chunk's row count (and a CSV block's byte offset),
//! the class names of a string label column, and the per-column statistics the preprocessing
//! is fitted from — the whole table read once, a record batch at a time.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::BufRead;
use std::path::Path;

use arrow::array::RecordBatch;

use crate::data::table::{
    CSV_CHUNK_ROWS, Chunk, Table, TableFile, TableFormat, arrow_error, csv_format, label_strings,
    open_ipc, with_partitions,
};
use crate::data::{Matrix, ValueKind};
use crate::error::{Error, IoContext, Result};

/// Per-feature statistics merged batch by batch (Chan et al.'s pairwise update of the mean and
/// the sum of squared deviations, in `f64`), so one pass equals the two-pass in-memory fit to
/// well within 1e-6.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnStats {
    pub rows: usize,
    pub min: Vec<f32>,
    pub max: Vec<f32>,
    pub mean: Vec<f64>,
    /// Sum of squared deviations from the mean.
    pub m2: Vec<f64>,
}

impl ColumnStats {
    pub fn new(width: usize) -> Self {
        Self {
            rows: 0,
            min: vec![f32::INFINITY; width],
            max: vec![f32::NEG_INFINITY; width],
            mean: vec![0.0; width],
            m2: vec![0.0; width],
        }
    }

    /// Adds the rows of `x`.
    pub fn add(&mut self, x: &Matrix) {
        if x.rows == 0 || x.cols == 0 {
            self.rows += x.rows;
            return;
        }
        let nb = x.rows as f64;
        let mut mean_b = vec![0f64; x.cols];
        for row in x.data.chunks_exact(x.cols) {
            for (j, &v) in row.iter().enumerate() {
                mean_b[j] += v as f64;
                self.min[j] = self.min[j].min(v);
                self.max[j] = self.max[j].max(v);
            }
        }
        mean_b.iter_mut().for_each(|m| *m /= nb);
        let mut m2_b = vec![0f64; x.cols];
        for row in x.data.chunks_exact(x.cols) {
            for (j, &v) in row.iter().enumerate() {
                m2_b[j] += (v as f64 - mean_b[j]).powi(2);
            }
        }
        let na = self.rows as f64;
        let n = na + nb;
        for j in 0..x.cols {
            let delta = mean_b[j] - self.mean[j];
            self.mean[j] += delta * nb / n;
            self.m2[j] += m2_b[j] + delta * delta * na * nb / n;
        }
        self.rows += x.rows;
    }

    /// Population variance per feature.
    pub fn variance(&self) -> Vec<f64> {
        let n = self.rows.max(1) as f64;
        self.m2.iter().map(|m| m / n).collect()
    }
}

/// Which rows of a table a run uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowFilter {
    /// Only rows whose label is one of these (one-class training).
    pub classes: Option<Vec<u32>>,
    /// Only the first N rows (after the class filter), in file order.
    pub limit: Option<usize>,
}

impl RowFilter {
    /// The rows of `x` (with `labels`) this filter keeps, given `seen` rows kept before.
    pub fn keep(
        &self,
        x: Matrix,
        labels: Option<Vec<u32>>,
        seen: usize,
    ) -> (Matrix, Option<Vec<u32>>) {
        let room = self.limit.map_or(usize::MAX, |l| l.saturating_sub(seen));
        let rows: Vec<usize> = match (&self.classes, &labels) {
            (Some(keep), Some(l)) => (0..x.rows)
                .filter(|&i| keep.contains(&l[i]))
                .take(room)
                .collect(),
            _ if room >= x.rows => return (x, labels),
            _ => (0..room).collect(),
        };
        let labels = labels.map(|l| rows.iter().map(|&i| l[i]).collect());
        (x.select_rows(&rows), labels)
    }
}

/// What a table's pass found: the chunks a run reads, in file order, with their rows after
/// the filter.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TableIndex {
    pub format: TableFormat,
    pub files: Vec<TableFile>,
    pub chunks: Vec<Chunk>,
    /// Class names of a string label column (sorted), or the file's own list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_names: Option<Vec<String>>,
    /// One more than the largest label (0 without labels).
    #[serde(default)]
    pub classes: usize,
    pub rows: usize,
    pub width: usize,
    pub sample_shape: Vec<usize>,
    pub value_kind: ValueKind,
    /// Images left out because they do not decode (`--bad-images skip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<Skipped>,
}

/// Files a pass left out: how many, and the first of them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    pub count: usize,
    pub first: std::path::PathBuf,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "left out {} image(s) that do not decode (--bad-images skip), the first {}",
            self.count,
            self.first.display()
        )
    }
}

impl TableIndex {
    /// Checks that every file is the one indexed.
    pub fn check_files(&self) -> Result<()> {
        self.files.iter().try_for_each(TableFile::check_unchanged)
    }

    /// Checks that `files` (the table as listed now) are the files indexed, in the same order:
    /// chunks name their file by its place in the list.
    pub fn check_listing(&self, files: &[TableFile]) -> Result<()> {
        let now: Vec<&std::path::Path> = files.iter().map(|f| f.path.as_path()).collect();
        let then: Vec<&std::path::Path> = self.files.iter().map(|f| f.path.as_path()).collect();
        if now == then {
            return Ok(());
        }
        // Sets, not list searches: an image folder's listing has a file per image.
        let (now_set, then_set): (HashSet<_>, HashSet<_>) = (
            now.iter().copied().collect(),
            then.iter().copied().collect(),
        );
        let first_new = now.iter().find(|p| !then_set.contains(*p));
        let (path, what) = match first_new {
            Some(p) => (*p, "was added to the data set after the run was indexed"),
            None => (
                then.iter()
                    .find(|p| !now_set.contains(*p))
                    .copied()
                    .unwrap_or(then[0]),
                "is no longer part of the data set the run was indexed on",
            ),
        };
        Err(Error::bad_file(
            path,
            format!("{what}; restore the data set as it was, or start a new run"),
        ))
    }
}

/// The result of a scan: the index and the statistics of the kept rows.
pub struct Scanned {
    pub index: TableIndex,
    pub stats: ColumnStats,
}

/// What a pass has found so far.
struct Pass<'s> {
    chunks: Vec<Chunk>,
    kept_rows: usize,
    /// Images left out because they did not decode (a chunk read fewer rows than it has
    /// files), and the first chunk that left one out.
    skipped_rows: usize,
    first_short_chunk: Option<Chunk>,
    max_label: Option<u32>,
    stats: &'s mut ColumnStats,
}

impl Pass<'_> {
    /// Adds the rows of `chunk` (read as `batches`) that `filter` keeps.
    fn visit(
        &mut self,
        table: &Table,
        filter: &RowFilter,
        class_names: Option<&[String]>,
        chunk: Chunk,
        batches: &mut dyn Iterator<Item = Result<RecordBatch>>,
    ) -> Result<()> {
        let layout = &table.layout;
        let path = &table.files[chunk.file].path;
        let where_ = table.chunk_name(&chunk);
        let mut rows_here = 0usize;
        let mut read_here = 0usize;
        for batch in batches {
            let batch = batch?;
            let x = layout.rows(&batch, path, &where_)?;
            read_here += x.rows;
            let labels = layout.labels(&batch, class_names, path, &where_)?;
            if filter.classes.is_some() && labels.is_none() {
                return Err(Error::bad_file(
                    path,
                    "train_classes needs labelled data: name the label column with --label-column",
                ));
            }
            let (x, labels) = filter.keep(x, labels, self.kept_rows + rows_here);
            if let Some(&m) = labels.iter().flatten().max() {
                self.max_label = Some(self.max_label.map_or(m, |old| old.max(m)));
            }
            self.stats.add(&x);
            rows_here += x.rows;
        }
        self.kept_rows += rows_here;
        if read_here < chunk.rows && table.format == TableFormat::Images {
            self.skipped_rows += chunk.rows - read_here;
            self.first_short_chunk.get_or_insert_with(|| chunk.clone());
        }
        if rows_here > 0 {
            self.chunks.push(Chunk {
                rows: rows_here,
                ..chunk
            });
        }
        Ok(())
    }
}

/// Reads every chunk of `table` once, keeping the rows `filter` keeps.
pub fn scan(table: &Table, filter: &RowFilter) -> Result<Scanned> {
    let layout = &table.layout;
    let mut stats = ColumnStats::new(layout.width);
    // String labels are counted first (their classes decide every row's index).
    let class_names = match (&layout.class_names, &layout.label) {
        (Some(names), _) => Some(names.clone()),
        (None, Some(_)) => string_classes(table)?,
        (None, None) => None,
    };
    let mut pass = Pass {
        chunks: Vec::new(),
        kept_rows: 0,
        skipped_rows: 0,
        first_short_chunk: None,
        max_label: None,
        stats: &mut stats,
    };
    let full = |rows: usize| filter.limit.is_some_and(|l| rows >= l);
    match table.format {
        TableFormat::Parquet | TableFormat::Arrow | TableFormat::Npy | TableFormat::Images => {
            for chunk in raw_chunks(table)? {
                if full(pass.kept_rows) {
                    break;
                }
                let mut batches = table.read_chunk(&chunk, 0)?;
                pass.visit(table, filter, class_names.as_deref(), chunk, &mut batches)?;
            }
        }
        TableFormat::Csv => {
            for (file_index, file) in table.files.iter().enumerate() {
                if full(pass.kept_rows) {
                    break;
                }
                csv_blocks(table, file_index, &file.path, &mut |chunk, batch| {
                    let mut one = std::iter::once(Ok(batch));
                    pass.visit(table, filter, class_names.as_deref(), chunk, &mut one)?;
                    Ok(!full(pass.kept_rows))
                })?;
            }
        }
    }
    let Pass {
        chunks,
        kept_rows,
        max_label,
        skipped_rows,
        first_short_chunk,
        ..
    } = pass;
    let skipped = first_short_chunk.map(|chunk| Skipped {
        count: skipped_rows,
        first: super::image_folder::first_undecodable(super::image_folder::chunk_files(
            &table.files,
            chunk.part,
        ))
        .unwrap_or(&table.files[chunk.file].path)
        .to_path_buf(),
    });
    if kept_rows == 0 {
        return Err(Error::bad_file(
            &table.spec,
            "no rows to train on (empty files, or every row filtered out)",
        ));
    }
    let classes = match &class_names {
        Some(names) => names.len(),
        None => max_label.map_or(0, |m| m as usize + 1),
    };
    Ok(Scanned {
        index: TableIndex {
            format: table.format,
            files: table.files.clone(),
            chunks,
            class_names,
            classes,
            rows: kept_rows,
            width: layout.width,
            sample_shape: layout.sample_shape.clone(),
            value_kind: layout.value_kind,
            skipped,
        },
        stats,
    })
}

/// The chunks of a Parquet or IPC table, with their full row counts.
fn raw_chunks(table: &Table) -> Result<Vec<Chunk>> {
    if let Some(chunks) = table.metadata_chunks() {
        return Ok(chunks);
    }
    let mut chunks = Vec::new();
    for (file, f) in table.files.iter().enumerate() {
        match open_ipc(&f.path)? {
            super::IpcReader::File(r) => {
                // An IPC file's footer lists its batches but not their lengths; the rows are
                // counted when the chunk is read.
                for part in 0..r.num_batches() {
                    chunks.push(Chunk {
                        file,
                        part,
                        rows: usize::MAX,
                        offset: 0,
                    });
                }
            }
            super::IpcReader::Stream(_) => chunks.push(Chunk {
                file,
                part: 0,
                rows: usize::MAX,
                offset: 0,
            }),
        }
    }
    Ok(chunks)
}

/// The distinct values of a string label column, sorted; `None` for an integer column.
fn string_classes(table: &Table) -> Result<Option<Vec<String>>> {
    let Some(name) = &table.layout.label else {
        return Ok(None);
    };
    let field = table
        .schema
        .field_with_name(name)
        .map_err(|e| arrow_error(&table.spec, "", e))?;
    let probe = arrow::array::new_empty_array(field.data_type());
    if label_strings(&probe).is_none() {
        return Ok(None);
    }
    let mut seen = BTreeSet::new();
    let mut collect = |batch: RecordBatch| {
        if let Some(strings) = batch.column_by_name(name).and_then(label_strings) {
            for s in strings.iter().flatten() {
                if !seen.contains(s) {
                    seen.insert(s.to_string());
                }
            }
        }
    };
    match table.format {
        TableFormat::Csv => {
            for (i, f) in table.files.iter().enumerate() {
                csv_blocks(table, i, &f.path, &mut |_, batch| {
                    collect(batch);
                    Ok(true)
                })?;
            }
        }
        _ => {
            for chunk in raw_chunks(table)? {
                for batch in table.read_chunk(&chunk, 0)? {
                    collect(batch?);
                }
            }
        }
    }
    Ok(Some(seen.into_iter().collect()))
}

/// A CSV file cut into blocks of [`CSV_CHUNK_ROWS`] records, each with the byte offset of its
/// first record, decoded as it is cut and handed to `each` (which returns whether to go on).
fn csv_blocks(
    table: &Table,
    file: usize,
    path: &Path,
    each: &mut dyn FnMut(Chunk, RecordBatch) -> Result<bool>,
) -> Result<()> {
    let schema = table.csv_schema_of(file);
    let projection = table.projection_indices(&schema);
    let mut decoder = arrow::csv::ReaderBuilder::new(schema)
        .with_format(csv_format())
        .with_batch_size(CSV_CHUNK_ROWS)
        .with_projection(projection)
        .build_decoder();
    let f = File::open(path).at(path)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, f);
    let mut consumed = 0u64;
    let mut start = 0u64;
    let mut part = 0;
    loop {
        let buf = reader.fill_buf().at(path)?;
        let available = buf.len();
        let where_ = format!("records from {}: ", part * CSV_CHUNK_ROWS);
        let used = decoder
            .decode(buf)
            .map_err(|e| arrow_error(path, &where_, e))?;
        reader.consume(used);
        consumed += used as u64;
        if available == 0 || decoder.capacity() == 0 {
            if let Some(batch) = decoder.flush().map_err(|e| arrow_error(path, &where_, e))? {
                let chunk = Chunk {
                    file,
                    part,
                    rows: batch.num_rows(),
                    offset: start,
                };
                part += 1;
                start = consumed;
                let batch = with_partitions(&table.files[file], batch)?;
                if !each(chunk, batch)? {
                    return Ok(());
                }
            }
            if available == 0 {
                return Ok(());
            }
        }
    }
}
