//! `dripline check` and the config errors users see, pinned word for word.

use crate::support::Project;

const CONFIG: &str = r#"timezone = "America/New_York"

[sender]
from = "Coach <coach@example.com>"

[[drip]]
sequence = "demo"
list = "list.csv"

[unsubscribe]
mailto = "unsubscribe@example.com"
"#;

/// A small valid project: one sequence of two emails and a list.
fn project() -> Project {
    let project = Project::empty();
    project
        .write("dripline.toml", CONFIG)
        .write("list.csv", "email,name\nann@example.com,Ann\n")
        .write(
            "sequences/demo/sequence.toml",
            "name = \"Demo\"\nsend_at = \"0 8 * * *\"\n",
        )
        .write(
            "sequences/demo/01-hello.md",
            "+++\nsubject = \"Day 1: Hello\"\n+++\nHi {{subscriber.first_name}},\n",
        )
        .write(
            "sequences/demo/02-more.md",
            "+++\nsubject = \"Day 2: More\"\nwait_days = 1\n+++\nMore.\n",
        );
    project
}

#[test]
fn a_valid_project_passes() {
    let run = project().dripline(&["check"]);
    assert_eq!(run.stderr, "");
    assert_eq!(
        run.stdout,
        "Checked dripline.toml: 1 sequence (2 emails), 0 errors, 0 warnings.\n"
    );
    assert_eq!(run.code, 0);
}

#[test]
fn the_shipped_example_passes() {
    let run = Project::example().dripline(&["check"]);
    assert_eq!(run.stderr, "");
    assert!(run.stdout.contains("1 sequence"), "{}", run.stdout);
    assert_eq!(run.code, 0);
}

#[test]
fn an_unknown_key_names_its_line_and_the_allowed_keys() {
    let project = project();
    project.write(
        "dripline.toml",
        CONFIG.replace("[sender]\n", "[sender]\ncolour = \"green\"\n"),
    );
    let run = project.dripline(&["check"]);
    assert_eq!(
        run.stderr,
        "error: dripline.toml:4:1: unknown field `colour`, expected one of `from`, `reply_to`, `postal_address`
  |
4 | colour = \"green\"
  | ^^^^^^
"
    );
    assert_eq!(run.code, 3);
}

#[test]
fn a_misspelled_time_zone_gets_a_suggestion() {
    let project = project();
    project.write(
        "dripline.toml",
        CONFIG.replace("America/New_York", "America/NewYork"),
    );
    let run = project.dripline(&["check"]);
    assert_eq!(
        run.stderr,
        "error: dripline.toml:1:12: unknown time zone `America/NewYork`; did you mean `America/New_York`?
  |
1 | timezone = \"America/NewYork\"
  |            ^^^^^^^^^^^^^^^^^
"
    );
    assert_eq!(run.code, 3);
}

#[test]
fn a_bad_cron_expression_says_what_to_write() {
    let project = project();
    project.write(
        "sequences/demo/sequence.toml",
        "name = \"Demo\"\nsend_at = \"0 8 * * 8\"\n",
    );
    let run = project.dripline(&["check"]);
    assert_eq!(
        run.stderr,
        "error: sequences/demo/sequence.toml:2:11: invalid cron expression `0 8 * * 8`: day of week `8` in `8` is out of range (0-7, where 0 and 7 are Sunday, or sun-sat); write 5 fields `minute hour day-of-month month day-of-week`, for example `0 8 * * *` (08:00 every day) or `0 8 * * mon-fri`
  |
2 | send_at = \"0 8 * * 8\"
  |           ^^^^^^^^^^^
"
    );
    assert_eq!(run.code, 3);
}

#[test]
fn a_missing_sequence_folder_says_how_to_make_it() {
    let project = project();
    project.write("dripline.toml", CONFIG.replace("\"demo\"", "\"gut\""));
    let run = project.dripline(&["check"]);
    assert_eq!(
        run.stderr,
        "error: dripline.toml:7:12: sequence `gut` not found: there is no sequences/gut/sequence.toml; create it with `dripline split ARTICLE --name gut`
  |
7 | sequence = \"gut\"
  |            ^^^^^
"
    );
    assert_eq!(run.code, 3);
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let project = project();
    project
        .write("dripline.toml", CONFIG.replace("list.csv", "missing.csv"))
        .write(
            "sequences/demo/sequence.toml",
            "name = \"Demo\"\ntemplate = \"fancy\"\n",
        )
        .write(
            "sequences/demo/03-hello.md",
            "+++\nsubject = \"Again\"\n+++\nBody\n",
        )
        .write(
            "sequences/demo/04-bad.md",
            "+++\nsubject = \"Bad\"\nwait_days = -1\n+++\nBody\n",
        )
        .write("sequences/demo/05-nofront.md", "Just text\n")
        .write("sequences/demo/notes.md", "scratch\n");
    let run = project.dripline(&["check"]);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|line| line.starts_with("error") || line.starts_with("warning"))
        .collect();
    assert_eq!(
        lines,
        [
            "error: dripline.toml:8:8: list file missing.csv not found; create it with a header row such as `email,name`",
            "error: sequences/demo/sequence.toml:2:12: template `fancy` not found: there is no templates/fancy; use \"default\" or create that folder",
            "warning: sequences/demo/notes.md: ignored: step files are named with a number and a slug, like 01-welcome.md",
            "error: sequences/demo/03-hello.md: step id `hello` is also used by sequences/demo/01-hello.md: step ids (the file name without its number) must be unique",
            "error: sequences/demo/04-bad.md:3:13: invalid value: integer `-1`, expected u32",
            "error: sequences/demo/05-nofront.md:1: no front matter: start the file with a `+++` line, then `subject = \"...\"`, then another `+++` line",
        ]
    );
    assert_eq!(
        run.stdout,
        "Checked dripline.toml: 0 sequences (0 emails), 5 errors, 1 warning.\n"
    );
    assert_eq!(run.code, 3);
}

#[test]
fn a_plain_password_in_the_config_is_refused() {
    let project = project();
    project.write(
        "dripline.toml",
        format!("{CONFIG}\n[smtp]\npassword = \"hunter2-secret\"\n"),
    );
    let run = project.dripline(&["check"]);
    assert!(run.stderr.contains("password_env"), "{}", run.stderr);
    assert_eq!(run.code, 3);
}

#[test]
fn config_can_live_elsewhere() {
    let project = project();
    let config = project.path("dripline.toml");
    let elsewhere = Project::empty();
    let run = elsewhere.dripline(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let missing = elsewhere.dripline(&["check"]);
    assert!(
        missing
            .stderr
            .starts_with("error: dripline.toml: cannot read the config"),
        "{}",
        missing.stderr
    );
    assert_eq!(missing.code, 3);
}

/// The distinct lines `check` prints for `project` with a custom template
/// and a first step with `body`. (A layout error currently repeats once
/// per step, so repeats are dropped here.)
fn template_problems(layout: &str, body: &str) -> Vec<String> {
    let project = project();
    project
        .write(
            "dripline.toml",
            CONFIG.replace("[sender]\n", "[sender]\npostal_address = \"1 Road\"\n"),
        )
        .write(
            "sequences/demo/sequence.toml",
            "name = \"Demo\"\nsend_at = \"0 8 * * *\"\ntemplate = \"custom\"\n",
        )
        .write(
            "sequences/demo/01-hello.md",
            format!("+++\nsubject = \"Day 1: Hello\"\n+++\n{body}"),
        )
        .write("templates/custom/email.html.hbs", layout);
    let run = project.dripline(&["check"]);
    run.stderr
        .lines()
        .filter(|line| line.starts_with("error") || line.starts_with("warning"))
        .map(str::to_owned)
        .fold(Vec::new(), |mut lines, line| {
            if !lines.contains(&line) {
                lines.push(line);
            }
            lines
        })
}

const FOOTER: &str = "<p>{{unsubscribe_url}} {{sender.postal_address}}</p>\n</body></html>\n";

#[test]
fn template_mistakes_name_the_file_and_line() {
    let misspelled = format!(
        "<html><body>\n<p>Hello</p>\n<p>{{{{subscriber.frist_name}}}}</p>\n{{{{{{content}}}}}}\n{FOOTER}"
    );
    assert_eq!(
        template_problems(&misspelled, "Hi.\n"),
        [
            "error: templates/custom/email.html.hbs:3: no variable `subscriber.frist_name`; did you mean `{{subscriber.first_name}}`?"
        ]
    );
    let partial = format!("<html><body>\n\n\n{{{{> signature}}}}\n{{{{{{content}}}}}}\n{FOOTER}");
    assert_eq!(
        template_problems(&partial, "Hi.\n"),
        [
            "error: templates/custom/email.html.hbs:4: no partial `signature`: create partials/signature.hbs in the template folder"
        ]
    );
    let unclosed =
        format!("<html><body>\n<p>Hello</p>\n{{{{#if cta}}}}\n{{{{{{content}}}}}}\n{FOOTER}");
    let problems = template_problems(&unclosed, "Hi.\n");
    assert_eq!(problems.len(), 1, "{problems:?}");
    // Pointed at the `{{#if}}` on line 3, not at the end of the file
    // where the parser notices.
    assert_eq!(
        problems[0],
        "error: templates/custom/email.html.hbs:3: `{{#if cta}}` is never closed: add `{{/if}}` where the block ends"
    );
    let fine = format!("<html><body>\n{{{{{{content}}}}}}\n{FOOTER}");
    assert_eq!(
        template_problems(&fine, "Intro.\n\nHi {{subscriber.frist_name}},\n"),
        [
            "error: sequences/demo/01-hello.md:6: no variable `subscriber.frist_name`; did you mean `{{subscriber.first_name}}`?"
        ]
    );
}

#[test]
fn a_custom_template_without_unsubscribe_link_or_address_is_warned_about() {
    assert_eq!(
        template_problems("<html><body>\n{{{content}}}\n</body></html>\n", "Hi.\n"),
        [
            "warning: templates/custom/email.html.hbs: the template never shows `{{unsubscribe_url}}`: bulk email must offer a one-click unsubscribe link; add it, e.g. in the footer",
            "warning: templates/custom/email.html.hbs: the template never shows `{{sender.postal_address}}`: bulk email must show the sender's postal address (CAN-SPAM); add it, e.g. in the footer",
        ]
    );
}

#[test]
fn a_renamed_step_that_state_knows_is_warned_about() {
    let project = project();
    let run = project.dripline(&["run", "--now", "2026-11-25T13:00:00Z"]);
    assert_eq!(run.code, 0, "{run:?}");
    std::fs::rename(
        project.path("sequences/demo/01-hello.md"),
        project.path("sequences/demo/01-greeting.md"),
    )
    .unwrap();
    let run = project.dripline(&["check"]);
    assert_eq!(
        run.stderr,
        "warning: sequences/demo: the state file knows step `hello`, sent to 1 subscriber, but no step file has that id any more; if you renamed it, rename it back (NN-hello.md), or those subscribers get the renamed step as a new email\n"
    );
    assert_eq!(run.code, 0);
}

#[test]
fn a_step_file_name_with_a_space_is_refused_with_a_new_name() {
    let project = project();
    project.write(
        "sequences/demo/03-gut barrier.md",
        "+++\nsubject = \"Day 3\"\n+++\nBody\n",
    );
    let run = project.dripline(&["check"]);
    assert_eq!(
        run.stderr,
        "error: sequences/demo/03-gut barrier.md: the step id `gut barrier` (the file name without its number) may only use letters, digits, hyphens and underscores; rename the file, e.g. 03-gut-barrier.md\n"
    );
    assert_eq!(run.code, 3);
    // A run refuses to start rather than resend that step every day.
    assert_eq!(project.dripline(&["run"]).code, 3);
}

/// Regression: `0 8 30 2 *` passed `check`, and `plan` then said "never
/// (failed; see `dripline status`)" although nothing had failed.
#[test]
fn a_send_at_that_never_fires_is_an_error() {
    let project = project();
    project.write(
        "sequences/demo/sequence.toml",
        "name = \"Demo\"\nsend_at = \"0 8 30 2 *\"\n",
    );
    let run = project.dripline(&["check"]);
    assert!(
        run.stderr.starts_with(
            "error: sequences/demo/sequence.toml:2:11: invalid cron expression `0 8 30 2 *`: it never fires: no date matches its day of month and month"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(run.code, 3);
}

/// Regression: an unclosed `{{#if}}` in one step hid a misspelled variable
/// in another, and a second typo on one line was never reported.
#[test]
fn check_reports_every_template_problem_of_every_step() {
    let project = project();
    project
        .write(
            "sequences/demo/01-hello.md",
            "+++\nsubject = \"Day 1: Hello\"\n+++\nHi,\n\n{{#if subscriber.name}}\nSee you.\n",
        )
        .write(
            "sequences/demo/02-more.md",
            "+++\nsubject = \"Day 2: More\"\nwait_days = 1\n+++\nHi {{subscriber.frist_name}} {{subscriber.nmae}},\n\nFrom {{sender.nmae}}.\n",
        );
    let run = project.dripline(&["check"]);
    assert_eq!(run.code, 3);
    assert_eq!(
        run.stderr,
        "error: sequences/demo/01-hello.md:6: `{{#if subscriber.name}}` is never closed: add `{{/if}}` where the block ends
error: sequences/demo/02-more.md:5: no variable `subscriber.frist_name`; did you mean `{{subscriber.first_name}}`?
error: sequences/demo/02-more.md:5: no variable `subscriber.nmae`; did you mean `{{subscriber.name}}`?
error: sequences/demo/02-more.md:7: no variable `sender.nmae`; did you mean `{{sender.name}}`?
"
    );
    assert!(
        run.stdout.ends_with("4 errors, 0 warnings.\n"),
        "{}",
        run.stdout
    );
}
