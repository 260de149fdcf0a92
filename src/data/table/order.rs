//! The order a streamed epoch visits a table's rows in, worked out from the index alone.
//!
//! Two levels, so that memory stays bounded whatever the table's size: the epoch's seeded
//! permutation of the chunks, cut into windows of at most `buffer` rows, and within each
//! window a seeded permutation of its training rows. Whether a row is for validation is a
//! function of the seed and the row's position in the table (its place in file order), the
//! same in every epoch, after a resume and in every command. Every choice is a pure function
//! of `(seed, epoch)`, so a run resumed at batch `b` reads only the window batch `b` starts in.

use rand::seq::SliceRandom;

use crate::data::batch::rng_for;
use crate::data::table::scan::TableIndex;

/// The stream of each epoch's chunk permutation, and of each window's row permutation.
const CHUNK_ORDER_STREAM: u64 = 3 << 40;
const WINDOW_ORDER_STREAM: u64 = 5 << 40;
/// Bytes of rows one shuffle window holds by default (`--shuffle-buffer` sets it in rows);
/// up to three windows are in memory at once (see `feed::training`).
pub const DEFAULT_SHUFFLE_BYTES: usize = 32 << 20;
/// Rows per validation batch (as the in-memory validation's batches).
pub const VALIDATION_BATCH_ROWS: usize = 1024;

/// The shuffle window in rows: `rows` when given, else [`DEFAULT_SHUFFLE_BYTES`] of rows of
/// `width` features; never below one batch.
pub fn shuffle_rows(rows: Option<usize>, width: usize, batch_size: usize) -> usize {
    rows.unwrap_or(DEFAULT_SHUFFLE_BYTES / (4 * width.max(1)))
        .max(batch_size)
        .max(1)
}

/// SplitMix64: a well-mixed 64-bit hash of a row position.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether the row at `position` (file order) is held out for validation: a hash of the seed
/// and the position below `fraction` of its range.
pub fn is_validation(seed: u64, position: usize, fraction: f64) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    let h = mix(mix(seed ^ 0x5EED_5B11_7000_0000) ^ position as u64);
    ((h >> 11) as f64 / (1u64 << 53) as f64) < fraction
}

/// Rows `[start, end)` of chunk `chunk` (an index into the table index's chunks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub chunk: usize,
    pub start: usize,
    pub end: usize,
}

/// One window: the segments read together, and the order of their training rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub segments: Vec<Segment>,
    /// Training rows of the window, as offsets into the window's rows, in visiting order.
    pub order: Vec<usize>,
}

/// A whole epoch's plan.
#[derive(Debug, Clone)]
pub struct EpochPlan {
    /// `(first training row of the epoch it holds, window)`, windows in visiting order; the
    /// window itself is made only when read ([`EpochPlan::window`]).
    starts: Vec<usize>,
    segments: Vec<Vec<Segment>>,
    chunk_first_position: Vec<usize>,
    seed: u64,
    epoch: usize,
    fraction: f64,
    pub train_rows: usize,
}

impl EpochPlan {
    pub fn new(index: &TableIndex, seed: u64, epoch: usize, fraction: f64, buffer: usize) -> Self {
        let mut chunk_first_position = Vec::with_capacity(index.chunks.len());
        let mut pos = 0;
        for c in &index.chunks {
            chunk_first_position.push(pos);
            pos += c.rows;
        }
        let mut chunk_order: Vec<usize> = (0..index.chunks.len()).collect();
        chunk_order.shuffle(&mut rng_for(seed, CHUNK_ORDER_STREAM + epoch as u64));
        let buffer = buffer.max(1);
        let (mut starts, mut segments) = (Vec::new(), Vec::new());
        let mut current: Vec<Segment> = Vec::new();
        let (mut filled, mut train_rows, mut window_train) = (0usize, 0usize, 0usize);
        for &c in &chunk_order {
            let rows = index.chunks[c].rows;
            let mut start = 0;
            while start < rows {
                let take = (buffer - filled).min(rows - start);
                let seg = Segment {
                    chunk: c,
                    start,
                    end: start + take,
                };
                window_train += (seg.start..seg.end)
                    .filter(|&r| !is_validation(seed, chunk_first_position[c] + r, fraction))
                    .count();
                current.push(seg);
                filled += take;
                start += take;
                if filled == buffer {
                    starts.push(train_rows);
                    segments.push(std::mem::take(&mut current));
                    train_rows += window_train;
                    (filled, window_train) = (0, 0);
                }
            }
        }
        if !current.is_empty() {
            starts.push(train_rows);
            segments.push(current);
            train_rows += window_train;
        }
        Self {
            starts,
            segments,
            chunk_first_position,
            seed,
            epoch,
            fraction,
            train_rows,
        }
    }

    pub fn num_windows(&self) -> usize {
        self.segments.len()
    }

    /// The window holding the epoch's training row `row`, and `row`'s place in it.
    pub fn locate(&self, row: usize) -> (usize, usize) {
        let w = self.starts.partition_point(|&s| s <= row).saturating_sub(1);
        (w, row - self.starts.get(w).copied().unwrap_or(0))
    }

    /// Window `w` with its seeded order of training rows.
    pub fn window(&self, w: usize) -> Window {
        let segments = self.segments[w].clone();
        let mut order = Vec::new();
        let mut offset = 0;
        for s in &segments {
            let first = self.chunk_first_position[s.chunk];
            for r in s.start..s.end {
                if !is_validation(self.seed, first + r, self.fraction) {
                    order.push(offset + r - s.start);
                }
            }
            offset += s.end - s.start;
        }
        let stream = WINDOW_ORDER_STREAM + ((self.epoch as u64) << 24) + w as u64;
        order.shuffle(&mut rng_for(self.seed, stream));
        Window { segments, order }
    }

    /// The position in file order of the first row of `chunk`.
    pub fn chunk_position(&self, chunk: usize) -> usize {
        self.chunk_first_position[chunk]
    }
}

/// Rows held out for validation in a table of `rows` rows.
pub fn validation_rows(rows: usize, seed: u64, fraction: f64) -> usize {
    (0..rows)
        .filter(|&p| is_validation(seed, p, fraction))
        .count()
}
