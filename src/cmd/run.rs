//! `dripline run`: one pass, then exit: the command cron runs.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use chrono::{DateTime, Utc};

use super::{ExitStatus, parse_time, plural, single_thread_runtime};
use crate::engine::{self, Summary};
use crate::progress::Reporter;
use crate::setup::Setup;
use crate::store::{self, Access, StateSettings};

/// The arguments of `dripline run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Act as if it were this time (RFC 3339), to simulate days in seconds.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    now: Option<DateTime<Utc>>,
    /// Show what is due without sending or recording anything.
    #[arg(long)]
    dry_run: bool,
}

/// Runs the command.
pub fn execute(config_file: &Path, args: &Args) -> anyhow::Result<ExitStatus> {
    let clock = args.now.map_or(engine::Clock::System, engine::Clock::At);
    let dry_run = args.dry_run;
    let now = clock.now();
    let setup = Setup::load(config_file, None)?;
    for warning in setup.warnings.problems() {
        eprintln!("{warning}");
    }
    let state = StateSettings::of(&setup.project)?;
    let access = if dry_run { Access::Read } else { Access::Send };
    let progress = Reporter::new();
    let outcome = single_thread_runtime()?.block_on(async {
        let store = store::open(&state, access).await?;
        let transport = setup.transport(!dry_run).await?;
        let pass = engine::Pass {
            project: &setup.project,
            store: &store,
            transport: &transport,
            dry_run,
            progress: Some(&progress),
            clock,
        };
        if dry_run {
            let summary = pass.run(&setup.drips, &setup.renderers).await;
            store.close().await;
            return Ok((summary?, String::new()));
        }
        let summary = pass
            .run_recorded(&setup.drips, &setup.renderers, &AtomicBool::new(false))
            .await;
        transport.close().await;
        store.close().await;
        let summary = summary?;
        anyhow::Ok((summary, transport.destination(&setup.project)))
    });
    progress.finish();
    let (summary, destination) = outcome?;
    println!("{}", summary_line(now, &summary, dry_run, &destination));
    let catch_up = chrono::Duration::from_std(setup.project.config.delivery.catch_up)
        .unwrap_or(chrono::Duration::MAX);
    if let Some(warning) = summary.cadence.warning(catch_up) {
        eprintln!(
            "warning: {warning} ({} email{} went out late in this run)",
            summary.late,
            plural(summary.late as usize)
        );
    }
    Ok(if summary.has_failures() {
        ExitStatus::DeliveryFailed
    } else {
        ExitStatus::Success
    })
}

/// The one line a run prints at the end.
fn summary_line(now: DateTime<Utc>, summary: &Summary, dry_run: bool, destination: &str) -> String {
    let verb = if dry_run {
        "due (dry run, nothing sent)"
    } else {
        "sent"
    };
    format!(
        "{}: {} {verb}, {} to retry, {} failed, {} new subscriber{}, {} bad list row{}{}{}",
        now.format("%Y-%m-%dT%H:%M:%SZ"),
        summary.sent,
        summary.retrying,
        summary.failed,
        summary.enrolled,
        plural(summary.enrolled as usize),
        summary.bad_rows,
        plural(summary.bad_rows as usize),
        if summary.deferred == 0 {
            String::new()
        } else {
            format!(
                ", {} held back by max_per_hour/max_per_day until the next run",
                summary.deferred
            )
        },
        if dry_run || summary.sent == 0 {
            String::new()
        } else {
            format!("; {destination}")
        }
    )
}
