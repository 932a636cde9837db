//! `dripline check`: every problem in a project's files, found in one pass.
//!
//! It reads the config, every sequence folder and what they refer to, and
//! returns the problems with what it looked at. It sends nothing and
//! writes nothing.

use std::fs;
use std::path::Path;

use std::collections::HashMap;

use crate::config::Project;
use crate::delivery::dkim::Signer;
use crate::diagnostic::{Problem, Report};
use crate::preflight;
use crate::render::{self, UnsubscribeLinks};
use crate::sequence::Sequence;
use crate::setup;
use crate::store::{self, Access, StateSettings, Store as _};
use crate::subscribers;

/// What a check looked at and what it found.
#[derive(Debug, Default)]
pub struct Findings {
    pub report: Report,
    /// Sequences that loaded, by id, with their number of emails.
    pub sequences: Vec<(String, usize)>,
    /// With `[dkim]` and a valid key: the DNS record to publish, as
    /// `name TXT "value"`.
    pub dkim_record: Option<String>,
}

/// Checks the project whose config is `config_file`.
pub fn check(config_file: &Path) -> Findings {
    let mut findings = Findings::default();
    let project = match Project::open(config_file) {
        Ok(project) => project,
        Err(problem) => {
            findings.report.push(problem);
            return findings;
        }
    };
    findings.report.extend(project.validate());
    findings
        .report
        .extend(preflight::check(&project.config, &project.config_file));
    if let Some(dkim) = &project.config.dkim {
        match Signer::load(dkim, &project.resolve(&dkim.private_key_file)) {
            Ok(signer) => {
                let (name, value) = signer.dns_record();
                findings.dkim_record = Some(format!("{name} TXT \"{value}\""));
            }
            Err(invalid) => findings.report.extend(invalid.0),
        }
    }
    let columns = check_lists(&project, &mut findings.report);
    let key = match setup::showing_key(&project) {
        Ok((key, problem)) => {
            if let Some(problem) = problem {
                findings.report.push(problem);
            }
            key
        }
        Err(err) => {
            findings.report.push(Problem::error(
                project.resolve(&project.config.unsubscribe.secret_file),
                format!("cannot make a stand-in key: {err}"),
            ));
            return findings;
        }
    };
    let links = UnsubscribeLinks::new(&project.config.unsubscribe, key);
    let mut step_ids: HashMap<String, Vec<String>> = HashMap::new();
    for dir in sequence_dirs(&project, &mut findings.report) {
        let Some(sequence) = Sequence::load(&dir, &project.templates_dir(), &mut findings.report)
        else {
            continue;
        };
        let sample = render::sample_subscriber(
            columns
                .get(&sequence.id)
                .into_iter()
                .flatten()
                .map(String::as_str),
        );
        findings.report.extend(render::check(
            &sequence,
            &project.templates_dir(),
            &project.config.sender,
            links.clone(),
            &sample,
        ));
        for step in &sequence.steps {
            for problem in step.link_problems() {
                findings.report.push(problem);
            }
        }
        findings
            .sequences
            .push((sequence.id.clone(), sequence.steps.len()));
        step_ids.insert(
            sequence.id.clone(),
            sequence.steps.iter().map(|step| step.id.clone()).collect(),
        );
    }
    check_state(&project, &step_ids, &mut findings.report);
    findings
}

/// Warns about steps the state file has sent that no sequence has any
/// more: a renamed step file makes a new step, which subscribers who got
/// the old one will get again.
fn check_state(project: &Project, step_ids: &HashMap<String, Vec<String>>, report: &mut Report) {
    let state = match StateSettings::of(project) {
        Ok(state) => state,
        Err(err) => {
            report.push(Problem::error(&project.config_file, format!("{err:#}")));
            return;
        }
    };
    if state.is_new() {
        return;
    }
    let counts = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                let store = store::open(&state, Access::Read).await?;
                let counts = store.step_counts().await;
                store.close().await;
                counts
            })
        });
    let counts = match counts {
        Ok(counts) => counts,
        Err(err) => {
            report.push(Problem::warning(
                state.describe(),
                format!("cannot read the state: {err:#}"),
            ));
            return;
        }
    };
    for count in counts {
        let Some(ids) = step_ids.get(&count.sequence) else {
            continue;
        };
        if count.sent > 0 && !ids.contains(&count.step) {
            report.push(Problem::warning(
                project.sequences_dir().join(&count.sequence),
                format!(
                    "the state file knows step `{}`, sent to {} subscriber{}, but no step file has that id any more; if you renamed it, rename it back (NN-{}.md), or those subscribers get the renamed step as a new email",
                    count.step,
                    count.sent,
                    if count.sent == 1 { "" } else { "s" },
                    count.step
                ),
            ));
        }
    }
}

/// Reads every list file, reporting its bad rows; returns the custom
/// columns each sequence's subscribers have, for the sample subscriber.
fn check_lists(project: &Project, report: &mut Report) -> HashMap<String, Vec<String>> {
    let mut columns: HashMap<String, Vec<String>> = HashMap::new();
    for drip in &project.config.drip {
        let file = project.resolve(drip.list.get_ref());
        let Ok(reader) = fs::File::open(&file) else {
            continue; // `validate` already said the file is missing.
        };
        let list = subscribers::parse(std::io::BufReader::new(reader), &file, &drip.columns);
        if let Some(first) = list.subscribers.first() {
            columns
                .entry(drip.sequence.get_ref().clone())
                .or_default()
                .extend(first.fields.keys().cloned());
        }
        report.extend(list.report);
    }
    columns
}

/// Every sequence folder of the project, in name order.
pub fn sequence_dirs(project: &Project, report: &mut Report) -> Vec<std::path::PathBuf> {
    let root = project.sequences_dir();
    let entries = match fs::read_dir(&root) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(err) => {
            report.push(Problem::error(
                &root,
                format!("cannot read the folder: {err}"),
            ));
            return Vec::new();
        }
    };
    let mut dirs: Vec<_> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| !name.to_string_lossy().starts_with('.'))
        })
        .collect();
    dirs.sort();
    dirs
}
