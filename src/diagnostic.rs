//! Problems found in the user's files, with the file, line and column they
//! are about, collected so that one run reports all of them at once.
//!
//! This module only describes and formats problems; deciding what is a
//! problem belongs to the modules that read each kind of file.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// How bad a problem is: errors stop the command, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One thing wrong (or suspicious) in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based line, when the problem has one.
    pub line: Option<usize>,
    /// 1-based column, with `line`.
    pub column: Option<usize>,
    pub message: String,
    /// The offending source line with a caret under the problem.
    snippet: Option<String>,
}

impl Problem {
    /// An error about a whole file.
    pub fn error(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            file: file.into(),
            line: None,
            column: None,
            message: message.into(),
            snippet: None,
        }
    }

    /// A warning about a whole file.
    pub fn warning(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(file, message)
        }
    }

    /// The same problem as a warning: for a command that goes ahead
    /// anyway (`send-test` with preflight errors).
    pub fn as_warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Points the problem at a line.
    pub fn at_line(mut self, line: usize) -> Self {
        self.line = Some(line);
        self
    }

    /// Points the problem at a byte range of `source`, the file's text,
    /// showing that line with a caret under the range.
    pub fn at_span(mut self, source: &str, span: Range<usize>) -> Self {
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let line_start = source[..start].rfind('\n').map_or(0, |at| at + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |at| start + at);
        let line_text = source[line_start..line_end].trim_end_matches('\r');
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        let width = source[start..span.end.clamp(start, line_end)]
            .chars()
            .count()
            .max(1);
        let gutter = " ".repeat(line.to_string().len());
        self.snippet = Some(format!(
            "{gutter} |\n{line} | {line_text}\n{gutter} | {}{}",
            " ".repeat(column - 1),
            "^".repeat(width)
        ));
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    /// A TOML syntax or type error in `file`, whose text is `source`.
    pub fn from_toml(file: &Path, source: &str, error: &toml::de::Error) -> Self {
        let problem = Problem::error(file, error.message().trim_end());
        match error.span() {
            Some(span) => problem.at_span(source, span),
            None => problem,
        }
    }
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}: {}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)?;
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{snippet}")?;
        }
        Ok(())
    }
}

/// Every problem found in one pass over the user's files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    problems: Vec<Problem>,
}

impl Report {
    /// Adds a problem, unless the very same one is already there (a layout
    /// error shows up once, not once per step that uses the layout).
    pub fn push(&mut self, problem: Problem) {
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    pub fn extend(&mut self, other: Report) {
        for problem in other.problems {
            self.push(problem);
        }
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    pub fn error_count(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warning_count(&self) -> usize {
        self.count(Severity::Warning)
    }

    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    fn count(&self, severity: Severity) -> usize {
        self.problems
            .iter()
            .filter(|problem| problem.severity == severity)
            .count()
    }
}

impl From<Problem> for Report {
    fn from(problem: Problem) -> Self {
        Report {
            problems: vec![problem],
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.problems.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// The user's files are wrong: the command stops and says everything that
/// is wrong with them at once.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub Report);

impl From<Problem> for InvalidInput {
    fn from(problem: Problem) -> Self {
        InvalidInput(problem.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_points_at_line_and_column_with_a_caret() {
        let source = "a = 1\nbad = \"x\"\n";
        let problem = Problem::error("f.toml", "no").at_span(source, 6..9);
        assert_eq!(
            problem.to_string(),
            "error: f.toml:2:1: no\n  |\n2 | bad = \"x\"\n  | ^^^"
        );
    }

    #[test]
    fn the_same_problem_is_reported_once() {
        let mut report = Report::default();
        report.push(Problem::error("a.hbs", "bad").at_line(3));
        report.extend(Report::from(Problem::error("a.hbs", "bad").at_line(3)));
        report.push(Problem::error("a.hbs", "bad").at_line(4));
        assert_eq!(report.problems().len(), 2);
    }

    #[test]
    fn span_counts_columns_in_characters() {
        let source = "name = \"Gut–Immune\" x";
        let at = source.find('x').unwrap();
        let problem = Problem::warning("s.toml", "here").at_span(source, at..at + 1);
        assert_eq!(problem.column, Some(21));
    }
}
