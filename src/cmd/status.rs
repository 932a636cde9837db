//! `dripline status`: prints [`crate::status`] as text or JSON.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{ExitStatus, parse_time, runtime};
use crate::config::{self, Project};
use crate::diagnostic::Report;
use crate::engine;
use crate::schedule::Cadence;
use crate::sequence::Sequence;
use crate::signup;
use crate::status;
use crate::store::signups::Signups as _;
use crate::store::{self, Access, StateSettings, Store as _};

/// The arguments of `dripline status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One subscriber's deliveries instead.
    #[arg(long, value_name = "EMAIL")]
    subscriber: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Judge what is overdue as of this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    now: Option<DateTime<Utc>>,
}

/// Runs the command.
pub fn execute(config_file: &Path, args: &Args) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    let now = args.now.unwrap_or_else(Utc::now);
    let state = StateSettings::of(&project)?;
    let mut report = Report::default();
    let drips: Vec<(Sequence, &config::Drip)> = project
        .config
        .drip
        .iter()
        .filter_map(|drip| {
            let sequence = Sequence::load(
                &project.sequences_dir().join(drip.sequence.get_ref()),
                &project.templates_dir(),
                &mut report,
            )?;
            Some((sequence, drip))
        })
        .collect();
    runtime()?.block_on(async {
        let store = store::open(&state, Access::Read).await?;
        if let Some(email) = &args.subscriber {
            let found = status::subscriber(&store, email).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else {
                println!("{found}");
            }
            return anyhow::Ok(());
        }
        let mut lists = Vec::new();
        for (sequence, drip) in &drips {
            let mut list = engine::read_list(&project.resolve(drip.list.get_ref()), &drip.columns)?;
            // Confirmed signups are subscribers too, for the overdue emails.
            signup::merge(&mut list, &store.confirmed(&sequence.id).await?);
            lists.push((sequence, list, store.load(&sequence.id).await?));
        }
        let suppressed = store.suppressions().await?;
        let catch_up = chrono::Duration::from_std(project.config.delivery.catch_up)
            .unwrap_or(chrono::Duration::MAX);
        let cadence = Cadence::of(&store.run_starts(now, Cadence::HISTORY).await?, now);
        let found = status::status(
            &store,
            &status::Lists {
                drips: &lists,
                suppressed: &suppressed,
                zone: project.config.timezone.0,
                catch_up,
                cadence,
            },
            now,
        )
        .await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&found)?);
        } else {
            println!("{found}");
        }
        anyhow::Ok(())
    })?;
    Ok(ExitStatus::Success)
}
