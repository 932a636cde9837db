//! `dripline serve`: the service, working on the state until it stops.

use std::path::Path;

use super::{ExitStatus, runtime};
use crate::setup::Setup;
use crate::store::StateSettings;

/// Runs the command.
pub fn execute(config_file: &Path) -> anyhow::Result<ExitStatus> {
    let setup = Setup::load(config_file, None)?;
    for warning in setup.warnings.problems() {
        tracing::warn!("{warning}");
    }
    let state = StateSettings::of(&setup.project)?;
    runtime()?.block_on(crate::serve::serve(setup, state))?;
    Ok(ExitStatus::Success)
}
