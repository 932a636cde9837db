//! `dripline check`: every problem in a project's files, found in one pass.
//!
//! It reads the config, every sequence folder and what they refer to, and
//! returns the problems with what it looked at. It sends nothing and
//! writes nothing.

use std::fs;
use std::path::Path;

use crate::config::Project;
use crate::diagnostic::{Problem, Report};
use crate::sequence::Sequence;

/// What a check looked at and what it found.
#[derive(Debug, Default)]
pub struct Findings {
    pub report: Report,
    /// Sequences that loaded, by id, with their number of emails.
    pub sequences: Vec<(String, usize)>,
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
    for dir in sequence_dirs(&project, &mut findings.report) {
        if let Some(sequence) = Sequence::load(&dir, &project.templates_dir(), &mut findings.report)
        {
            findings
                .sequences
                .push((sequence.id.clone(), sequence.steps.len()));
        }
    }
    findings
}

/// Every sequence folder of the project, in name order.
fn sequence_dirs(project: &Project, report: &mut Report) -> Vec<std::path::PathBuf> {
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
