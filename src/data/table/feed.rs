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
        Self::with_capacity(0, width, labelled)
    }

    /// No rows yet, with room for `rows` (growing a window row by row cost a copy and fresh
    /// zeroed pages at every doubling: 6% of a streamed run's time).
    fn with_capacity(rows: usize, width: usize, labelled: bool) -> Self {
        Self::in_buffer(Vec::with_capacity(rows * width), rows, width, labelled)
    }

    /// No rows yet, their values to go in `buffer` (emptied, with room for `rows`).
    fn in_buffer(mut buffer: Vec<f32>, rows: usize, width: usize, labelled: bool) -> Self {
        buffer.clear();
        buffer.reserve(rows * width);
        Rows {
            x: Matrix {
                rows: 0,
                cols: width,
                data: buffer,
            },
            labels: labelled.then(|| Vec::with_capacity(rows)),
            positions: Vec::with_capacity(rows),
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
    spawn_with_bound(data, PREFETCH_BATCHES, work)
}

/// [`spawn`] with `bound` items sent ahead.
fn spawn_with_bound(
    data: Arc<TableData>,
    bound: usize,
    work: impl FnOnce(&TableData, &mut dyn FnMut(Rows) -> bool) -> Result<()> + Send + 'static,
) -> Feed {
    let (tx, rx): (SyncSender<Result<Rows>>, _) = sync_channel(bound);
    let spawned = std::thread::Builder::new()
        .name("aekit-reader".into())
        .spawn(move || {
            yield_to_training();
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

/// Lowers the reader thread's priority (Linux `nice` 10): it needs a few percent of a core,
/// and at equal priority every slice it takes from a core the training threads share stalls
/// the step, which waits for its slowest share.
pub(crate) fn yield_to_training() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take no pointers; a failure leaves the priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
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
///
/// The reader thread sends whole windows, already in their shuffled order, one ahead of the
/// one in use (at most three in memory: in use, ready, being read); the batches are cut from
/// them on the caller's side. Sending batches instead left the step waiting at every window
/// while the next one was read whole.
pub fn training(
    data: Arc<TableData>,
    plan: Arc<EpochPlan>,
    first_row: usize,
    batch_size: usize,
) -> impl Iterator<Item = Result<Rows>> {
    let width = data.index.width;
    let labelled = data.table.layout.label.is_some();
    // Window buffers go back to the reader once their batches are cut: memory freshly
    // allocated for every window was zeroed by the kernel page by page (half the reader's time).
    let pool = Pool::default();
    let reader_pool = pool.clone();
    let windows = spawn_with_bound(data, 1, move |data, send| {
        if first_row >= plan.train_rows {
            return Ok(());
        }
        let (first_window, skip) = plan.locate(first_row);
        let mut cursor = None;
        for w in first_window..plan.num_windows() {
            let window = plan.window(w);
            let size = window.segments.iter().map(|s| s.end - s.start).sum();
            let mut rows = Rows::in_buffer(reader_pool.take(), size, width, labelled);
            for seg in &window.segments {
                data.read_segment(&mut cursor, *seg, plan.chunk_position(seg.chunk), &mut rows)?;
            }
            let from = if w == first_window { skip } else { 0 };
            let mut ordered =
                Rows::in_buffer(reader_pool.take(), window.order.len(), width, labelled);
            for &i in &window.order[from.min(window.order.len())..] {
                ordered.push_row(&rows, i);
            }
            reader_pool.give(rows.x.data);
            if !send(ordered) {
                return Ok(());
            }
        }
        Ok(())
    });
    Batched {
        windows,
        pool,
        current: Rows::empty(width, labelled),
        at: 0,
        batch_size: batch_size.max(1),
        failed: false,
    }
}

/// Buffers of rows handed back for reuse, shared by the reader and the batches' side.
#[derive(Clone, Default)]
struct Pool(Arc<std::sync::Mutex<Vec<Vec<f32>>>>);

impl Pool {
    /// A buffer handed back earlier, or a new one.
    fn take(&self) -> Vec<f32> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default()
    }

    fn give(&self, buffer: Vec<f32>) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(buffer);
    }
}

/// Batches cut from a feed of windows.
struct Batched {
    windows: Feed,
    pool: Pool,
    current: Rows,
    at: usize,
    batch_size: usize,
    failed: bool,
}

impl Iterator for Batched {
    type Item = Result<Rows>;
    fn next(&mut self) -> Option<Result<Rows>> {
        if self.failed {
            return None;
        }
        let mut batch = Rows::with_capacity(
            self.batch_size,
            self.current.x.cols,
            self.current.labels.is_some(),
        );
        while batch.x.rows < self.batch_size {
            if self.at == self.current.x.rows {
                match self.windows.next() {
                    Some(Ok(window)) => {
                        let done = std::mem::replace(&mut self.current, window);
                        self.pool.give(done.x.data);
                        self.at = 0;
                        continue;
                    }
                    Some(Err(e)) => {
                        self.failed = true;
                        return Some(Err(e));
                    }
                    None => break,
                }
            }
            let take = (self.batch_size - batch.x.rows).min(self.current.x.rows - self.at);
            for i in self.at..self.at + take {
                batch.push_row(&self.current, i);
            }
            self.at += take;
        }
        (batch.x.rows > 0).then_some(Ok(batch))
    }
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
