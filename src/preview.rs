//! `dripline preview`: every step of a sequence rendered to `.html`,
//! `.txt` and `.eml` files, plus an `index.html` timeline that opens each
//! one, so the coach sees exactly what a subscriber will get.
//!
//! The files link to each other by relative paths, so the folder works
//! from a `file://` URL and can be copied anywhere. Each email's content
//! follows the day it would go out, which `index.html` shows; the `.eml`
//! files are dated when they are made.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use crate::render::{Renderer, escape_html as escape};
use crate::schedule::{Cadence, Timing};
use crate::sequence::Sequence;
use crate::subscribers::Subscriber;
use crate::zone::Zone;

/// Words a reader gets through in a minute, for the reading time.
const WORDS_PER_MINUTE: usize = 200;

/// One step's line in the timeline.
struct Entry {
    number: usize,
    date: Option<NaiveDate>,
    subject: String,
    preheader: String,
    minutes: usize,
    file_stem: String,
}

/// Renders every step of `sequence` for `subscriber` into `dir/<id>/`,
/// dated as if they joined at `now` in their time zone (`zone` when
/// neither they nor the sequence name one). Returns the timeline's HTML rows.
pub fn write_sequence(
    dir: &Path,
    sequence: &Sequence,
    renderer: &Renderer,
    subscriber: &Subscriber,
    zone: Zone,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let folder = dir.join(&sequence.id);
    fs::create_dir_all(&folder).with_context(|| format!("cannot create {}", folder.display()))?;
    // The subscriber's own zone wins over the sequence's, as when sending.
    let zone = subscriber
        .timezone
        .or(sequence.settings.timezone)
        .unwrap_or(zone);
    let times = schedule(sequence, zone, now);
    let mut entries = Vec::new();
    for (index, step) in sequence.steps.iter().enumerate() {
        let sent = times.get(index).copied().flatten();
        let next_date = times
            .get(index + 1)
            .copied()
            .flatten()
            .map(|at| at.date_naive());
        let date = sent.map_or_else(|| now.fixed_offset(), |at| at.fixed_offset());
        let mut email = renderer
            .render(index, subscriber, next_date, date, false)
            .map_err(|err| anyhow::anyhow!("{}", err.0))?;
        // The content follows the projected day ("Tomorrow: ..."), but the
        // file is made now: a future Date would make a spam filter fed the
        // .eml see mail from the future (rspamd's DATE_IN_FUTURE).
        // index.html shows the projected day.
        email.message.set_date(now.into());
        let stem = format!("{:02}-{}", index + 1, step.id);
        for (extension, contents) in [
            ("html", email.html.as_bytes().to_vec()),
            ("txt", email.text.as_bytes().to_vec()),
            ("eml", email.message.bytes),
        ] {
            let path = folder.join(format!("{stem}.{extension}"));
            fs::write(&path, contents)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        entries.push(Entry {
            number: index + 1,
            date: sent.map(|at| at.date_naive()),
            subject: email.subject,
            preheader: step.preheader.clone(),
            minutes: step
                .body
                .split_whitespace()
                .count()
                .div_ceil(WORDS_PER_MINUTE)
                .max(1),
            file_stem: stem,
        });
    }
    Ok(timeline(sequence, &entries))
}

/// When each step would go out for someone joining at `now`, with a run
/// at every due moment, and the zone that dates it.
fn schedule(sequence: &Sequence, zone: Zone, now: DateTime<Utc>) -> Vec<Option<DateTime<Tz>>> {
    let timing = Timing {
        send_at: &sequence.settings.send_at,
        zone: zone.0,
        catch_up: Duration::zero(),
        runs: Cadence::default(),
    };
    let mut times = Vec::with_capacity(sequence.steps.len());
    let mut previous: Option<DateTime<Utc>> = None;
    for step in &sequence.steps {
        let due = match previous {
            None => timing.first_due(now, sequence.settings.first_step, step.wait_days),
            Some(sent) => timing.next_due(sent, step.wait_days),
        };
        times.push(due.map(|at| at.with_timezone(&timing.zone)));
        previous = due;
        if due.is_none() {
            break;
        }
    }
    times
}

fn timeline(sequence: &Sequence, entries: &[Entry]) -> String {
    let mut html = format!(
        "<section>\n<h2>{} <small>({}, {} emails)</small></h2>\n<table>\n<thead><tr><th>Day</th><th>Date</th><th>Subject</th><th>Preheader</th><th>Reading</th><th>Files</th></tr></thead>\n<tbody>\n",
        escape(&sequence.settings.name),
        escape(&sequence.id),
        entries.len()
    );
    for entry in entries {
        let base = format!("{}/{}", sequence.id, entry.file_stem);
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td><a href=\"{base}.html\">{}</a></td><td>{}</td><td>{} min</td><td><a href=\"{base}.txt\">text</a> · <a href=\"{base}.eml\">.eml</a></td></tr>",
            entry.number,
            entry.date.map_or_else(
                || "never".to_owned(),
                |date| date.format("%a %b %-d").to_string()
            ),
            escape(&entry.subject),
            escape(&entry.preheader),
            entry.minutes,
        );
    }
    html.push_str("</tbody>\n</table>\n</section>\n");
    html
}

/// Writes `dir/index.html` around the timelines of each sequence.
pub fn write_index(
    dir: &Path,
    subscriber: &Subscriber,
    sections: &[String],
) -> anyhow::Result<PathBuf> {
    let path = dir.join("index.html");
    let html = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dripline preview</title>
<style>
body {{ font: 16px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #1f2933; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .5rem; border-bottom: 1px solid #e4e7eb; vertical-align: top; }}
th {{ font-size: .85rem; text-transform: uppercase; color: #616e7c; }}
small {{ color: #616e7c; font-weight: normal; }}
a {{ color: #2f6f4f; }}
</style>
</head>
<body>
<h1>Preview</h1>
<p>Each email as <strong>{}</strong> would get it, dated for someone who joins today. Open a subject to see the email.</p>
{}
</body>
</html>
"#,
        escape(subscriber.email.as_ref()),
        sections.join("\n")
    );
    fs::write(&path, html).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::Sender;
    use crate::diagnostic::Report;
    use crate::render::UnsubscribeLinks;
    use crate::token::Key;

    /// Regression: day 1 said "Coming next, <date>" instead of "Tomorrow"
    /// whenever the subscriber's local date differed from the UTC date
    /// (every 08:00 send in Tokyo, evenings in New York).
    #[test]
    fn regression_tomorrow_is_the_subscribers_tomorrow_not_utcs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let templates = root.join("templates");
        let mut report = Report::default();
        let sequence = Sequence::load(&root.join("sequences/gut-immune"), &templates, &mut report)
            .unwrap_or_else(|| panic!("{report}"));
        let sender = Sender {
            from: "Coach <coach@example.com>".parse().unwrap(),
            reply_to: None,
            postal_address: None,
        };
        let links = UnsubscribeLinks {
            base_url: None,
            mailto: None,
            key: Key::from_bytes([7; 32]),
        };
        let renderer = Renderer::new(&sequence, &templates, &sender, links).unwrap();
        let out = tempfile::tempdir().unwrap();
        // 08:30 on Thursday in Tokyo, still Wednesday in UTC.
        let now = "2026-11-25T23:30:00Z".parse().unwrap();
        let mut kenji = Subscriber::new("kenji@example.com".parse().unwrap());
        kenji.timezone = Some(Zone(Tz::Asia__Tokyo));
        write_sequence(
            out.path(),
            &sequence,
            &renderer,
            &kenji,
            Zone(Tz::America__New_York),
            now,
        )
        .unwrap();
        let day_one =
            fs::read_to_string(out.path().join("gut-immune/01-gut-immune-connection.txt")).unwrap();
        assert!(day_one.contains("\nTomorrow: Day 2"), "{day_one}");
    }
}
