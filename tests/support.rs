//! A small builder for test projects and a runner for the real binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root: the example project lives there.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture file under tests/fixtures/.
pub fn fixture(relative: &str) -> PathBuf {
    repo().join("tests/fixtures").join(relative)
}

/// A project directory that is deleted when the test ends.
pub struct Project {
    dir: tempfile::TempDir,
}

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Project {
    /// An empty project folder.
    pub fn empty() -> Project {
        Project {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// A copy of the example project shipped in the repository.
    pub fn example() -> Project {
        let project = Project::empty();
        for file in ["dripline.toml", "subscribers.csv"] {
            fs::copy(repo().join(file), project.path(file)).expect("copy example file");
        }
        copy_dir(&repo().join("sequences"), &project.path("sequences"));
        project
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes `contents` to `relative`, creating folders as needed.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> &Project {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().expect("a parent")).expect("create folders");
        fs::write(path, contents).expect("write file");
        self
    }

    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.path(relative)).expect("read file")
    }

    /// Runs `dripline ARGS` in the project folder.
    pub fn dripline(&self, args: &[&str]) -> Run {
        self.dripline_with(args, &[])
    }

    /// `dripline ARGS` in the project folder, not started yet.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dripline"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("DRIPLINE_CONFIG")
            .env_remove("DRIPLINE_LOG");
        command
    }

    /// Runs `dripline ARGS` in the project folder with these environment
    /// variables set.
    pub fn dripline_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = self
            .command(args)
            .envs(env.iter().copied())
            .output()
            .expect("run dripline");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Every file below the project folder, relative, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut files = Vec::new();
        list_files(self.dir.path(), self.dir.path(), &mut files);
        files.sort();
        files
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create folder");
    for entry in fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

fn list_files(root: &Path, dir: &Path, files: &mut Vec<String>) {
    for entry in fs::read_dir(dir).expect("read folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            list_files(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            files.push(relative.to_string_lossy().into_owned());
        }
    }
}

/// Compares `actual` with tests/fixtures/snapshots/`name`;
/// `UPDATE_SNAPSHOTS=1` rewrites the file instead.
pub fn assert_snapshot(name: &str, actual: &str) {
    let path = fixture("snapshots").join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        fs::write(&path, actual).expect("write snapshot");
    }
    let expected = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{} differs (rerun with UPDATE_SNAPSHOTS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}
