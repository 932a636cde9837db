//! `dripline state copy`: moves a project's SQLite state into an empty
//! PostgreSQL database ([`crate::store::copy`]).

use std::path::Path;

use clap::Subcommand;

use super::{ExitStatus, runtime};
use crate::config::Project;
use crate::store::copy::copy;
use crate::store::{PostgresTarget, StateSettings};

/// The arguments of `dripline state`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: StateCommand,
}

#[derive(Debug, Subcommand)]
enum StateCommand {
    /// Copy the SQLite state into an empty PostgreSQL database.
    Copy(CopyArgs),
}

#[derive(Debug, clap::Args)]
struct CopyArgs {
    /// The database to copy into: postgres://USER:PASSWORD@HOST/DATABASE.
    #[arg(long, value_name = "URL", required_unless_present = "to_env")]
    to: Option<String>,
    /// The environment variable that holds that URL, which keeps the
    /// password out of the process list and the shell history.
    #[arg(long, value_name = "VAR", conflicts_with = "to")]
    to_env: Option<String>,
}

/// Runs the command.
pub fn execute(config_file: &Path, args: &Args) -> anyhow::Result<ExitStatus> {
    let StateCommand::Copy(args) = &args.command;
    let project = Project::load(config_file)?;
    let from = StateSettings::of(&project)?;
    let url = match (&args.to, &args.to_env) {
        (Some(url), _) => url.clone(),
        (None, Some(name)) => std::env::var(name)
            .map_err(|_| anyhow::anyhow!("--to-env names `{name}`, which is not set"))?,
        (None, None) => unreachable!("clap requires one of --to and --to-env"),
    };
    let target = PostgresTarget::new(&url, None, project.config.state.instance_timeout)?;
    let copied = runtime()?.block_on(copy(&from, &target))?;
    println!(
        "Copied {} enrollments, {} deliveries, {} suppressions, {} signups and {} runs from {} into {}.\n\
         To use it, replace `path` in [state] with `url_env` (or `url` and a password setting); the state file stays as it was.",
        copied.enrollments,
        copied.deliveries,
        copied.suppressions,
        copied.signups,
        copied.runs,
        from.describe(),
        target.shown
    );
    Ok(ExitStatus::Success)
}
