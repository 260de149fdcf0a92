//! Reading ahead: a table's rows decoded on a thread of their own into a bounded channel, in
//! an epoch's order ([`training`]), the validation rows ([`validation`]) or every row in file
//! order ([`sequential`]). The channel's bound is the read-ahead: the reader waits when the
//! step has not taken what it decoded, so memory stays at a few batches and one window.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use arrow::array::RecordBatch;

use crate::data::Matrix;
use crate::data::table::order::{EpochPlan, Segment, is_validation};
use crate::data::table::scan::TableIndex;
use crate::data::table::{Chunk, Table};
use crate::error::{Error, Result};

/// Batches decoded ahead of the one in use.
pub const PREFETCH_BATCHES: usize = 4;

/// Some rows of a table, with their labels when it has a label column.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub x: Matrix,
    pub labels: Option<Vec<u32>>,
    /// Each row's position in the table (file order), for outputs that carry columns through.
    pub positions: Vec<usize>,
    /// The kept columns of these rows, as read (sequential reads only).
    pub kept: Option<RecordBatch>,
}

impl Rows {
    fn empty(width: usize, labelled: bool) -> Self {
        Rows {
            x: Matrix::zeros(0, width),
            labels: labelled.then(Vec::new),
            positions: Vec::new(),
            kept: None,
        }
    }

    fn push_row(&mut self, from: &Rows, i: usize) {
        self.x.data.extend_from_slice(from.x.row(i));
        self.x.rows += 1;
        if let (Some(to), Some(src)) = (&mut self.labels, &from.labels) {
            to.push(src[i]);
        }
        self.positions.push(from.positions[i]);
    }

    fn take(&mut self) -> Rows {
        let labelled = self.labels.is_some();
        std::mem::replace(self, Rows::empty(self.x.cols, labelled))
    }
}

/// A table and its index: what a feed reads.
pub struct TableData {
    pub table: Table,
    pub index: TableIndex,
    /// Only rows of these classes (one-class training); the index counts rows after it.
    pub classes: Option<Vec<u32>>,
}

/// The rows a reader thread sends, in order; an error ends the feed.
pub struct Feed {
    rx: Receiver<Result<Rows>>,
}

impl Iterator for Feed {
    type Item = Result<Rows>;
    fn next(&mut self) -> Option<Result<Rows>> {
        self.rx.recv().ok()
    }
}

fn spawn(
    data: Arc<TableData>,
    work: impl FnOnce(&TableData, &mut dyn FnMut(Rows) -> bool) -> Result<()> + Send + 'static,
) -> Feed {
    let (tx, rx): (SyncSender<Result<Rows>>, _) = sync_channel(PREFETCH_BATCHES);
    let spawned = std::thread::Builder::new()
        .name("aekit-reader".into())
        .spawn(move || {
            let sender = tx.clone();
            let mut send = move |rows: Rows| sender.send(Ok(rows)).is_ok();
            let outcome = data
                .index
                .check_files()
                .and_then(|()| work(&data, &mut send));
            if let Err(e) = outcome {
                let _ = tx.send(Err(e));
            }
        });
    if let Err(e) = spawned {
        let (tx, rx) = sync_channel(1);
        let _ = tx.send(Err(Error::invalid(format!(
            "cannot start the reader thread: {e}"
        ))));
        return Feed { rx };
    }
    Feed { rx }
}

/// A chunk being read from its start, row by row as the plan asks.
struct Cursor<'t> {
    chunk: usize,
    next: usize,
    batches: Box<dyn Iterator<Item = Result<RecordBatch>> + Send + 't>,
    pending: Rows,
    pending_from: usize,
}

impl TableData {
    fn convert(&self, chunk: &Chunk, batch: &RecordBatch, first: usize) -> Result<Rows> {
        let path = &self.table.files[chunk.file].path;
        let where_ = self.table.chunk_name(chunk);
        let layout = &self.table.layout;
        let x = layout.rows(batch, path, &where_)?;
        let labels = layout.labels(batch, self.index.class_names.as_deref(), path, &where_)?;
        let (x, labels) = match &self.classes {
            Some(keep) => super::scan::RowFilter {
                classes: Some(keep.clone()),
                limit: None,
            }
            .keep(x, labels, 0),
            None => (x, labels),
        };
        let positions = (first..first + x.rows).collect();
        Ok(Rows {
            x,
            labels,
            positions,
            kept: None,
        })
    }

    /// Appends the rows of `seg` to `out`, continuing `cursor` when it stands where the
    /// segment starts, else reading the chunk afresh from its start.
    fn read_segment<'t>(
        &'t self,
        cursor: &mut Option<Cursor<'t>>,
        seg: Segment,
        chunk_position: usize,
        out: &mut Rows,
    ) -> Result<()> {
        let chunk = &self.index.chunks[seg.chunk];
        if !matches!(cursor, Some(c) if c.chunk == seg.chunk && c.next == seg.start) {
            *cursor = Some(Cursor {
                chunk: seg.chunk,
                next: 0,
                batches: self.table.read_chunk(chunk, 0)?,
                pending: Rows::empty(self.index.width, self.table.layout.label.is_some()),
                pending_from: 0,
            });
        }
        let c = cursor.as_mut().expect("set above");
        while c.next < seg.end {
            if c.pending_from == c.pending.x.rows {
                let batch = c.batches.next().transpose()?.ok_or_else(|| {
                    Error::bad_file(
                        &self.table.files[chunk.file].path,
                        format!(
                            "{}has fewer rows than when the data set was indexed",
                            self.table.chunk_name(chunk)
                        ),
                    )
                })?;
                c.pending = self.convert(chunk, &batch, chunk_position + c.next)?;
                c.pending_from = 0;
                continue;
            }
            let take = (c.pending.x.rows - c.pending_from).min(seg.end - c.next);
            if c.next >= seg.start {
                for i in c.pending_from..c.pending_from + take {
                    out.push_row(&c.pending, i);
                }
            } else {
                // Rows before the segment (a resumed epoch, or a chunk revisited): skipped.
                let skip = take.min(seg.start - c.next);
                c.pending_from += skip;
                c.next += skip;
                continue;
            }
            c.pending_from += take;
            c.next += take;
        }
        Ok(())
    }
}

/// The training rows of one epoch in `plan`'s order, from the epoch's training row
/// `first_row` on, in batches of `batch_size` rows (the last may be short).
pub fn training(
    data: Arc<TableData>,
    plan: Arc<EpochPlan>,
    first_row: usize,
    batch_size: usize,
) -> Feed {
    spawn(data, move |data, send| {
        let labelled = data.table.layout.label.is_some();
        let mut batch = Rows::empty(data.index.width, labelled);
        if first_row >= plan.train_rows {
            return Ok(());
        }
        let (first_window, skip) = plan.locate(first_row);
        let mut cursor = None;
        for w in first_window..plan.num_windows() {
            let window = plan.window(w);
            let mut rows = Rows::empty(data.index.width, labelled);
            for seg in &window.segments {
                data.read_segment(&mut cursor, *seg, plan.chunk_position(seg.chunk), &mut rows)?;
            }
            let from = if w == first_window { skip } else { 0 };
            for &i in &window.order[from.min(window.order.len())..] {
                batch.push_row(&rows, i);
                if batch.x.rows == batch_size && !send(batch.take()) {
                    return Ok(());
                }
            }
        }
        if batch.x.rows > 0 {
            send(batch.take());
        }
        Ok(())
    })
}

/// The validation rows (see [`is_validation`]) in file order, in batches of `batch_rows`.
pub fn validation(data: Arc<TableData>, seed: u64, fraction: f64, batch_rows: usize) -> Feed {
    spawn(data, move |data, send| {
        let labelled = data.table.layout.label.is_some();
        let width = data.index.width;
        let mut batch = Rows::empty(width, labelled);
        let mut cursor = None;
        let mut position = 0;
        // Chunks are read a window's worth of rows at a time, so a large row group is never
        // held whole.
        let step = super::order::shuffle_rows(None, width, batch_rows);
        for (c, chunk) in data.index.chunks.iter().enumerate() {
            for start in (0..chunk.rows).step_by(step) {
                let seg = Segment {
                    chunk: c,
                    start,
                    end: (start + step).min(chunk.rows),
                };
                let mut rows = Rows::empty(width, labelled);
                data.read_segment(&mut cursor, seg, position, &mut rows)?;
                for i in 0..rows.x.rows {
                    if is_validation(seed, rows.positions[i], fraction) {
                        batch.push_row(&rows, i);
                        if batch.x.rows == batch_rows && !send(batch.take()) {
                            return Ok(());
                        }
                    }
                }
            }
            position += chunk.rows;
        }
        if batch.x.rows > 0 {
            send(batch.take());
        }
        Ok(())
    })
}

/// Every row in file order, one batch per record batch read, each with its kept columns
/// (`--keep-columns`) beside it.
pub fn sequential(data: Arc<TableData>) -> Feed {
    spawn(data, move |data, send| {
        let kept = &data.table.layout.kept;
        let mut position = 0;
        for chunk in &data.index.chunks {
            let mut read = 0;
            for batch in data.table.read_chunk(chunk, 0)? {
                let batch = batch?;
                let mut rows = data.convert(chunk, &batch, position + read)?;
                // A chunk cut short by a row limit ends inside a record batch.
                let take = rows.x.rows.min(chunk.rows - read);
                if take < rows.x.rows {
                    rows.x = rows.x.head(take);
                    rows.labels.iter_mut().for_each(|l| l.truncate(take));
                    rows.positions.truncate(take);
                }
                // Kept columns line up with the rows only where no class filter drops any.
                if !kept.is_empty() && data.classes.is_none() {
                    let batch = batch.slice(0, take);
                    let indices = kept
                        .iter()
                        .map(|k| batch.schema().index_of(k))
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(|e| super::arrow_error(&data.table.spec, "", e))?;
                    rows.kept = Some(
                        batch
                            .project(&indices)
                            .map_err(|e| super::arrow_error(&data.table.spec, "", e))?,
                    );
                }
                read += take;
                if !send(rows) {
                    return Ok(());
                }
                if read == chunk.rows {
                    break;
                }
            }
            position += chunk.rows;
        }
        Ok(())
    })
}
