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
