//! `aekit data fetch`

use std::path::PathBuf;

use clap::{Args, Subcommand};

use aekit::error::{Error, Result};

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    cmd: DataCmd,
}

#[derive(Subcommand, Debug)]
enum DataCmd {
    /// Download a dataset into the cache (verified by checksum, resumable).
    Fetch {
        /// Dataset name (mnist).
        name: String,
        /// Target directory (default: the cache, e.g. ~/.cache/aekit/mnist).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Base URL to try before the built-in mirrors (repeatable).
        #[arg(long)]
        mirror: Vec<String>,
    },
    /// Write a data set (any --data source) as one Parquet file: the features as a column
    /// `x` of fixed-size lists with the sample shape in its metadata, the labels as `label`.
    Convert {
        #[command(flatten)]
        data: super::args::DataFlags,
        /// Which split to write.
        #[arg(long, value_enum, default_value_t = super::args::SplitArg::Train)]
        split: super::args::SplitArg,
        /// The Parquet file to write.
        #[arg(long)]
        out: PathBuf,
        /// Rows per row group.
        #[arg(long, default_value_t = 10_000)]
        row_group_rows: usize,
    },
}

pub fn run(args: DataArgs) -> Result<()> {
    match args.cmd {
        DataCmd::Convert {
            data,
            split,
            out,
            row_group_rows,
        } => {
            let mut cfg = aekit::data::DataConfig::default();
            data.apply(&mut cfg)?;
            if row_group_rows == 0 {
                return Err(Error::invalid("--row-group-rows must be at least 1"));
            }
            let ds = aekit::data::load(&cfg, split.into())?;
            let mut outputs = aekit::io::OutputSet::default();
            outputs.write(&out, |staged| {
                aekit::data::table::write::write_dataset(staged, &ds, row_group_rows)
            })?;
            outputs.commit()?;
            println!(
                "{} rows of {} features from {} written to {}",
                ds.len(),
                ds.dim(),
                ds.origin,
                out.display()
            );
            Ok(())
        }
        DataCmd::Fetch { name, dir, mirror } => {
            if name != "mnist" {
                return Err(Error::invalid(format!(
                    "unknown dataset '{name}'; available: mnist"
                )));
            }
            let dir = match dir {
                Some(d) => d,
                None => aekit::data::fetch::default_cache_dir()?.join("mnist"),
            };
            let mut mirrors = mirror;
            mirrors.extend(
                aekit::data::fetch::MNIST_MIRRORS
                    .iter()
                    .map(|s| s.to_string()),
            );
            let paths =
                aekit::data::fetch::fetch(&aekit::data::fetch::mnist_files(), &mirrors, &dir)?;
            for p in &paths {
                println!("{}", p.display());
            }
            eprintln!(
                "MNIST ready in {}: use --data mnist --data-dir {}",
                dir.display(),
                dir.display()
            );
            Ok(())
        }
    }
}
