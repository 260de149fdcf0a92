//! Arrow from Python without copies: any object with `__arrow_c_stream__` (a pyarrow
//! Table, RecordBatch or RecordBatchReader, a polars DataFrame, a pandas DataFrame on pandas ≥
//! 2.2) is read through the Arrow C stream interface, its buffers used where they lie; its
//! columns are laid out as the library lays out a table's (`aekit::data::table::Layout`).

use std::ffi::CStr;
use std::path::Path;

use arrow::array::RecordBatchReader;
use arrow::ffi_stream::{FFI_ArrowArrayStream, RecordBatchStreamReader};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use aekit::data::Matrix;
use aekit::data::table::{ColumnChoice, Layout, READ_BATCH_ROWS};

use crate::py_err;

/// The capsule name the PyCapsule interface gives an ArrowArrayStream.
const STREAM_CAPSULE: &CStr = c"arrow_array_stream";

/// Whether `obj` speaks the Arrow C stream interface.
pub fn is_arrow(obj: &Bound<'_, PyAny>) -> bool {
    obj.hasattr("__arrow_c_stream__").unwrap_or(false)
}

/// The record batches of `obj`, read from its Arrow C stream.
pub fn import_stream(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<RecordBatchStreamReader> {
    let capsule = obj.call_method0("__arrow_c_stream__")?;
    let capsule = capsule.cast::<PyCapsule>().map_err(|_| {
        PyValueError::new_err(format!(
            "{name}: __arrow_c_stream__ did not return a capsule"
        ))
    })?;
    let pointer = capsule.pointer_checked(Some(STREAM_CAPSULE)).map_err(|_| {
        PyValueError::new_err(format!(
            "{name}: __arrow_c_stream__ returned a capsule of another kind"
        ))
    })?;
    // SAFETY: the capsule holds an ArrowArrayStream (its name says so, as the PyCapsule
    // interface defines); from_raw moves the stream out and leaves it released, so the
    // capsule's destructor does not release it a second time.
    unsafe { RecordBatchStreamReader::from_raw(pointer.as_ptr() as *mut FFI_ArrowArrayStream) }
        .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}

/// The feature rows of the Arrow object `obj` (every numeric column, or `columns`), as one
/// row-major matrix written once: `rows_hint` (the object's length, where it has one) sizes it.
pub fn matrix(
    obj: &Bound<'_, PyAny>,
    name: &str,
    columns: Option<Vec<String>>,
    rows_hint: Option<usize>,
    kept: Vec<String>,
) -> PyResult<Matrix> {
    let reader = import_stream(obj, name)?;
    let origin = Path::new(name);
    // Kept columns are carried beside outputs, never read as features.
    let choice = ColumnChoice {
        features: columns,
        kept,
        ..Default::default()
    };
    let layout = Layout::of(&reader.schema(), &choice, origin).map_err(py_err)?;
    let mut data = Vec::with_capacity(rows_hint.unwrap_or(0) * layout.width);
    let mut rows = 0;
    for (i, batch) in reader.enumerate() {
        let batch = batch.map_err(|e| PyValueError::new_err(format!("{name}: batch {i}: {e}")))?;
        // A table often comes as one batch of all its rows: laid out a slice at a time, in
        // place, the rows are written once, not first into a matrix as large.
        for start in (0..batch.num_rows()).step_by(READ_BATCH_ROWS) {
            let piece = batch.slice(start, READ_BATCH_ROWS.min(batch.num_rows() - start));
            let filled = data.len();
            data.resize(filled + piece.num_rows() * layout.width, 0.0);
            let where_ = format!("batch {i}, rows from {start}: ");
            layout
                .rows_into(&piece, origin, &where_, &mut data[filled..])
                .map_err(py_err)?;
            rows += piece.num_rows();
        }
    }
    Matrix::new(rows, layout.width, data).map_err(py_err)
}

/// The Arrow object `obj` read whole as a typed table (every column; no labels), for the
/// library's typed columns to fit or encode.
pub fn typed_table(
    obj: &Bound<'_, PyAny>,
    name: &str,
) -> PyResult<aekit::data::columns::TypedTable> {
    let reader = import_stream(obj, name)?;
    let schema = reader.schema();
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?;
    let batch = arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?;
    Ok(aekit::data::columns::TypedTable {
        batch,
        labels: None,
        class_names: None,
        path: Path::new(name).to_path_buf(),
    })
}
