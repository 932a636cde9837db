//! `dripline preview`: every step rendered to files, with a timeline.

use std::path::Path;
use std::path::PathBuf;

use chrono::Utc;

use super::{ExitStatus, Usage, recipient};
use crate::config::Project;
use crate::diagnostic::{InvalidInput, Report};
use crate::render::{Renderer, UnsubscribeLinks};
use crate::sequence::Sequence;
use crate::{check, preview, setup};

/// The arguments of `dripline preview`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The sequence id; every sequence when left out.
    sequence: Option<String>,
    /// Where the files go.
    #[arg(long, value_name = "DIR", default_value = "preview")]
    to: PathBuf,
    /// Render for this subscriber from a list instead of a sample one.
    #[arg(long, value_name = "EMAIL")]
    subscriber: Option<String>,
}

/// Runs the command.
pub fn execute(config_file: &Path, args: &Args) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    let to = args.to.as_path();
    let (key, _) = setup::showing_key(&project)?;
    let links = UnsubscribeLinks::new(&project.config.unsubscribe, key);
    let mut report = Report::default();
    let ids: Vec<String> = match &args.sequence {
        Some(id) => vec![id.clone()],
        None => check::sequence_dirs(&project, &mut report)
            .iter()
            .filter_map(|dir| {
                dir.file_name()
                    .map(|name| name.to_string_lossy().into_owned())
            })
            .collect(),
    };
    let person = match &args.subscriber {
        Some(email) => recipient::find(&project, email)?,
        None => recipient::sample(&project),
    };
    let now = Utc::now();
    let mut sections = Vec::new();
    for id in &ids {
        let dir = project.sequences_dir().join(id);
        if !dir.is_dir() {
            return Err(Usage(format!(
                "no sequence `{id}` in {}: create it with `dripline split ARTICLE --name {id}`",
                project.sequences_dir().display()
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
