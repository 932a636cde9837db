//! `dripline check`: prints what [`crate::check::check`] found.

use std::path::Path;

use super::{ExitStatus, plural};

/// Runs the command.
pub fn execute(config_file: &Path) -> ExitStatus {
    let findings = crate::check::check(config_file);
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
