//! `aekit init`

use std::path::PathBuf;

use clap::Args;

use aekit::error::{Error, Result};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Where to write the template.
    #[arg(default_value = "aekit.toml")]
    out: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
}

pub fn run(args: InitArgs) -> Result<()> {
    if args.out.exists() && !args.force {
        return Err(Error::bad_file(
            &args.out,
            "already exists (use --force to overwrite)",
        ));
    }
    aekit::io::write_atomic(&args.out, aekit::run::template()?.as_bytes())?;
    println!(
        "wrote {}; train with `aekit train --config {}`",
        args.out.display(),
        args.out.display()
    );
    Ok(())
}
