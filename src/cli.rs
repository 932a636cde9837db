//! The command line: clap definitions and one function per command.
//!
//! Each command function turns arguments into calls to the library and
//! prints what the user needs to see; none of them exits the process.
//! `main` maps the returned [`ExitStatus`] or error to an exit code.

use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use clap::{Parser, Subcommand, ValueEnum};

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use crate::article::{self, Format};
use crate::check;
use crate::config::{self, Project, Transport};
use crate::delivery::{Configured, Parcel, Transport as _, Unreachable};
use crate::diagnostic::{InvalidInput, Problem, Report};
use crate::engine;
use crate::lock::{Locked, StateLock};
use crate::plan;
use crate::preview;
use crate::progress::Reporter;
use crate::render::{Renderer, UnsubscribeLinks};
use crate::sequence::{self, Overwrite, Sequence};
use crate::status;
use crate::store::sqlite::SqliteStore;
use crate::store::{Reason, Store};
use crate::subscribers::{self, Subscriber};
use crate::token::Key;

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
    /// Some emails could not be delivered (they are retried or reported).
    DeliveryFailed = 4,
    /// Another `run` or `serve` holds the state file.
    Locked = 5,
    /// The mail server cannot be reached (or refused the session); the
    /// emails stay due.
    Unreachable = 6,
}

impl ExitStatus {
    /// The status for an error that reached `main`.
    pub fn of(error: &anyhow::Error) -> ExitStatus {
        if error.downcast_ref::<InvalidInput>().is_some() {
            ExitStatus::InvalidInput
        } else if error.downcast_ref::<Locked>().is_some() {
            ExitStatus::Locked
        } else if error.downcast_ref::<Unreachable>().is_some() {
            ExitStatus::Unreachable
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
    /// Validate the config, sequences, templates and lists; report every problem.
    Check,
    /// Render every email of a sequence to .html, .txt and .eml, with an index.html timeline.
    Preview {
        /// The sequence id; every sequence when left out.
        sequence: Option<String>,
        /// Where the files go.
        #[arg(long, value_name = "DIR", default_value = "preview")]
        to: PathBuf,
        /// Render for this subscriber from a list instead of a sample one.
        #[arg(long, value_name = "EMAIL")]
        subscriber: Option<String>,
    },
    /// Send everything that is due now, then exit: the command cron runs.
    Run {
        /// Act as if it were this time (RFC 3339), to simulate days in seconds.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
        /// Show what is due without sending or recording anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Send steps of a sequence now to one address, subject prefixed [TEST], without touching state.
    SendTest {
        /// The sequence id.
        sequence: String,
        /// Where the test goes.
        #[arg(long, value_name = "ADDR")]
        to: String,
        /// Only this step (1 is the first); every step when left out.
        #[arg(long, value_name = "N")]
        step: Option<NonZeroUsize>,
    },
    /// Forecast how many emails go out when, and each subscriber's next step.
    Plan {
        /// How many days ahead.
        #[arg(long, value_name = "N", default_value_t = 7)]
        days: u32,
        /// Forecast from this time (RFC 3339) instead of now.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
    },
    /// Progress per sequence and step, failures, suppressions and the last run.
    Status {
        /// One subscriber's deliveries instead.
        #[arg(long, value_name = "EMAIL")]
        subscriber: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Stop all email to an address, in every sequence.
    Unsubscribe {
        /// The address.
        email: String,
    },
    /// Lift an unsubscribe or bounce, so the address gets email again.
    Resubscribe {
        /// The address.
        email: String,
    },
    /// Run as a service: send on the `[serve] tick` schedule and answer unsubscribe links.
    Serve,
    /// Create a starter project: config, example list, a welcome sequence, the unsubscribe secret.
    Init {
        /// The folder to create it in.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|err| {
            format!("`{text}` is not an RFC 3339 time ({err}); write for example 2026-12-01T09:00:00Z or 2026-12-01T09:00:00-05:00")
        })
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
        Command::Preview {
            sequence,
            to,
            subscriber,
        } => preview(&cli.config, sequence.as_deref(), &to, subscriber.as_deref()),
        Command::Run { now, dry_run } => {
            let clock = now.map_or(engine::Clock::System, engine::Clock::At);
            run_pass(&cli.config, clock, dry_run)
        }
        Command::SendTest { sequence, to, step } => send_test(&cli.config, &sequence, &to, step),
        Command::Plan { days, now } => plan(&cli.config, days, now.unwrap_or_else(Utc::now)),
        Command::Status { subscriber, json } => status(&cli.config, subscriber.as_deref(), json),
        Command::Unsubscribe { email } => suppression(&cli.config, &email, true),
        Command::Resubscribe { email } => suppression(&cli.config, &email, false),
        Command::Serve => serve(&cli.config),
        Command::Init { dir } => init(&dir),
    }
}

/// The async runtime for commands that use the store or the network.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn state_path(project: &Project) -> PathBuf {
    project.resolve(&project.config.state.path)
}

/// The unsubscribe links of the project. A missing secret is created for
/// the outbox transport (nothing leaves the machine), and an error that
/// says how to make one otherwise.
fn unsubscribe_links(project: &Project) -> anyhow::Result<UnsubscribeLinks> {
    let path = project.resolve(&project.config.unsubscribe.secret_file);
    let key = match Key::from_file(&path) {
        Ok(key) => key,
        Err(_) if !path.exists() && project.config.delivery.transport == Transport::Outbox => {
            let key = Key::create(&path).with_context(|| {
                format!("cannot create the unsubscribe secret {}", path.display())
            })?;
            tracing::info!(
                "created {} (mode 0600): the key that signs unsubscribe links; keep it and back it up",
                path.display()
            );
            key
        }
        Err(problem) => return Err(InvalidInput::from(problem).into()),
    };
    Ok(UnsubscribeLinks::new(&project.config.unsubscribe, key))
}

/// The project's key when it has one, else a throwaway one: for commands
/// that only show emails.
fn preview_links(project: &Project) -> anyhow::Result<UnsubscribeLinks> {
    let path = project.resolve(&project.config.unsubscribe.secret_file);
    let key = match Key::from_file(&path) {
        Ok(key) => key,
        Err(_) => Key::random()?,
    };
    Ok(UnsubscribeLinks::new(&project.config.unsubscribe, key))
}

fn run_pass(config_file: &Path, clock: engine::Clock, dry_run: bool) -> anyhow::Result<ExitStatus> {
    let now = clock.now();
    let project = Project::load(config_file)?;
    let drips = engine::load_drips(&project)?;
    let links = unsubscribe_links(&project)?;
    let renderers = engine::renderers(&project, &drips, &links)?;
    let state = state_path(&project);
    let _lock = if dry_run {
        None
    } else {
        Some(StateLock::acquire(&state)?)
    };
    let progress = Reporter::new();
    let outcome = runtime()?.block_on(async {
        let store = SqliteStore::open(&state).await?;
        let transport = Configured::open(&project, !dry_run).await?;
        let pass = engine::Pass {
            project: &project,
            store: &store,
            transport: &transport,
            dry_run,
            progress: Some(&progress),
            clock,
        };
        if dry_run {
            return Ok((pass.run(&drips, &renderers).await?, String::new()));
        }
        let summary = pass
            .run_recorded(&drips, &renderers, &AtomicBool::new(false))
            .await;
        transport.close().await;
        let summary = summary?;
        store.close().await;
        anyhow::Ok((summary, transport.destination(&project)))
    });
    progress.finish();
    let (summary, destination) = outcome?;
    let verb = if dry_run {
        "due (dry run, nothing sent)"
    } else {
        "sent"
    };
    println!(
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
    );
    Ok(if summary.has_failures() {
        ExitStatus::DeliveryFailed
    } else {
        ExitStatus::Success
    })
}

/// `dripline serve`: holds the state lock until it stops.
fn serve(config_file: &Path) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    let links = unsubscribe_links(&project)?;
    let _lock = StateLock::acquire(&state_path(&project))?;
    runtime()?.block_on(crate::serve::serve(project, links.key))?;
    Ok(ExitStatus::Success)
}

fn init(dir: &Path) -> anyhow::Result<ExitStatus> {
    crate::init::init(dir)?;
    Ok(ExitStatus::Success)
}

/// `dripline send-test`: renders steps for `to` (the list's row when it
/// has one, else a sample subscriber at that address) with `[TEST]` in
/// the subject and sends them through the configured transport. No state
/// is read or written.
fn send_test(
    config_file: &Path,
    id: &str,
    to: &str,
    step: Option<NonZeroUsize>,
) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    let address: lettre::Address = to.parse().map_err(|_| {
        InvalidInput::from(Problem::error(
            "--to",
            format!("`{to}` is not an email address"),
        ))
    })?;
    let dir = project.sequences_dir().join(id);
    let mut report = Report::default();
    let Some(sequence) = Sequence::load(&dir, &project.templates_dir(), &mut report) else {
        if report.has_errors() {
            return Err(InvalidInput(report).into());
        }
        return Err(InvalidInput::from(Problem::error(
            &dir,
            format!("no sequence `{id}`: create it with `dripline split ARTICLE --name {id}`"),
        ))
        .into());
    };
    let links = unsubscribe_links(&project)?;
    let renderer = Renderer::new(
        &sequence,
        &project.templates_dir(),
        &project.config.sender,
        links,
    )
    .map_err(InvalidInput)?;
    let steps: Vec<usize> = match step {
        Some(number) if number.get() > renderer.len() => {
            return Err(InvalidInput::from(Problem::error(
                "--step",
                format!(
                    "`{id}` has {} steps; give --step 1 to {}",
                    renderer.len(),
                    renderer.len()
                ),
            ))
            .into());
        }
        Some(number) => vec![number.get() - 1],
        None => (0..renderer.len()).collect(),
    };
    let person = find_subscriber(&project, to).unwrap_or_else(|_| {
        let mut sample =
            crate::render::sample_subscriber(list_columns(&project).iter().map(String::as_str));
        sample.email = address;
        sample
    });
    let now = Utc::now();
    let failures = runtime()?.block_on(async {
        let transport = Configured::open(&project, true).await?;
        let mut failures = 0;
        for index in steps {
            let email = renderer.render(index, &person, None, now.fixed_offset(), true)?;
            let parcel = Parcel {
                from: project.config.sender.from.email.clone(),
                to: person.email.clone(),
                bytes: email.formatted(),
                message_id: email.message_id,
            };
            match transport.send(&parcel).await {
                Ok(reply) => println!(
                    "step {}: \"{}\" to {}: {reply}",
                    index + 1,
                    email.subject,
                    person.email
                ),
                Err(err) => {
                    failures += 1;
                    eprintln!(
                        "error: step {}: \"{}\" to {}: {err}",
                        index + 1,
                        email.subject,
                        person.email
                    );
                }
            }
        }
        transport.close().await;
        anyhow::Ok(failures)
    })?;
    Ok(if failures > 0 {
        ExitStatus::DeliveryFailed
    } else {
        ExitStatus::Success
    })
}

fn plan(config_file: &Path, days: u32, now: DateTime<Utc>) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    let drips = engine::load_drips(&project)?;
    let state = state_path(&project);
    let forecast = runtime()?.block_on(async {
        let store = SqliteStore::open(&state).await?;
        let mut inputs = Vec::new();
        for drip in drips {
            let list = engine::read_list(&drip.list_file)?;
            let sequence_state = store.load(&drip.sequence.id).await?;
            inputs.push((drip, list, sequence_state));
        }
        let suppressed = store.suppressions().await?;
        let last_sent = store.last_sent().await?;
        let catch_up = chrono::Duration::from_std(project.config.delivery.catch_up)
            .unwrap_or(chrono::Duration::MAX);
        anyhow::Ok(plan::forecast(
            &plan::Inputs {
                drips: &inputs,
                suppressed: &suppressed,
                last_sent: &last_sent,
                zone: project.config.timezone.0,
                catch_up,
            },
            now,
            days,
        ))
    })?;
    println!("{forecast}");
    Ok(ExitStatus::Success)
}

fn status(config_file: &Path, subscriber: Option<&str>, json: bool) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    let state = state_path(&project);
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
        let store = SqliteStore::open(&state).await?;
        match subscriber {
            Some(email) => {
                let found = status::subscriber(&store, email).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&found)?);
                } else {
                    println!("{found}");
                }
            }
            None => {
                let found = status::status(&store, &sequences).await?;
                if json {
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

fn suppression(config_file: &Path, email: &str, unsubscribe: bool) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    let address: lettre::Address = email
        .parse()
        .map_err(|_| anyhow::anyhow!("`{email}` is not an email address"))?;
    let key = subscribers::key(address.as_ref());
    let state = state_path(&project);
    let changed = runtime()?.block_on(async {
        let store = SqliteStore::open(&state).await?;
        if unsubscribe {
            store
                .suppress(
                    &key,
                    Reason::Unsubscribed,
                    "dripline unsubscribe",
                    Utc::now(),
                )
                .await
        } else {
            store.resubscribe(&key).await
        }
    })?;
    let message = match (unsubscribe, changed) {
        (true, true) => format!("{key} is unsubscribed: no sequence sends to it any more."),
        (true, false) => format!("{key} was already unsubscribed or bounced; nothing changed."),
        (false, true) => {
            format!("{key} is resubscribed: its sequences continue where they stopped.")
        }
        (false, false) => format!("{key} was not unsubscribed or bounced; nothing changed."),
    };
    println!("{message}");
    Ok(ExitStatus::Success)
}

fn preview(
    config_file: &Path,
    only: Option<&str>,
    to: &Path,
    subscriber: Option<&str>,
) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    let links = preview_links(&project)?;
    let mut report = Report::default();
    let ids: Vec<String> = match only {
        Some(id) => vec![id.to_owned()],
        None => check::sequence_dirs(&project, &mut report)
            .iter()
            .filter_map(|dir| {
                dir.file_name()
                    .map(|name| name.to_string_lossy().into_owned())
            })
            .collect(),
    };
    let person = match subscriber {
        Some(email) => find_subscriber(&project, email)?,
        None => crate::render::sample_subscriber(list_columns(&project).iter().map(String::as_str)),
    };
    let now = Utc::now();
    let mut sections = Vec::new();
    for id in &ids {
        let dir = project.sequences_dir().join(id);
        if !dir.is_dir() {
            return Err(InvalidInput::from(Problem::error(
                &dir,
                format!("no sequence `{id}`: create it with `dripline split ARTICLE --name {id}`"),
            ))
            .into());
        }
        let Some(sequence) = Sequence::load(&dir, &project.templates_dir(), &mut report) else {
            continue;
        };
        let renderer = match Renderer::new(
            &sequence,
            &project.templates_dir(),
            &project.config.sender,
            links.clone(),
        ) {
            Ok(renderer) => renderer,
            Err(problems) => {
                report.extend(problems);
                continue;
            }
        };
        let zone = person.timezone.unwrap_or(project.config.timezone);
        sections.push(preview::write_sequence(
            to, &sequence, &renderer, &person, zone, now,
        )?);
        println!(
            "{}: {} emails in {}",
            sequence.id,
            sequence.steps.len(),
            to.join(&sequence.id).display()
        );
    }
    if report.has_errors() {
        return Err(InvalidInput(report).into());
    }
    let index = preview::write_index(to, &person, &sections)?;
    println!("Open {} in a browser.", index.display());
    Ok(ExitStatus::Success)
}

/// Every column named in the header of the project's list files.
fn list_columns(project: &Project) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for drip in &project.config.drip {
        let file = project.resolve(drip.list.get_ref());
        if let Ok(list) = engine::read_list(&file) {
            for subscriber in list.subscribers.iter().take(1) {
                columns.extend(subscriber.fields.keys().cloned());
            }
        }
    }
    columns.sort();
    columns.dedup();
    columns
}

/// A subscriber from the project's lists, by address.
fn find_subscriber(project: &Project, email: &str) -> anyhow::Result<Subscriber> {
    let key = subscribers::key(email);
    for drip in &project.config.drip {
        let list = engine::read_list(&project.resolve(drip.list.get_ref()))?;
        if let Some(found) = list.subscribers.into_iter().find(|s| s.key() == key) {
            return Ok(found);
        }
    }
    Err(anyhow::anyhow!(
        "{email} is not on any list of this project; leave out --subscriber to preview for a sample subscriber"
    ))
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
    if let Some(record) = &findings.dkim_record {
        println!(
            "DKIM: publish this DNS record (split the value into quoted strings of at most 255 characters if your DNS host asks):\n  {record}"
        );
    }
    let emails: usize = findings.sequences.iter().map(|(_, steps)| steps).sum();
    let (errors, warnings) = (
        findings.report.error_count(),
        findings.report.warning_count(),
    );
    println!(
        "Checked {}: {} sequence{} ({emails} email{}), {errors} error{}, {warnings} warning{}.",
        config_file.display(),
        findings.sequences.len(),
        plural(findings.sequences.len()),
        plural(emails),
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
