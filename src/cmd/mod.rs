//! The command line: clap definitions and dispatch, one file per command
//! (mdBook's layout). Each command's file holds its arguments and an
//! `execute` that turns them into calls to the library and prints what
//! the user needs to see; none of them exits the process. `main` maps the
//! returned [`ExitStatus`] or error to an exit code.

mod check;
mod exit;
mod export;
mod init;
mod mailbox;
mod plan;
mod preview;
mod recipient;
mod run;
mod send_test;
mod serve;
mod signup_form;
mod split;
mod state;
mod status;
mod suppression;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

use crate::config;

pub use self::exit::{ExitStatus, Usage};

/// dripline: turn one article into a daily email course and deliver it.
#[derive(Debug, Parser)]
#[command(name = "dripline", version, about, max_term_width = 100)]
pub struct Cli {
    /// The project's config file; its folder is the project.
    #[arg(
        long,
        global = true,
        env = "DRIPLINE_CONFIG",
        default_value = config::FILE_NAME,
        value_name = "PATH"
    )]
    pub config: PathBuf,

    /// More detail in the logs (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// How log lines are written to standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for journald and log shippers.
    Json,
}

/// The commands; each one's arguments live in its own file.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Split an article into a sequence of daily emails under sequences/ID/.
    Split(split::Args),
    /// Validate the config, sequences, templates and lists; report every problem.
    Check,
    /// Render every email of a sequence to .html, .txt and .eml, with an index.html timeline.
    Preview(preview::Args),
    /// Send everything that is due now, then exit: the command cron runs.
    Run(run::Args),
    /// Send steps of a sequence now to one address, subject prefixed [TEST], without touching state.
    SendTest(send_test::Args),
    /// Forecast how many emails go out when, and each subscriber's next step.
    Plan(plan::Args),
    /// Progress per sequence and step, failures, suppressions and the last run.
    Status(status::Args),
    /// Stop all email to an address, in every sequence.
    Unsubscribe(suppression::Args),
    /// Lift an unsubscribe or bounce, so the address gets email again.
    Resubscribe(suppression::Args),
    /// Run as a service: send on the `[serve] tick` schedule and answer unsubscribe links.
    Serve,
    /// Print the HTML signup form of a sequence, to paste into a website.
    SignupForm(signup_form::Args),
    /// Move the send state: `state copy --to URL` copies SQLite into an empty PostgreSQL.
    State(state::Args),
    /// Read the [mailbox] once: bounces (DSN), complaints (ARF), mailto unsubscribes.
    Mailbox,
    /// A sequence's signups and every suppression (who, why, when) as CSV.
    Export(export::Args),
    /// Create a starter project: config, example list, a welcome sequence, the unsubscribe secret.
    Init(init::Args),
}

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let config = &cli.config;
    match cli.command {
        Command::Split(args) => split::execute(&args),
        Command::Check => Ok(check::execute(config)),
        Command::Preview(args) => preview::execute(config, &args),
        Command::Run(args) => run::execute(config, &args),
        Command::SendTest(args) => send_test::execute(config, &args),
        Command::Plan(args) => plan::execute(config, &args),
        Command::Status(args) => status::execute(config, &args),
        Command::Unsubscribe(args) => suppression::execute(config, &args, true),
        Command::Resubscribe(args) => suppression::execute(config, &args, false),
        Command::Serve => serve::execute(config),
        Command::SignupForm(args) => signup_form::execute(config, &args),
        Command::State(args) => state::execute(config, &args),
        Command::Mailbox => mailbox::execute(config),
        Command::Export(args) => export::execute(config, &args),
        Command::Init(args) => init::execute(&args),
    }
}

/// The async runtime for commands that use the store or the network.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// The runtime of `run`: the pass, its SMTP sessions and their timers on
/// this one thread, so that no reply wakes a task on another thread and
/// none waits for a hand-over (the store's SQLite thread aside).
fn single_thread_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `--now TIME` of the commands that simulate days.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|err| {
            format!("`{text}` is not an RFC 3339 time ({err}); write for example 2026-12-01T09:00:00Z or 2026-12-01T09:00:00-05:00")
        })
}

/// An address argument (`unsubscribe EMAIL`, `send-test --to ADDR`).
fn parse_address(text: &str) -> Result<lettre::Address, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not an email address; write it as name@example.com"))
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}
