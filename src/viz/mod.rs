//! Figures: image grids, charts, the figures of a run and the HTML report.

pub mod charts;
pub mod figures;
pub mod grid;
pub mod report;

pub use figures::{Figure, FigureKind, FigureOptions, figure};
pub use grid::{ImageGrid, save_png};
pub use report::write_report;
