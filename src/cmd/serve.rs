//! `dripline serve`: the service, holding the state lock until it stops.

use std::path::Path;

use super::{ExitStatus, runtime};
use crate::lock::StateLock;
use crate::setup::Setup;

/// Runs the command.
pub fn execute(config_file: &Path) -> anyhow::Result<ExitStatus> {
    let setup = Setup::load(config_file, None)?;
    for warning in setup.warnings.problems() {
        tracing::warn!("{warning}");
    }
    let state = setup.project.resolve(&setup.project.config.state.path);
    let _lock = StateLock::acquire(&state)?;
    runtime()?.block_on(crate::serve::serve(setup))?;
    Ok(ExitStatus::Success)
}
