//! `dripline export SEQ`: signups and suppressions as CSV on stdout.

use std::path::Path;

use super::{ExitStatus, runtime};
use crate::config::Project;
use crate::diagnostic::{InvalidInput, Problem};
use crate::export;
use crate::store::signups::Signups as _;
use crate::store::{self, Access, StateSettings, Store as _};

/// The arguments of `dripline export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The sequence id.
    sequence: String,
}

/// Runs the command.
pub fn execute(config_file: &Path, args: &Args) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    let drips = crate::setup::load_drips(&project)?;
    let Some(drip) = drips.iter().find(|drip| drip.sequence.id == args.sequence) else {
        let known: Vec<&str> = drips.iter().map(|d| d.sequence.id.as_str()).collect();
        return Err(InvalidInput::from(Problem::error(
            &project.config_file,
            format!(
                "no [[drip]] sends the sequence `{}`; the config has: {}",
                args.sequence,
                known.join(", ")
            ),
        ))
        .into());
    };
    let state = StateSettings::of(&project)?;
    runtime()?.block_on(async {
        let store = store::open(&state, Access::Read).await?;
        let (sequence, suppressions, signups) = tokio::try_join!(
            store.load(&args.sequence),
            store.suppressions(),
            store.confirmed(&args.sequence)
        )?;
        export::write(
            std::io::stdout().lock(),
            drip.sequence.steps.len(),
            &sequence,
            &suppressions,
            &signups,
        )?;
        anyhow::Ok(())
    })?;
    Ok(ExitStatus::Success)
}
