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
}

pub fn run(args: DataArgs) -> Result<()> {
    match args.cmd {
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
