//! Where the state lives: `[state]` resolved into a SQLite file or a
//! PostgreSQL database, with the password read from where the config
//! says. The URL is only ever shown with its password replaced.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use crate::config::Project;
use crate::diagnostic::{InvalidInput, Problem};
use crate::secret::{self, Secret};

/// Where the state lives, resolved from `[state]`.
#[derive(Debug, Clone)]
pub enum StateSettings {
    /// A SQLite file.
    Sqlite { path: PathBuf },
    /// A PostgreSQL database shared by any number of instances.
    Postgres(Box<PostgresTarget>),
}

/// A PostgreSQL database to connect to. Its `Debug` shows the redacted URL.
#[derive(Clone)]
pub struct PostgresTarget {
    pub(super) options: PgConnectOptions,
    /// The URL with its password replaced, for messages.
    pub shown: String,
    /// How long an instance may miss its heartbeats before the others
    /// take over its claims.
    pub instance_timeout: Duration,
}

impl fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTarget")
            .field("url", &self.shown)
            .field("instance_timeout", &self.instance_timeout)
            .finish()
    }
}

impl PostgresTarget {
    /// The database at `url` (a password in it is used, never shown);
    /// `password`, when given, replaces it.
    pub fn new(
        url: &str,
        password: Option<&str>,
        instance_timeout: Duration,
    ) -> anyhow::Result<PostgresTarget> {
        let shown = redact(url);
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            anyhow::bail!(
                "`{shown}` is not a PostgreSQL URL: write postgres://USER@HOST:PORT/DATABASE"
            );
        }
        // sqlx's message may quote the URL: say what is wrong without it.
        let mut options = PgConnectOptions::from_str(url).map_err(|_| {
            anyhow::anyhow!(
                "`{shown}` is not a valid PostgreSQL URL: write postgres://USER@HOST:PORT/DATABASE?sslmode=verify-full"
            )
        })?;
        if let Some(password) = password {
            options = options.password(password);
        }
        Ok(PostgresTarget {
            options,
            shown,
            instance_timeout,
        })
    }
}

impl StateSettings {
    /// The state `[state]` of `project` names, reading the URL or the
    /// password from the environment or a file when the config says so.
    pub fn of(project: &Project) -> anyhow::Result<StateSettings> {
        let state = &project.config.state;
        if let Some(path) = state.sqlite_path() {
            return Ok(StateSettings::Sqlite {
                path: project.resolve(path),
            });
        }
        let file = &project.config_file;
        let problem = |message: String| InvalidInput::from(Problem::error(file, message));
        let url = match (&state.url, &state.url_env) {
            (Some(url), _) => {
                if url_password(url).is_some() {
                    return Err(problem(
                        "[state] url carries a password, and the config is no place for secrets: remove it from the URL and set password_env or password_file (or put the whole URL in the environment with url_env)".to_owned(),
                    )
                    .into());
                }
                url.clone()
            }
            (None, Some(name)) => std::env::var(name).map_err(|_| {
                problem(format!(
                    "[state] url_env names `{name}`, which is not set: export {name}=postgres://USER:PASSWORD@HOST/DATABASE before running dripline"
                ))
            })?,
            (None, None) => unreachable!("sqlite_path covers a config without a URL"),
        };
        let password = secret::read_optional(
            project,
            "state",
            state.password_env.as_deref(),
            state.password_file.as_deref(),
        )?;
        let target = PostgresTarget::new(
            &url,
            password.as_ref().map(Secret::expose),
            state.instance_timeout,
        )
        .map_err(|err| problem(format!("[state]: {err}")))?;
        Ok(StateSettings::Postgres(Box::new(target)))
    }

    /// Whether there is no state yet (a SQLite file not created): reading
    /// commands then have nothing to report.
    pub fn is_new(&self) -> bool {
        match self {
            StateSettings::Sqlite { path } => !path.is_file(),
            StateSettings::Postgres(_) => false,
        }
    }

    /// The state, for messages: the file name, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            StateSettings::Sqlite { path } => path.display().to_string(),
            StateSettings::Postgres(target) => target.shown.clone(),
        }
    }
}

/// Where the password sits in `url`: the byte range after `user:` in
/// the authority, if there is one.
fn url_password(url: &str) -> Option<std::ops::Range<usize>> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |end| start + end);
    let at = url[start..authority_end].rfind('@')? + start;
    let colon = url[start..at].find(':')? + start;
    Some(colon + 1..at)
}

/// `url` with its password, in the authority or a `password=` query
/// parameter, replaced by `***`.
pub fn redact(url: &str) -> String {
    let mut shown = url.to_owned();
    if let Some(range) = url_password(url) {
        shown.replace_range(range, "***");
    }
    if let Some(query) = shown.find('?') {
        let (base, params) = shown.split_at(query + 1);
        let params: Vec<String> = params
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                    format!("{name}=***")
                }
                _ => param.to_owned(),
            })
            .collect();
        shown = format!("{base}{}", params.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        assert_eq!(
            redact("postgres://drip:s3cr:et@db.example.com:5432/drip?sslmode=require"),
            "postgres://drip:***@db.example.com:5432/drip?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://drip@db/drip?password=hunter2&sslmode=verify-full"),
            "postgresql://drip@db/drip?password=***&sslmode=verify-full"
        );
        assert_eq!(redact("postgres://db/drip"), "postgres://db/drip");
        assert_eq!(
            redact("postgres://a:b@host/x@y"),
            "postgres://a:***@host/x@y"
        );
    }

    #[test]
    fn a_bad_url_is_refused_without_showing_its_password() {
        let err = PostgresTarget::new("mysql://u:hunter2@h/d", None, Duration::from_secs(60))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let err = PostgresTarget::new(
            "postgres://u:hunter2@h:notaport/d",
            None,
            Duration::from_secs(60),
        )
        .unwrap_err()
        .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
