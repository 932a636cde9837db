//! `dripline split`: articles in, sequence folders out, nothing written on failure.

use crate::support::{Project, fixture};

const ARTICLE: &str = "Five Habits for Better Sleep\n\n\
Sleep is the foundation everything else stands on. This short course walks through five habits.\n\n\
Keep a Rhythm\n\n\
Going to bed and waking at the same time every day anchors your body clock. Weekends count too.\n\n\
Mind the Light\n\n\
Bright light in the morning and dim light in the evening tell your body what time it is.\n\n\
Thank you for reading! Book a call: https://example.com/coaching\n";

fn split(project: &Project, args: &[&str]) -> crate::support::Run {
    let mut all = vec!["split"];
    all.extend_from_slice(args);
    project.dripline(&all)
}

#[test]
fn splits_an_article_into_an_editable_sequence() {
    let project = Project::empty();
    project.write("sleep.txt", ARTICLE);
    let run = split(&project, &["sleep.txt", "--name", "sleep", "--days", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .starts_with("Split sleep.txt into 2 emails in sequences/sleep/:"),
        "{}",
        run.stdout
    );
    let files: Vec<String> = project
        .files()
        .into_iter()
        .filter(|file| file.starts_with("sequences/"))
        .collect();
    assert_eq!(files.len(), 4, "{files:?}");
    assert!(files.contains(&"sequences/sleep/sequence.toml".to_owned()));
    assert!(files.contains(&"sequences/sleep/source.txt".to_owned()));
    assert_eq!(project.read("sequences/sleep/source.txt"), ARTICLE);
    let first = files.iter().find(|file| file.contains("/01-")).unwrap();
    let step = project.read(first);
    assert!(step.starts_with("+++\nsubject = \"Day 1: "), "{step}");
    assert!(step.contains("\nwait_days = 0\n"), "{step}");
    let settings = project.read("sequences/sleep/sequence.toml");
    assert!(settings.contains("[cta]\n"), "{settings}");
    assert!(
        settings.contains("url = \"https://example.com/coaching\""),
        "{settings}"
    );
}

#[test]
fn a_split_sequence_passes_check() {
    let project = Project::empty();
    project
        .write("sleep.txt", ARTICLE)
        .write("list.csv", "email\nann@example.com\n")
        .write(
            "dripline.toml",
            "[sender]\nfrom = \"a@example.com\"\n[[drip]]\nsequence = \"sleep\"\nlist = \"list.csv\"\n",
        );
    assert_eq!(split(&project, &["sleep.txt", "--name", "sleep"]).code, 0);
    let run = project.dripline(&["check"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn the_example_article_splits_at_its_sections() {
    let project = Project::empty();
    let article = fixture("articles/gut-immune-inflammation.txt");
    let run = split(
        &project,
        &[article.to_str().unwrap(), "--name", "gut-immune"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all: String = project
        .files()
        .iter()
        .filter(|file| file.ends_with(".md"))
        .map(|file| project.read(file))
        .collect();
    for heading in [
        "The Gut–Immune Connection",
        "The Gut Barrier: A Key Piece of the Puzzle",
        "When the Microbiome Becomes Imbalanced",
        "Understanding Inflammation as Part of Your Terrain",
        "This Is Bigger Than One System",
        "A More Complete Perspective",
        "Moving Forward",
    ] {
        assert!(
            all.contains(&format!("## {heading}\n")),
            "missing heading {heading}"
        );
    }
    assert!(!all.contains("## In simple terms"));
    assert!(!all.contains("## Again, this"));
}

#[test]
fn markdown_articles_keep_their_source_as_markdown() {
    let project = Project::empty();
    project.write(
        "post.md",
        "# Better Sleep\n\nIntro paragraph here.\n\n## Rhythm\n\nSame time every day.\n\n## Light\n\nMorning light helps.\n",
    );
    let run = split(&project, &["post.md", "--name", "post", "--days", "2"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(project.path("sequences/post/source.md").is_file());
}

#[test]
fn an_existing_sequence_is_never_overwritten_without_force() {
    let project = Project::empty();
    project.write("sleep.txt", ARTICLE);
    assert_eq!(split(&project, &["sleep.txt", "--name", "sleep"]).code, 0);
    let edited = project.path("sequences/sleep/sequence.toml");
    std::fs::write(&edited, "name = \"My edits\"\n").unwrap();

    let run = split(&project, &["sleep.txt", "--name", "sleep"]);
    assert_eq!(run.code, 3);
    assert_eq!(
        run.stderr,
        "error: sequences/sleep: already exists, so nothing was written and your edits there are kept; pick another --name, or pass --force to replace it\n"
    );
    assert_eq!(
        project.read("sequences/sleep/sequence.toml"),
        "name = \"My edits\"\n"
    );

    let run = split(&project, &["sleep.txt", "--name", "sleep", "--force"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_ne!(
        project.read("sequences/sleep/sequence.toml"),
        "name = \"My edits\"\n"
    );
    // No staging or parked folders are left behind.
    let entries: Vec<_> = std::fs::read_dir(project.path("sequences"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1);
}

/// Runs a split that must fail with `code` and a message containing
/// `message`, and checks that it wrote nothing.
fn refused(project: &Project, args: &[&str], code: i32, message: &str) {
    let before = project.files();
    let run = split(project, args);
    assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
    assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    assert_eq!(project.files(), before, "{args:?} wrote files");
    assert!(
        !project.path("sequences").exists(),
        "{args:?} made sequences/"
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let project = Project::empty();
    project
        .write("empty.txt", "")
        .write("blank.txt", "  \n\n \r\n")
        .write("binary.txt", [0x89u8, b'P', b'N', b'G', 0, 0, 1, 2, 0xff])
        .write("sleep.txt", ARTICLE);
    refused(
        &project,
        &["empty.txt", "--name", "x"],
        3,
        "error: empty.txt: the article is empty",
    );
    refused(
        &project,
        &["blank.txt", "--name", "x"],
        3,
        "error: blank.txt: the article is empty",
    );
    refused(
        &project,
        &["binary.txt", "--name", "x"],
        3,
        "error: binary.txt: the article is not text",
    );
    refused(
        &project,
        &["missing.txt", "--name", "x"],
        3,
        "error: missing.txt: cannot read the article",
    );
    refused(
        &project,
        &["sleep.txt", "--name", "x", "--days", "0"],
        2,
        "`0` is not a number of days",
    );
    refused(
        &project,
        &["sleep.txt", "--name", "x", "--days", "99"],
        3,
        "use --days",
    );
    refused(
        &project,
        &["sleep.txt", "--name", "My Course"],
        2,
        "`My Course` is not a valid sequence name",
    );
    refused(
        &project,
        &["sleep.txt", "--name", "../escape"],
        2,
        "is not a valid sequence name",
    );
}

#[test]
fn the_example_sequence_is_the_default_split_of_its_article() {
    // The shipped sequence is the split of its source, edited by hand only
    // as a coach would: subjects, preheaders, file names and a greeting.
    let project = Project::empty();
    let source = crate::support::repo().join("sequences/gut-immune/source.txt");
    let run = split(&project, &[source.to_str().unwrap(), "--name", "fresh"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bodies = |dir: &std::path::Path| -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|file| {
                let text = std::fs::read_to_string(file).unwrap();
                let body = text.splitn(3, "+++\n").nth(2).unwrap_or("").to_owned();
                // The greeting a coach added to day 1.
                match body.find("# What does it actually do") {
                    Some(at) => body[at..].to_owned(),
                    None => body,
                }
            })
            .collect()
    };
    let shipped = bodies(&crate::support::repo().join("sequences/gut-immune"));
    let fresh = bodies(&project.path("sequences/fresh"));
    assert_eq!(shipped.len(), 7);
    assert_eq!(shipped, fresh);
    for subject in [
        "In simple terms",
        "It helps",
        "Again, this isn’t about fear",
    ] {
        assert!(!run.stdout.contains(subject), "{}", run.stdout);
    }
}

#[test]
fn split_prints_its_plan_and_the_links_that_will_not_work() {
    let project = Project::empty();
    let long: String = (0..70)
        .map(|index| format!("Sentence number {index} keeps this one paragraph going on."))
        .collect::<Vec<_>>()
        .join(" ");
    project.write(
        "post.md",
        format!(
            "---\ntitle: \"The Rest Guide\"\nlayout: post\n---\n\n## One Long Part\n\n{long}\n\n## The End\n\nRest is a skill [worth learning][skill], as the [about page](/about) says. See [above](#one-long-part) for more, and come back tomorrow for the rest of it all, when we look at sleep, light and the small rituals that end a day well. Until then, notice when you feel most rested and write it down, with the time and what you did just before, so that the next part has something of yours to work with.\n\n[skill]: https://example.com/skill\n"
        ),
    );
    let run = split(&project, &["post.md", "--name", "rest"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("  day  words  subject\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("Day 1: One Long Part"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Day 2: The End"), "{}", run.stdout);
    // The one long paragraph cannot be cut.
    assert!(
        run.stderr.contains("words in one block that is never cut"),
        "{}",
        run.stderr
    );
    // Links that will not work, at their line of the step file written.
    let second = project
        .files()
        .into_iter()
        .find(|file| file.contains("/02-"))
        .unwrap();
    let line = project
        .read(&second)
        .lines()
        .position(|line| line.contains("(/about)"))
        .unwrap()
        + 1;
    assert!(
        run.stderr.contains(&format!(
            "warning: {second}:{line}: the link to `/about` is relative"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("the link to `#one-long-part` points to a place in the web page"),
        "{}",
        run.stderr
    );
    // Front matter names the course and is never sent; the reference link
    // works in the day that uses it.
    let settings = project.read("sequences/rest/sequence.toml");
    assert!(
        settings.starts_with("name = \"The Rest Guide\"\n"),
        "{settings}"
    );
    let day2 = project.read(&second);
    assert!(!day2.contains("layout: post"), "{day2}");
    assert!(
        day2.contains("\n[skill]: https://example.com/skill\n"),
        "{day2}"
    );
}

#[test]
fn check_reports_links_that_will_not_work_with_file_and_line() {
    let project = Project::example();
    project.write(
        "sequences/gut-immune/02-gut-barrier.md",
        "+++\nsubject = \"Day 2\"\n+++\nA paragraph.\n\nRead [this](\\{{< ref \"post.md\" >}}) and [that][nowhere].\n",
    );
    let run = project.dripline(&["check"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("warning: sequences/gut-immune/02-gut-barrier.md:6: the site shortcode `{{< ref \"post.md\" >}}` is never expanded"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("sequences/gut-immune/02-gut-barrier.md:6: the reference link `[nowhere]` has no definition"),
        "{}",
        run.stderr
    );
}

#[test]
fn every_real_article_splits_into_a_sequence_that_passes_check() {
    let project = Project::empty();
    let dir = fixture("articles/real");
    let mut articles: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.with_extension("expect.toml").exists())
        .collect();
    articles.sort();
    assert!(articles.len() >= 12, "{} articles", articles.len());
    let mut config = String::from("[sender]\nfrom = \"a@example.com\"\n");
    project.write("list.csv", "email,name\nann@example.com,Ann\n");
    for (index, article) in articles.iter().enumerate() {
        let name = format!("real-{index}");
        let run = split(&project, &[article.to_str().unwrap(), "--name", &name]);
        assert_eq!(run.code, 0, "{}: {}", article.display(), run.stderr);
        config.push_str(&format!(
            "[[drip]]\nsequence = \"{name}\"\nlist = \"list.csv\"\n"
        ));
    }
    project.write("dripline.toml", config);
    let run = project.dripline(&["check"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("error:"), "{}", run.stderr);
    let preview = project.dripline(&["preview", "real-17"]);
    assert_eq!(preview.code, 0, "{}{}", preview.stdout, preview.stderr);
}
