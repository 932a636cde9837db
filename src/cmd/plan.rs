//! `dripline plan`: prints [`crate::plan::forecast`] for the project.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{ExitStatus, parse_time, runtime};
use crate::config::Project;
use crate::engine;
use crate::plan;
use crate::schedule::Cadence;
use crate::setup;
use crate::signup;
use crate::store::Store as _;
use crate::store::signups::Signups as _;
use crate::store::{self, Access, StateSettings};

/// The arguments of `dripline plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How many days ahead.
    #[arg(long, value_name = "N", default_value_t = 7)]
    days: u32,
    /// Forecast from this time (RFC 3339) instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    now: Option<DateTime<Utc>>,
    /// Print JSON (every email of the forecast) instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn execute(config_file: &Path, args: &Args) -> anyhow::Result<ExitStatus> {
    let now = args.now.unwrap_or_else(Utc::now);
    let project = Project::load(config_file)?;
    let drips = setup::load_drips(&project)?;
    let state = StateSettings::of(&project)?;
    let forecast = runtime()?.block_on(async {
        let store = store::open(&state, Access::Read).await?;
        let mut inputs = Vec::new();
        for drip in drips {
            let mut list = engine::read_list(&drip.list_file, &drip.columns)?;
            signup::merge(&mut list, &store.confirmed(&drip.sequence.id).await?);
            let sequence_state = store.load(&drip.sequence.id).await?;
            inputs.push((drip, list, sequence_state));
        }
        let suppressed = store.suppressions().await?;
        let last_sent = store.last_sent().await?;
        let runs = store.run_starts(now, Cadence::HISTORY).await?;
        let catch_up = chrono::Duration::from_std(project.config.delivery.catch_up)
            .unwrap_or(chrono::Duration::MAX);
        anyhow::Ok(plan::forecast(
            &plan::Inputs {
                drips: &inputs,
                suppressed: &suppressed,
                last_sent: &last_sent,
                zone: project.config.timezone.0,
                catch_up,
                runs: &runs,
            },
            now,
            args.days,
        ))
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&forecast.to_json())?);
    } else {
        println!("{forecast}");
    }
    Ok(ExitStatus::Success)
}
