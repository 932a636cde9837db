//! `dripline split ARTICLE --name ID`: a thin call into [`crate::article`]
//! and [`crate::sequence::create`], printing the plan.

use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use super::ExitStatus;
use crate::article::{self, Format};
use crate::diagnostic::{InvalidInput, Problem, Report};
use crate::sequence::{self, Overwrite, Sequence};

/// The arguments of `dripline split`.
#[derive(Debug, clap::Args)]
pub struct Args {
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
}

fn parse_sequence_id(id: &str) -> Result<String, String> {
    sequence::validate_id(id).map(|()| id.to_owned())
}

fn parse_days(text: &str) -> Result<NonZeroUsize, String> {
    text.parse::<NonZeroUsize>()
        .map_err(|_| format!("`{text}` is not a number of days: give a whole number, 1 or more"))
}

/// Runs the command.
pub fn execute(args: &Args) -> anyhow::Result<ExitStatus> {
    let article_path = args.article.as_path();
    let invalid = |message: String| InvalidInput::from(Problem::error(article_path, message));
    let bytes =
        fs::read(article_path).map_err(|err| invalid(format!("cannot read the article: {err}")))?;
    let text = article::decode(&bytes).map_err(|err| invalid(err.to_string()))?;
    let format = Format::from_path(article_path);
    let course =
        article::split(&text, format, args.days).map_err(|err| invalid(err.to_string()))?;
    let source_name = match format {
        Format::Markdown => "source.md",
        Format::PlainText => "source.txt",
    };
    let overwrite = if args.force {
        Overwrite::Replace
    } else {
        Overwrite::Refuse
    };
    let dir = sequence::create(
        Path::new(sequence::SEQUENCES_DIR),
        &args.name,
        &course,
        source_name,
        &bytes,
        overwrite,
    )?;

    print_plan(article_path, &dir, &course);
    Ok(ExitStatus::Success)
}

/// What `split` made: a table of days, the warnings, and the links that
/// will not work, at their line in the step files just written.
fn print_plan(article_path: &Path, dir: &Path, course: &article::Course) {
    println!(
        "Split {} into {} emails in {}/:",
        article_path.display(),
        course.days.len(),
        dir.display()
    );
    println!("  day  words  subject");
    for (number, day) in course.days.iter().enumerate() {
        println!("  {:>3}  {:>5}  {}", number + 1, day.words, day.subject);
    }
    if let Some(cta) = &course.cta {
        println!("Call to action: {} -> {}", cta.text, cta.url);
    }
    for warning in &course.warnings {
        eprintln!("warning: {warning}");
    }
    let mut report = Report::default();
    if let Some(sequence) = Sequence::load(dir, Path::new("templates"), &mut report) {
        for step in &sequence.steps {
            for problem in step.link_problems() {
                report.push(problem);
            }
        }
    }
    for problem in report.problems() {
        eprintln!("{problem}");
    }
    println!(
        "Next: edit the subjects, preheaders and text in {}/, then run `dripline check`.",
        dir.display()
    );
}
