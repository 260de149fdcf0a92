//! Outputs written a record batch at a time: codes, reconstructions or scores as Parquet
//! columns beside the input's kept columns, so an input larger than memory gives an output
//! larger than memory without holding either.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::data::Matrix;
use crate::error::{Error, IoContext, Result};

/// Bytes a row group holds before it is written out.
const ROW_GROUP_BYTES: usize = 64 << 20;

/// Creates `path` afresh, so it gets the permissions any new file gets (0666 less the umask)
/// rather than those of the private staging file it replaces.
fn create_fresh(path: &Path) -> Result<File> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(path, e)),
    }
    File::create(path).at(path)
}

/// One output column: a matrix of one value per row (a plain `float` column) or of several (a
/// fixed-size list of floats).
pub struct OutputColumn<'a> {
    pub name: &'a str,
    pub values: &'a Matrix,
}

fn matrix_array(m: &Matrix) -> Result<ArrayRef> {
    let values = Float32Array::from(m.data.clone());
    if m.cols == 1 {
        return Ok(Arc::new(values));
    }
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    FixedSizeListArray::try_new(item, m.cols as i32, Arc::new(values), None)
        .map(|a| Arc::new(a) as ArrayRef)
        .map_err(|e| Error::Serialize(e.to_string()))
}

/// A Parquet file written batch by batch.
pub struct ParquetOutput {
    /// Made at the first batch, which decides the schema.
    writer: Option<(ArrowWriter<File>, SchemaRef)>,
    path: std::path::PathBuf,
    pub rows: usize,
}

impl ParquetOutput {
    /// Starts `path` (a staging file: the caller moves it into place when complete).
    pub fn create(path: &Path) -> Self {
        Self {
            writer: None,
            path: path.to_path_buf(),
            rows: 0,
        }
    }

    /// Appends rows: `kept` columns as read, then `columns`, then `labels` as `label` (unless
    /// a kept column is named so).
    pub fn write(
        &mut self,
        kept: Option<&RecordBatch>,
        columns: &[OutputColumn],
        labels: Option<&[u32]>,
    ) -> Result<()> {
        let mut fields: Vec<Arc<Field>> = Vec::new();
        let mut arrays: Vec<ArrayRef> = Vec::new();
        if let Some(k) = kept {
            fields.extend(k.schema().fields().iter().cloned());
            arrays.extend(k.columns().iter().cloned());
        }
        for c in columns {
            let array = matrix_array(c.values)?;
            fields.push(Arc::new(Field::new(
                c.name,
                array.data_type().clone(),
                false,
            )));
            arrays.push(array);
        }
        // A kept column of that name already carries the labels as the input had them.
        let kept_label = fields.iter().any(|f| f.name() == "label");
        if let Some(l) = labels.filter(|_| !kept_label) {
            fields.push(Arc::new(Field::new("label", DataType::UInt32, false)));
            arrays.push(Arc::new(UInt32Array::from(l.to_vec())));
        }
        match &self.writer {
            None => {
                let schema = Arc::new(Schema::new(fields));
                let file = create_fresh(&self.path)?;
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
                    .build();
                let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
                    .map_err(|e| Error::bad_file(&self.path, e.to_string()))?;
                self.writer = Some((writer, schema));
            }
            Some((_, schema)) => {
                let same = |(a, b): (&Arc<Field>, &Arc<Field>)| {
                    a.name() == b.name() && a.data_type() == b.data_type()
                };
                if schema.fields().len() != fields.len()
                    || !schema.fields().iter().zip(&fields).all(same)
                {
                    return Err(Error::mismatch(
                        "these rows have other columns or types than the first batch written",
                    ));
                }
            }
        }
        let (writer, schema) = self.writer.as_mut().expect("made above");
        let batch = RecordBatch::try_new(schema.clone(), arrays)
            .map_err(|e| Error::bad_file(&self.path, e.to_string()))?;
        self.rows += batch.num_rows();
        writer
            .write(&batch)
            .map_err(|e| Error::bad_file(&self.path, e.to_string()))
    }

    /// Writes the footer.
    pub fn finish(self) -> Result<usize> {
        let path = self.path;
        match self.writer {
            Some((writer, _)) => {
                writer
                    .close()
                    .map_err(|e| Error::bad_file(&path, e.to_string()))?;
            }
            None => return Err(Error::bad_file(&path, "no rows to write")),
        }
        Ok(self.rows)
    }
}

/// Writes a whole data set as one Parquet file: the features as one column `x` (bytes for
/// byte data, else floats) with the sample shape in its metadata, and `label` when labelled,
/// with the class names in the schema's metadata. `row_group_rows` rows per row group.
pub fn write_dataset(
    path: &Path,
    data: &crate::data::Dataset,
    row_group_rows: usize,
) -> Result<()> {
    let byte_data = data.value_kind == crate::data::ValueKind::U8;
    // Bytes go as one fixed-size binary value per row: Parquet reads those back as plain
    // bytes, where a list of bytes costs decoding its repetition levels on every read.
    let float_item = Arc::new(Field::new("item", DataType::Float32, false));
    let x_type = if byte_data {
        DataType::FixedSizeBinary(data.dim() as i32)
    } else {
        DataType::FixedSizeList(float_item.clone(), data.dim() as i32)
    };
    let x_field = super::shaped_field("x", x_type, &data.sample_shape);
    let mut fields = vec![x_field];
    if data.labels.is_some() {
        fields.push(Field::new("label", DataType::UInt32, false));
    }
    let mut metadata = std::collections::HashMap::new();
    if data.labels.is_some() {
        metadata.insert(super::LABEL_KEY.to_string(), "label".to_string());
    }
    if let Some(names) = &data.class_names {
        metadata.insert(
            super::CLASS_NAMES_KEY.to_string(),
            serde_json::to_string(names).map_err(|e| Error::Serialize(e.to_string()))?,
        );
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, metadata));
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .build();
    let file = create_fresh(path)?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
        .map_err(|e| Error::bad_file(path, e.to_string()))?;
    let cols = data.dim();
    for start in (0..data.len()).step_by(row_group_rows.max(1)) {
        let end = (start + row_group_rows.max(1)).min(data.len());
        let values = &data.x.data[start * cols..end * cols];
        let x: ArrayRef = if byte_data {
            let bytes: Vec<u8> = values.iter().map(|&v| v as u8).collect();
            Arc::new(
                arrow::array::FixedSizeBinaryArray::try_new(cols as i32, bytes.into(), None)
                    .map_err(|e| Error::Serialize(e.to_string()))?,
            )
        } else {
            let flat = Arc::new(Float32Array::from(values.to_vec()));
            Arc::new(
                FixedSizeListArray::try_new(float_item.clone(), cols as i32, flat, None)
                    .map_err(|e| Error::Serialize(e.to_string()))?,
            )
        };
        let mut arrays: Vec<ArrayRef> = vec![x];
        if let Some(l) = &data.labels {
            arrays.push(Arc::new(UInt32Array::from(l[start..end].to_vec())));
        }
        let batch = RecordBatch::try_new(schema.clone(), arrays)
            .map_err(|e| Error::Serialize(e.to_string()))?;
        writer
            .write(&batch)
            .map_err(|e| Error::bad_file(path, e.to_string()))?;
        writer
            .flush()
            .map_err(|e| Error::bad_file(path, e.to_string()))?;
    }
    writer
        .close()
        .map_err(|e| Error::bad_file(path, e.to_string()))?;
    Ok(())
}
