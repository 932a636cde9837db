//! `dripline signup-form SEQ`: the HTML form to paste into a website.

use std::path::Path;

use super::ExitStatus;
use crate::config::Project;
use crate::diagnostic::{InvalidInput, Problem};
use crate::signup::form;

/// The arguments of `dripline signup-form`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The sequence id.
    sequence: String,
}

/// Prints the form of `[signup.SEQ]`, posting to the service's public URL.
pub fn execute(config_file: &Path, args: &Args) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    let config = &project.config;
    let Some(settings) = config.signup.get(&args.sequence) else {
        return Err(InvalidInput::from(Problem::error(
            &project.config_file,
            format!(
                "`{0}` has no signup form: add a [signup.{0}] table (see docs/config.md)",
                args.sequence
            ),
        ))
        .into());
    };
    let drips = crate::setup::load_drips(&project)?;
    let zone = drips
        .iter()
        .find(|drip| drip.sequence.id == args.sequence)
        .and_then(|drip| drip.sequence.settings.timezone)
        .map_or(config.timezone.0, |zone| zone.0);
    // `Project::load` refuses a [signup] table without a base_url.
    let base_url = config.unsubscribe.base_url.as_deref().unwrap_or_default();
    let action = format!("{base_url}/s/{}", args.sequence);
    println!(
        "<!-- dripline signup form for `{}`: posts to {action}. Add this site's origin to [signup.{}] allowed_origins. -->",
        args.sequence, args.sequence
    );
    print!(
        "{}",
        form::html(Some(&action), settings.get_ref(), zone.name())
    );
    Ok(ExitStatus::Success)
}
