//! The project as the commands that render or send need it: the config,
//! every drip's sequence, the unsubscribe links and a renderer per drip,
//! loaded by one function so that `run`, `serve` and `send-test` agree
//! on what a usable project is.
//!
//! Everything here reads files; nothing is sent and no state is touched
//! (the transport is opened by [`Setup::transport`] when the caller is
//! ready to send).

use std::path::Path;

use anyhow::Context as _;

use crate::config::{Project, Transport};
use crate::delivery::Configured;
use crate::diagnostic::{InvalidInput, Problem, Report};
use crate::engine::Drip;
use crate::preflight;
use crate::render::{Renderer, UnsubscribeLinks};
use crate::sequence::Sequence;
use crate::token::Key;

/// A project ready to render every drip.
pub struct Setup {
    pub project: Project,
    /// The drips of the config, in order.
    pub drips: Vec<Drip>,
    /// One renderer per drip, in the same order.
    pub renderers: Vec<Renderer>,
    pub links: UnsubscribeLinks,
    /// Preflight warnings (an http base_url), for the command to show.
    pub warnings: Report,
}

impl Setup {
    /// Loads the project at `config_file` with everything it refers to.
    /// `key` signs the unsubscribe links; `None` reads the project's
    /// secret file (see [`signing_key`]). Any problem in the config, a
    /// sequence or a template, and any [`preflight`] error, stops the
    /// command before anything is sent.
    pub fn load(config_file: &Path, key: Option<Key>) -> anyhow::Result<Setup> {
        let project = Project::load(config_file)?;
        let warnings = preflight::check(&project.config, &project.config_file);
        if warnings.has_errors() {
            return Err(InvalidInput(warnings).into());
        }
        let drips = load_drips(&project)?;
        let key = match key {
            Some(key) => key,
            None => signing_key(&project)?,
        };
        let links = UnsubscribeLinks::new(&project.config.unsubscribe, key);
        let renderers = renderers(&project, &drips, &links)?;
        Ok(Setup {
            project,
            drips,
            renderers,
            links,
            warnings,
        })
    }

    /// Opens the configured transport (see [`Configured::open`]).
    pub async fn transport(&self, probe: bool) -> anyhow::Result<Configured> {
        Configured::open(&self.project, probe).await
    }
}

/// Loads every drip of the project. Any problem in a sequence stops the
/// command before anything is sent.
pub fn load_drips(project: &Project) -> Result<Vec<Drip>, InvalidInput> {
    let mut report = Report::default();
    let mut drips = Vec::new();
    for drip in &project.config.drip {
        let dir = project.sequences_dir().join(drip.sequence.get_ref());
        if let Some(sequence) = Sequence::load(&dir, &project.templates_dir(), &mut report) {
            drips.push(Drip {
                sequence,
                list: drip.list.get_ref().display().to_string(),
                list_file: project.resolve(drip.list.get_ref()),
                columns: drip.columns.clone(),
            });
        }
    }
    if report.has_errors() {
        return Err(InvalidInput(report));
    }
    Ok(drips)
}

/// Prepares a renderer for each drip, in the same order. Any template
/// problem stops the command before anything is sent.
fn renderers(
    project: &Project,
    drips: &[Drip],
    links: &UnsubscribeLinks,
) -> Result<Vec<Renderer>, InvalidInput> {
    let mut report = Report::default();
    let mut renderers = Vec::new();
    for drip in drips {
        match Renderer::new(
            &drip.sequence,
            &project.templates_dir(),
            &project.config.sender,
            links.clone(),
        ) {
            Ok(renderer) => renderers.push(renderer),
            Err(problems) => report.extend(problems),
        }
    }
    if report.has_errors() {
        return Err(InvalidInput(report));
    }
    Ok(renderers)
}

/// The key that signs the project's unsubscribe links. A missing secret
/// is created for the outbox transport (nothing leaves the machine), and
/// is an error that says how to make one otherwise.
pub fn signing_key(project: &Project) -> anyhow::Result<Key> {
    let path = project.resolve(&project.config.unsubscribe.secret_file);
    match Key::from_file(&path) {
        Ok(key) => Ok(key),
        Err(_) if !path.exists() && project.config.delivery.transport == Transport::Outbox => {
            let key = Key::create(&path).with_context(|| {
                format!("cannot create the unsubscribe secret {}", path.display())
            })?;
            tracing::info!(
                "created {} (mode 0600): the key that signs unsubscribe links; keep it and back it up",
                path.display()
            );
            Ok(key)
        }
        Err(problem) => Err(InvalidInput::from(problem).into()),
    }
}

/// Every key whose tokens are accepted: `key` (the current one) first,
/// then `[unsubscribe] previous_secret_file`'s, so links signed before a
/// rotation keep working.
pub fn accepted_keys(project: &Project, key: &Key) -> Result<Vec<Key>, InvalidInput> {
    let mut keys = vec![key.clone()];
    if let Some(previous) = &project.config.unsubscribe.previous_secret_file {
        keys.push(Key::from_file(&project.resolve(previous))?);
    }
    Ok(keys)
}

/// For commands that only show emails (`preview`, `check`): the project's
/// key when it has a good one, else a throwaway one, with the problem of
/// the project's key unless the first `run` creates it (outbox transport,
/// no secret file yet).
pub fn showing_key(project: &Project) -> std::io::Result<(Key, Option<Problem>)> {
    let path = project.resolve(&project.config.unsubscribe.secret_file);
    match Key::from_file(&path) {
        Ok(key) => Ok((key, None)),
        Err(problem) => {
            let created_on_run =
                !path.exists() && project.config.delivery.transport == Transport::Outbox;
            Ok((Key::random()?, (!created_on_run).then_some(problem)))
        }
    }
}
