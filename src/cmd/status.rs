//! `dripline status`: prints [`crate::status`] as text or JSON.

use std::path::Path;

use super::{ExitStatus, runtime};
use crate::config::Project;
use crate::diagnostic::Report;
use crate::sequence::Sequence;
use crate::status;
use crate::store::{self, Access, StateSettings};

/// The arguments of `dripline status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One subscriber's deliveries instead.
    #[arg(long, value_name = "EMAIL")]
    subscriber: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn execute(config_file: &Path, args: &Args) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    let state = StateSettings::of(&project)?;
    let mut report = Report::default();
    let sequences: Vec<Sequence> = project
        .config
        .drip
        .iter()
        .filter_map(|drip| {
            Sequence::load(
                &project.sequences_dir().join(drip.sequence.get_ref()),
                &project.templates_dir(),
                &mut report,
            )
        })
        .collect();
    runtime()?.block_on(async {
        let store = store::open(&state, Access::Read).await?;
        match &args.subscriber {
            Some(email) => {
                let found = status::subscriber(&store, email).await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&found)?);
                } else {
                    println!("{found}");
                }
            }
            None => {
                let found = status::status(&store, &sequences).await?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&found)?);
                } else {
                    println!("{found}");
                }
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitStatus::Success)
}
