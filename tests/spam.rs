//! What a spam filter sees: every email `dripline preview` makes of the
//! example sequence, scored by SpamAssassin's local rules (`-L`: no DNS
//! blocklists, no network; the Debian package `spamassassin`, which
//! .ci/run installs). The default template once scored 0.7 for
//! HTML_FONT_LOW_CONTRAST (a preheader coloured like its background).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::Project;

/// The most an email may score; SpamAssassin marks spam from 5.0.
const MAX_SCORE: f64 = 0.5;

fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// The `.eml` files below `dir`, sorted.
fn emls(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("the preview folder")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    files.sort();
    files
}

/// The messages as one mbox (mboxrd quoting), for one SpamAssassin run.
fn mbox(files: &[PathBuf]) -> Vec<u8> {
    let mut mbox = Vec::new();
    for file in files {
        let text = String::from_utf8(fs::read(file).expect("read .eml")).expect("UTF-8 .eml");
        mbox.extend_from_slice(b"From dripline-preview Thu Jan  1 00:00:00 1970\n");
        for line in text.split("\r\n") {
            if line.trim_start_matches('>').starts_with("From ") {
                mbox.push(b'>');
            }
            mbox.extend_from_slice(line.as_bytes());
            mbox.push(b'\n');
        }
        mbox.push(b'\n');
    }
    mbox
}

/// (score, rules) of every `X-Spam-Status` header in SpamAssassin's output.
fn statuses(output: &str) -> Vec<(f64, String)> {
    // The header is folded: join its continuation lines first.
    let unfolded = output.replace("\n\t", " ").replace("\n ", " ");
    unfolded
        .lines()
        .filter_map(|line| line.strip_prefix("X-Spam-Status: "))
        .map(|status| {
            let field = |name: &str| {
                status
                    .split_whitespace()
                    .find_map(|word| word.strip_prefix(name))
                    .unwrap_or_default()
                    .to_owned()
            };
            let score = field("score=")
                .parse()
                .unwrap_or_else(|_| panic!("no score in `{status}`"));
            (score, field("tests="))
        })
        .collect()
}

#[test]
fn every_preview_email_of_the_example_scores_at_most_half_a_point_with_spamassassin() {
    let Some(spamassassin) = find_program("spamassassin") else {
        panic!(
            "SpamAssassin is not installed, so the emails cannot be scored: apt-get install -y spamassassin (.ci/run does)"
        );
    };
    let project = Project::example();
    let run = project.dripline(&["preview", "--to", "out"]);
    assert_eq!(run.code, 0, "{run:?}");
    let files = emls(&project.path("out/gut-immune"));
    assert_eq!(files.len(), 7, "{files:?}");

    // A private home and no Bayes: the test learns nothing and writes
    // nothing outside the project.
    project.write("home/user_prefs", "");
    let mut child = Command::new(spamassassin)
        .args([
            "-L",
            "-t",
            "--mbox",
            "--cf=use_bayes 0",
            "--cf=bayes_auto_learn 0",
        ])
        .arg("-p")
        .arg(project.path("home/user_prefs"))
        .env("HOME", project.path("home"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run spamassassin");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&mbox(&files))
        .expect("feed spamassassin");
    let output = child.wait_with_output().expect("spamassassin output");
    assert!(output.status.success(), "{output:?}");
    let report = String::from_utf8_lossy(&output.stdout);

    let statuses = statuses(&report);
    assert_eq!(statuses.len(), files.len(), "{report}");
    for ((score, rules), file) in statuses.iter().zip(&files) {
        // It read the HTML part, so the HTML rules had their say.
        assert!(
            rules.contains("HTML_MESSAGE"),
            "{}: {rules}",
            file.display()
        );
        assert!(
            *score <= MAX_SCORE,
            "{} scores {score} ({rules}):\n{report}",
            file.display()
        );
    }
}
