//! Figures.

pub mod grid;

pub use grid::{ImageGrid, save_png};
