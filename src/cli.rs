//! The command line: clap definitions and one function per command.
//!
//! Each command function turns arguments into calls to the library and
//! prints what the user needs to see; none of them exits the process.
//! `main` maps the returned [`ExitStatus`] or error to an exit code.

use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::article::{self, Format};
use crate::check;
use crate::config;
use crate::diagnostic::{InvalidInput, Problem};
use crate::sequence::{self, Overwrite};

/// Exit codes, documented in the README. They are stable: cron jobs and
/// service managers act on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked.
    Success = 0,
    /// An unexpected failure: an I/O error, a bug.
    Failure = 1,
    /// The command line is wrong.
    Usage = 2,
    /// The config, a sequence, a template, a list or an article has errors.
    InvalidInput = 3,
}

impl ExitStatus {
    /// The status for an error that reached `main`.
    pub fn of(error: &anyhow::Error) -> ExitStatus {
        if error.downcast_ref::<InvalidInput>().is_some() {
            ExitStatus::InvalidInput
        } else {
            ExitStatus::Failure
        }
    }
}

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Split an article into a sequence of daily emails under sequences/ID/.
    Split {
        /// The article: plain text, or Markdown (.md).
        article: PathBuf,
        /// The sequence id: a folder name such as `gut-immune`.
        #[arg(long, value_name = "ID", value_parser = parse_sequence_id)]
        name: String,
        /// How many emails; by default it follows the article's sections and length.
        #[arg(long, value_name = "N", value_parser = parse_days)]
        days: Option<NonZeroUsize>,
        /// Replace an existing sequence of that name (and the edits made to it).
        #[arg(long)]
        force: bool,
    },
    /// Validate the config, sequences and what they refer to; report every problem.
    Check,
}

fn parse_sequence_id(id: &str) -> Result<String, String> {
    sequence::validate_id(id).map(|()| id.to_owned())
}

fn parse_days(text: &str) -> Result<NonZeroUsize, String> {
    text.parse::<NonZeroUsize>()
        .map_err(|_| format!("`{text}` is not a number of days: give a whole number, 1 or more"))
}

/// Runs the command the user asked for.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match cli.command {
        Command::Split {
            article,
            name,
            days,
            force,
        } => split(&article, &name, days, force),
        Command::Check => Ok(check(&cli.config)),
    }
}

fn split(
    article_path: &Path,
    id: &str,
    days: Option<NonZeroUsize>,
    force: bool,
) -> anyhow::Result<ExitStatus> {
    let invalid = |message: String| InvalidInput::from(Problem::error(article_path, message));
    let bytes =
        fs::read(article_path).map_err(|err| invalid(format!("cannot read the article: {err}")))?;
    let text = article::decode(&bytes).map_err(|err| invalid(err.to_string()))?;
    let format = Format::from_path(article_path);
    let course = article::split(&text, format, days).map_err(|err| invalid(err.to_string()))?;
    let source_name = match format {
        Format::Markdown => "source.md",
        Format::PlainText => "source.txt",
    };
    let overwrite = if force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    let dir = sequence::create(
        Path::new(sequence::SEQUENCES_DIR),
        id,
        &course,
        source_name,
        &bytes,
        overwrite,
    )?;

    println!(
        "Split {} into {} emails in {}/:",
        article_path.display(),
        course.days.len(),
        dir.display()
    );
    for (number, day) in course.days.iter().enumerate() {
        let words = day.body.split_whitespace().count();
        println!("  {:>2}. {} ({words} words)", number + 1, day.subject);
    }
    if let Some(cta) = &course.cta {
        println!("Call to action: {} -> {}", cta.text, cta.url);
    }
    println!(
        "Next: edit the subjects, preheaders and text in {}/, then run `dripline check`.",
        dir.display()
    );
    Ok(ExitStatus::Success)
}

fn check(config_file: &Path) -> ExitStatus {
    let findings = check::check(config_file);
    for problem in findings.report.problems() {
        eprintln!("{problem}");
    }
    let emails: usize = findings.sequences.iter().map(|(_, steps)| steps).sum();
    let (errors, warnings) = (
        findings.report.error_count(),
        findings.report.warning_count(),
    );
    println!(
        "Checked {}: {} sequence{} ({emails} emails), {errors} error{}, {warnings} warning{}.",
        config_file.display(),
        findings.sequences.len(),
        plural(findings.sequences.len()),
        plural(errors),
        plural(warnings),
    );
    if errors > 0 {
        ExitStatus::InvalidInput
    } else {
        ExitStatus::Success
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}
