//! Sequence folders: `sequences/<id>/sequence.toml` plus one Markdown file
//! per email, read into a [`Sequence`] and written from a split article.
//!
//! Loading reports every problem in the folder at once, each with its file
//! and line, and returns what could be read. Writing never overwrites a
//! sequence unless asked to, and never leaves a half-written folder: the
//! files go to a temporary folder that is renamed into place at the end.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::article::Course;
use crate::crontab::CronSchedule;
use crate::diagnostic::{InvalidInput, Problem, Report};
use crate::zone::Zone;

/// The folder under a project that holds every sequence.
pub const SEQUENCES_DIR: &str = "sequences";
/// The settings file inside a sequence folder.
pub const SETTINGS_FILE: &str = "sequence.toml";

/// The longest wait between two emails we accept, to catch typos.
const MAX_WAIT_DAYS: u32 = 366;

/// A sequence, read from its folder.
#[derive(Debug)]
pub struct Sequence {
    /// The folder name, used in state, Message-IDs and links.
    pub id: String,
    pub dir: PathBuf,
    pub settings: Settings,
    /// The emails in order; never empty.
    pub steps: Vec<Step>,
}

/// `sequence.toml`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The course's name, shown to subscribers.
    pub name: String,
    /// The slots in which emails may go out, in the subscriber's local time.
    #[serde(default = "default_send_at")]
    pub send_at: CronSchedule,
    /// Overrides the config's default time zone for this sequence.
    pub timezone: Option<Zone>,
    /// A folder under `templates/`, or `default` (built in).
    #[serde(default = "default_template")]
    pub template: Spanned<String>,
    /// When step 1 goes out.
    #[serde(default)]
    pub first_step: FirstStep,
    /// Tag http(s) links with utm_* parameters.
    #[serde(default)]
    pub utm: bool,
    /// The call to action the template shows.
    pub cta: Option<CallToAction>,
}

fn default_send_at() -> CronSchedule {
    "0 8 * * *"
        .parse()
        .unwrap_or_else(|err| unreachable!("the default send_at parses: {err}"))
}

/// The name of the template compiled into the binary.
pub const DEFAULT_TEMPLATE: &str = "default";

fn default_template() -> Spanned<String> {
    Spanned::new(0..0, DEFAULT_TEMPLATE.to_owned())
}

/// When the first email goes out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirstStep {
    /// As soon as the subscriber is enrolled (when `wait_days = 0`).
    #[default]
    Immediately,
    /// In the first `send_at` slot.
    NextSlot,
}

/// `[cta]` in sequence.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallToAction {
    /// The button's label.
    pub text: String,
    /// Where the button leads.
    pub url: String,
}

/// One email of a sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The file name without number prefix and extension; state is keyed by it.
    pub id: String,
    /// The file it was read from.
    pub file: PathBuf,
    pub subject: String,
    pub preheader: String,
    /// Calendar days after the previous email (after enrollment for the first).
    pub wait_days: u32,
    /// The Markdown body, a Handlebars template itself.
    pub body: String,
    /// The line of the file where the body starts, to point errors at it.
    pub body_line: usize,
}

impl Step {
    /// A warning for each link or image in the body that cannot work in an
    /// email (relative URLs, `#anchors`, site shortcodes, reference links
    /// without a definition), at its line of the step file.
    pub fn link_problems(&self) -> Vec<Problem> {
        crate::article::unusable_links(&self.body)
            .into_iter()
            .map(|problem| {
                Problem::warning(&self.file, problem.message)
                    .at_line(self.body_line + problem.line - 1)
            })
            .collect()
    }
}

/// The front matter of a step file, between `+++` lines.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    /// The subject line.
    subject: String,
    /// The preview text shown after the subject in most inboxes.
    #[serde(default)]
    preheader: String,
    /// Calendar days after the previous email.
    wait_days: Option<u32>,
}

/// Checks that `id` can name a sequence folder and appear in headers and links.
pub fn validate_id(id: &str) -> Result<(), String> {
    let valid = id
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id.len() <= 64;
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{id}` is not a valid sequence name: use lowercase letters, digits and hyphens (at most 64), starting with a letter or digit, like `gut-immune`"
        ))
    }
}

/// The step id of a step file name (`01-gut-barrier.md` -> `gut-barrier`),
/// or `None` when the name is not `NN-slug.md`.
fn step_id(file_name: &str) -> Option<(u32, &str)> {
    let stem = file_name.strip_suffix(".md")?;
    let (number, id) = stem.split_once('-')?;
    let number = number.parse().ok()?;
    (!id.is_empty()).then_some((number, id))
}

impl Sequence {
    /// Reads the sequence in `dir`, whose templates live in
    /// `templates_dir`, pushing every problem found into `report`.
    /// Returns `None` when the folder cannot make a sequence.
    pub fn load(dir: &Path, templates_dir: &Path, report: &mut Report) -> Option<Sequence> {
        let id = dir.file_name()?.to_string_lossy().into_owned();
        if let Err(reason) = validate_id(&id) {
            report.push(Problem::error(dir, reason));
        }
        let settings = load_settings(&dir.join(SETTINGS_FILE), templates_dir, report);
        let steps = load_steps(dir, report);
        if steps.is_empty() {
            report.push(Problem::error(
                dir,
                "the sequence has no emails: add step files named like 01-welcome.md",
            ));
        }
        let settings = settings?;
        (!steps.is_empty()).then(|| Sequence {
            id,
            dir: dir.to_path_buf(),
            settings,
            steps,
        })
    }
}

fn load_settings(file: &Path, templates_dir: &Path, report: &mut Report) -> Option<Settings> {
    let source = match fs::read_to_string(file) {
        Ok(source) => source,
        Err(err) => {
            report.push(Problem::error(file, format!("cannot read: {err}")));
            return None;
        }
    };
    let settings = match toml::from_str::<Settings>(&source) {
        Ok(settings) => settings,
        Err(err) => {
            report.push(Problem::from_toml(file, &source, &err));
            return None;
        }
    };
    let template = settings.template.get_ref();
    if template != DEFAULT_TEMPLATE && !templates_dir.join(template).is_dir() {
        report.push(
            Problem::error(
                file,
                format!(
                    "template `{template}` not found: there is no {}; use \"{DEFAULT_TEMPLATE}\" or create that folder",
                    templates_dir.join(template).display()
                ),
            )
            .at_span(&source, settings.template.span()),
        );
        return None;
    }
    Some(settings)
}

fn load_steps(dir: &Path, report: &mut Report) -> Vec<Step> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            report.push(Problem::error(
                dir,
                format!("cannot read the folder: {err}"),
            ));
            return Vec::new();
        }
    };
    let mut numbered = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".md") || name == "source.md" {
            continue;
        }
        match step_id(&name) {
            Some((number, _)) => numbered.push((number, name)),
            None => report.push(Problem::warning(
                dir.join(&name),
                "ignored: step files are named with a number and a slug, like 01-welcome.md",
            )),
        }
    }
    numbered.sort();

    let mut steps: Vec<Step> = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for (number, name) in numbered {
        let file = dir.join(&name);
        if let Some(previous) = steps.last()
            && step_id(file_name(&previous.file)).map(|(n, _)| n) == Some(number)
        {
            report.push(Problem::warning(
                &file,
                format!(
                    "shares the number {number:02} with {}; renumber one so the order is clear",
                    previous.file.display()
                ),
            ));
        }
        let Some(step) = load_step(&file, steps.is_empty(), report) else {
            continue;
        };
        if let Some(other) = seen.get(&step.id) {
            report.push(Problem::error(
                &file,
                format!(
                    "step id `{}` is also used by {}: step ids (the file name without its number) must be unique",
                    step.id,
                    other.display()
                ),
            ));
            continue;
        }
        seen.insert(step.id.clone(), file);
        steps.push(step);
    }
    steps
}

fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|name| name.to_str())
        .unwrap_or_default()
}

fn load_step(file: &Path, is_first: bool, report: &mut Report) -> Option<Step> {
    let (number, id) = step_id(file_name(file))?;
    // The id keys send state and goes into Message-IDs and links.
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        report.push(Problem::error(
            file,
            format!(
                "the step id `{id}` (the file name without its number) may only use letters, digits, hyphens and underscores; rename the file, e.g. {number:02}-{}.md",
                slug(id)
            ),
        ));
        return None;
    }
    let id = id.to_owned();
    let text = match fs::read(file) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text.replace("\r\n", "\n"),
            Err(_) => {
                report.push(Problem::error(
                    file,
                    "not UTF-8 text: save the file as UTF-8",
                ));
                return None;
            }
        },
        Err(err) => {
            report.push(Problem::error(file, format!("cannot read: {err}")));
            return None;
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let Some((front, body_start)) = front_matter(text) else {
        report.push(Problem::error(file, "no front matter: start the file with a `+++` line, then `subject = \"...\"`, then another `+++` line").at_line(1));
        return None;
    };
    let matter: FrontMatter = match toml::from_str(&text[front.clone()]) {
        Ok(matter) => matter,
        Err(err) => {
            let problem = Problem::error(file, err.message().trim_end());
            let problem = match err.span() {
                Some(span) => {
                    problem.at_span(text, front.start + span.start..front.start + span.end)
                }
                None => problem.at_line(2),
            };
            report.push(problem);
            return None;
        }
    };
    let body_line = text[..body_start].matches('\n').count() + 1;
    let body = text[body_start..].trim().to_owned();
    let mut ok = true;
    if matter.subject.trim().is_empty() {
        report.push(Problem::error(file, "the subject is empty").at_line(2));
        ok = false;
    }
    if body.is_empty() {
        report.push(
            Problem::error(file, "the email has no body below the front matter").at_line(body_line),
        );
        ok = false;
    }
    let wait_days = matter.wait_days.unwrap_or(if is_first { 0 } else { 1 });
    if wait_days > MAX_WAIT_DAYS {
        report.push(Problem::error(
            file,
            format!("wait_days = {wait_days} is more than a year; write the number of calendar days after the previous email"),
        ));
        ok = false;
    }
    ok.then(|| Step {
        id,
        file: file.to_path_buf(),
        subject: matter.subject,
        preheader: matter.preheader,
        wait_days,
        body,
        body_line,
    })
}

/// `id` with every run of other characters made one hyphen.
fn slug(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join("-")
        .to_lowercase()
}

/// Finds `+++` front matter: the byte range of the TOML between the
/// fences and the offset where the body starts.
fn front_matter(text: &str) -> Option<(std::ops::Range<usize>, usize)> {
    let rest = text.strip_prefix("+++\n")?;
    let start = 4;
    let mut offset = start;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "+++" {
            return Some((start..offset, offset + line.len()));
        }
        offset += line.len();
    }
    None
}

/// What `create` does when the sequence folder exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overwrite {
    Refuse,
    Replace,
}

/// Writes `course` as a new sequence folder `sequences_dir/id`, keeping the
/// article as `source_name` beside the steps. All or nothing.
pub fn create(
    sequences_dir: &Path,
    id: &str,
    course: &Course,
    source_name: &str,
    source: &[u8],
    overwrite: Overwrite,
) -> anyhow::Result<PathBuf> {
    use anyhow::Context as _;

    let target = sequences_dir.join(id);
    if target.exists() && overwrite == Overwrite::Refuse {
        return Err(InvalidInput::from(Problem::error(
            &target,
            "already exists, so nothing was written and your edits there are kept; pick another --name, or pass --force to replace it",
        ))
        .into());
    }
    fs::create_dir_all(sequences_dir)
        .with_context(|| format!("cannot create {}", sequences_dir.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{id}.split-"))
        .tempdir_in(sequences_dir)
        .with_context(|| format!("cannot write in {}", sequences_dir.display()))?;
    write_files(staging.path(), course, source_name, source).with_context(|| {
        format!(
            "cannot write the sequence into {}",
            staging.path().display()
        )
    })?;

    if target.exists() {
        let old = tempfile::Builder::new()
            .prefix(&format!(".{id}.replaced-"))
            .tempdir_in(sequences_dir)?;
        let parked = old.path().join(id);
        fs::rename(&target, &parked)
            .with_context(|| format!("cannot move the old {} aside", target.display()))?;
        if let Err(err) = fs::rename(staging.path(), &target) {
            // Put the old sequence back so a failed replace loses nothing.
            let restored = fs::rename(&parked, &target);
            return Err(anyhow::Error::from(err)
                .context(format!(
                    "cannot move the new sequence to {}",
                    target.display()
                ))
                .context(match restored {
                    Ok(()) => "the old sequence is unchanged".to_owned(),
                    Err(_) => format!("the old sequence is kept at {}", parked.display()),
                }));
        }
    } else {
        fs::rename(staging.path(), &target)
            .with_context(|| format!("cannot move the new sequence to {}", target.display()))?;
    }
    Ok(target)
}

fn write_files(dir: &Path, course: &Course, source_name: &str, source: &[u8]) -> io::Result<()> {
    fs::write(dir.join(SETTINGS_FILE), settings_toml(course))?;
    let width = course.days.len().to_string().len().max(2);
    for (index, day) in course.days.iter().enumerate() {
        let name = format!("{:0width$}-{}.md", index + 1, day.slug);
        let wait_days = if index == 0 { 0 } else { 1 };
        let text = format!(
            "+++\nsubject = {}\npreheader = {}\nwait_days = {wait_days}\n+++\n{}",
            toml_string(&day.subject),
            toml_string(&day.preheader),
            day.body
        );
        fs::write(dir.join(name), text)?;
    }
    fs::write(dir.join(source_name), source)
}

fn settings_toml(course: &Course) -> String {
    let name = course
        .title
        .clone()
        .or_else(|| course.days.first().map(|day| day.subject.clone()))
        .unwrap_or_default();
    let mut text = format!(
        "name = {}\n\
         send_at = \"0 8 * * *\"        # cron: when emails may go out, in the subscriber's local time\n\
         # timezone = \"America/New_York\" # overrides the config's default\n\
         template = \"default\"\n\
         first_step = \"immediately\"   # or \"next-slot\"\n\
         utm = true                   # tag links with utm_source=dripline&utm_medium=email\n",
        toml_string(&name)
    );
    if let Some(cta) = &course.cta {
        text.push_str(&format!(
            "\n[cta]\ntext = {}\nurl = {}\n",
            toml_string(&cta.text),
            toml_string(&cta.url)
        ));
    }
    text
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_ids_drop_the_number_and_extension() {
        assert_eq!(step_id("01-gut-barrier.md"), Some((1, "gut-barrier")));
        assert_eq!(
            step_id("10-moving-forward.md"),
            Some((10, "moving-forward"))
        );
        assert_eq!(step_id("gut-barrier.md"), None);
        assert_eq!(step_id("01-.md"), None);
        assert_eq!(step_id("01-notes.txt"), None);
    }

    #[test]
    fn sequence_ids_are_safe_folder_names() {
        assert!(validate_id("gut-immune").is_ok());
        assert!(validate_id("course2").is_ok());
        for bad in ["", "..", "a/b", "My Course", "-x", ".hidden", "Gut"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn front_matter_is_found_between_fences() {
        let text = "+++\nsubject = \"Hi\"\n+++\nBody\n";
        let (front, body) = front_matter(text).unwrap();
        assert_eq!(&text[front], "subject = \"Hi\"\n");
        assert_eq!(&text[body..], "Body\n");
        assert_eq!(front_matter("subject = 1\n"), None);
        assert_eq!(front_matter("+++\nsubject = 1\n"), None);
    }
}
