//! `dripline init`: a starter project that `check` and `run` accept as it
//! is, and that never replaces a file.

use crate::support::Project;

#[test]
fn init_makes_a_project_that_checks_and_runs() {
    let folder = Project::empty();
    let init = folder.dripline(&["init", "course"]);
    assert_eq!(init.code, 0, "{init:?}");
    for next in [
        "dripline split ARTICLE --name ID",
        "dripline check",
        "dripline run",
    ] {
        assert!(init.stdout.contains(next), "{}", init.stdout);
    }
    let mut files = folder.files();
    files.retain(|file| file.starts_with("course/"));
    assert_eq!(
        files,
        [
            "course/.dripline-secret",
            "course/.gitignore",
            "course/dripline.toml",
            "course/sequences/welcome/01-welcome.md",
            "course/sequences/welcome/02-whats-next.md",
            "course/sequences/welcome/sequence.toml",
            "course/subscribers.csv",
            "course/templates/README.md",
        ]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(folder.path("course/.dripline-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let list = folder.read("course/subscribers.csv");
    for line in list.lines().skip(1) {
        assert!(
            line.contains("@example.com") || line.contains("@example.org"),
            "{line}"
        );
    }

    let check = folder.dripline(&["--config", "course/dripline.toml", "check"]);
    assert_eq!(check.code, 0, "{check:?}");
    assert!(check.stdout.contains("0 errors, 0 warnings"), "{check:?}");
    let run = folder.dripline(&["--config", "course/dripline.toml", "run"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("2 sent"), "{run:?}");
}

#[test]
fn init_refuses_to_replace_anything() {
    let folder = Project::empty();
    folder.write("dripline.toml", "# mine\n");
    let init = folder.dripline(&["init"]);
    assert_eq!(init.code, 3, "{init:?}");
    assert!(
        init.stderr.contains("dripline.toml: already exists"),
        "{init:?}"
    );
    assert_eq!(folder.files(), ["dripline.toml"], "nothing was written");
    assert_eq!(folder.read("dripline.toml"), "# mine\n");
}
