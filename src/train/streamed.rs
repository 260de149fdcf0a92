//! Training rows streamed from a table: each epoch's batches read ahead on the reader thread in
//! the epoch's planned order ([`crate::data::table::order`]), validation rows read the same
//! way, so memory holds a window and a few batches, never the table.

use std::sync::Arc;

use crate::data::Preprocessor;
use crate::data::table::feed::{self, Rows, TableData};
use crate::data::table::order::{self, EpochPlan, VALIDATION_BATCH_ROWS};
use crate::error::Result;
use crate::model::Autoencoder;
use crate::train::batches::{Batches, StepRows, TrainingRows, mean_loss_of};

/// Bytes of validation rows kept in memory after the first validation pass, so that later
/// epochs do not read the whole table again to find them; more than this are read each time.
pub const VALIDATION_CACHE_BYTES: usize = 64 << 20;

pub struct StreamedRows<'a> {
    pub data: Arc<TableData>,
    /// Applied to every batch as it arrives (the in-memory path applies it to the whole
    /// matrix once; the arithmetic is the same).
    pub preprocessor: Preprocessor,
    /// How rows become batches; its matrix is empty and only gives the width.
    pub batches: Batches<'a>,
    pub seed: u64,
    pub val_fraction: f64,
    /// Rows in a shuffle window.
    pub buffer: usize,
    pub train_rows: usize,
    pub val_rows: usize,
    /// The validation batches, once read, where they fit in [`VALIDATION_CACHE_BYTES`].
    validation_cache: std::sync::Mutex<Option<Vec<Rows>>>,
}

impl<'a> StreamedRows<'a> {
    pub fn new(
        data: Arc<TableData>,
        preprocessor: Preprocessor,
        batches: Batches<'a>,
        seed: u64,
        val_fraction: f64,
        buffer: usize,
    ) -> Self {
        let val_rows = order::validation_rows(data.index.rows, seed, val_fraction);
        Self {
            train_rows: data.index.rows - val_rows,
            val_rows,
            data,
            preprocessor,
            batches,
            seed,
            val_fraction,
            buffer,
            validation_cache: std::sync::Mutex::new(None),
        }
    }

    fn step_rows(&self, rows: Rows) -> Result<StepRows> {
        let mut x = rows.x;
        self.preprocessor.apply(&mut x)?;
        Ok(StepRows {
            n: x.rows,
            clean: x.data,
            labels: self.batches.condition.and(rows.labels),
        })
    }
}

impl TrainingRows for StreamedRows<'_> {
    fn counted(&self) -> (&Batches<'_>, usize, usize) {
        (&self.batches, self.train_rows, self.val_rows)
    }

    fn epoch(
        &self,
        epoch: usize,
        first: usize,
        batch_size: usize,
    ) -> Box<dyn Iterator<Item = Result<StepRows>> + '_> {
        let plan = EpochPlan::new(
            &self.data.index,
            self.seed,
            epoch,
            self.val_fraction,
            self.buffer,
        );
        let rows = feed::training(
            self.data.clone(),
            Arc::new(plan),
            first * batch_size,
            batch_size,
        );
        Box::new(rows.map(|r| r.and_then(|r| self.step_rows(r))))
    }

    fn validation_loss(
        &self,
        model: &Autoencoder,
        epochs_done: f64,
        dataset_size: usize,
    ) -> Result<(f64, f64)> {
        let cacheable = self.val_rows * self.data.index.width * 4 <= VALIDATION_CACHE_BYTES;
        let mut cache = self
            .validation_cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cacheable && cache.is_none() {
            let read = feed::validation(
                self.data.clone(),
                self.seed,
                self.val_fraction,
                VALIDATION_BATCH_ROWS,
            );
            *cache = Some(read.collect::<Result<Vec<Rows>>>()?);
        }
        if let Some(batches) = cache.as_ref() {
            let steps = batches.iter().map(|r| self.step_rows(r.clone()));
            return mean_loss_of(model, &self.batches, steps, epochs_done, dataset_size);
        }
        let rows = feed::validation(
            self.data.clone(),
            self.seed,
            self.val_fraction,
            VALIDATION_BATCH_ROWS,
        );
        let steps = rows.map(|r| r.and_then(|r| self.step_rows(r)));
        mean_loss_of(model, &self.batches, steps, epochs_done, dataset_size)
    }
}
