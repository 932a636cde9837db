//! Secrets that come from an environment variable or a file named in
//! `dripline.toml` (never from the file itself): webhook credentials and
//! the IMAP password. A [`Secret`] never prints, and errors name where it
//! should come from, never what it holds.

use std::fmt;
use std::path::Path;

use crate::config::Project;
use crate::diagnostic::{InvalidInput, Problem};

/// A secret value. Its `Debug` and `Display` show no part of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Reads the secret `[table]` names with `env` (a variable) or `file`
/// (relative to the config file); exactly one must be set.
pub fn read(
    project: &Project,
    table: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<Secret, InvalidInput> {
    let config = &project.config_file;
    match (env, file) {
        (Some(name), None) => std::env::var(name).map(Secret).map_err(|_| {
            Problem::error(
                config,
                format!("[{table}] names the environment variable `{name}`, which is not set: export {name} before starting dripline"),
            )
            .into()
        }),
        (None, Some(path)) => {
            let path = project.resolve(path);
            std::fs::read_to_string(&path)
                .map(|text| Secret(text.trim_end_matches(['\r', '\n']).to_owned()))
                .map_err(|err| {
                    Problem::error(
                        &path,
                        format!("cannot read the secret file that [{table}] names: {}", err.kind()),
                    )
                    .into()
                })
        }
        _ => Err(Problem::error(
            config,
            format!("[{table}] needs its secret from exactly one of an environment variable (…_env) or a file (…_file)"),
        )
        .into()),
    }
}

/// Like [`read`], for a secret that may be left out: `None` when `[table]`
/// names neither a variable nor a file.
pub fn read_optional(
    project: &Project,
    table: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<Secret>, InvalidInput> {
    match (env, file) {
        (None, None) => Ok(None),
        _ => read(project, table, env, file).map(Some),
    }
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_is_exact() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secrets"));
        assert!(same(b"", b""));
        assert_eq!(format!("{:?}", Secret("x".into())), "Secret([redacted])");
    }
}
