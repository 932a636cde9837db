//! `dripline init [DIR]`: a starter project.

use std::path::PathBuf;

use super::ExitStatus;

/// The arguments of `dripline init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder to create it in.
    #[arg(default_value = ".")]
    dir: PathBuf,
}

/// Runs the command.
pub fn execute(args: &Args) -> anyhow::Result<ExitStatus> {
    crate::init::init(&args.dir)?;
    Ok(ExitStatus::Success)
}
