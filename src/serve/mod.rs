//! `dripline serve`: the long-running service.
//!
//! It is a thin shell around the one pass that `dripline run` makes
//! ([`engine::Pass`]): it waits for the next `[serve] tick`, re-reads the
//! project (config, sequences, templates, lists) so edits apply without a
//! restart, runs the pass, backs off after a failed one, and serves the
//! unsubscribe and signup endpoints ([`http`]) beside it, with the sender
//! of signup confirmations ([`confirmations`]). It decides nothing about
//! who gets what: that is the engine's job.
//!
//! On SIGTERM or SIGINT it stops claiming (the engine checks between
//! batches), lets the batch in flight finish and be recorded, lets HTTP
//! requests in progress finish, and returns within [`SHUTDOWN_GRACE`].
//! The listen address, the state file and the unsubscribe keys are read
//! once, at start.

mod confirmations;
pub mod http;
mod pages;
mod signup;
mod signup_pages;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::config::{Project, Signup};
use crate::crontab::CronSchedule;
use crate::engine::{self, Summary};
use crate::feedback::mailbox;
use crate::progress::Reporter;
use crate::schedule;
use crate::setup::Setup;
use crate::signup::limits::ClientLimit;
use crate::store::signups::Signups as _;
use crate::store::{self, Access, StateSettings, StateStore};

use crate::token::Key;

/// How long the service may take to stop after SIGTERM or SIGINT: the
/// batch in flight and the HTTP requests in progress get this long to
/// finish. A batch still unfinished then is abandoned; its claimed emails
/// go again, with the same Message-IDs, in the next pass (DESIGN.md 8).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The first wait after a failed pass; it doubles with each failure in a
/// row, up to [`MAX_BACKOFF`], and the pass then runs at the first tick
/// after it.
const FIRST_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// What the service tells `/healthz` about its passes.
#[derive(Debug, Default, Clone)]
pub struct Health {
    /// When the last pass finished, successfully or not.
    pub last_pass: Option<DateTime<Utc>>,
    /// Whether it succeeded.
    pub last_pass_ok: Option<bool>,
    /// When the next one is planned.
    pub next_pass: Option<DateTime<Utc>>,
}

/// What the HTTP endpoint shares with the pass loop.
#[derive(Debug)]
pub struct Shared {
    /// Every key whose tokens are accepted: the current one first.
    pub keys: Vec<Key>,
    /// The state, for suppressions.
    pub store: StateStore,
    /// Sequence names by id, for the pages; refreshed by every pass.
    pub names: RwLock<HashMap<String, String>>,
    /// Who the emails come from, for the pages.
    pub sender: String,
    pub health: Mutex<Health>,
    /// The signup forms by sequence id; refreshed by every pass.
    pub signups: RwLock<HashMap<String, SignupForm>>,
    /// The service's own origin (of `[unsubscribe] base_url`): its
    /// hosted forms may always post.
    pub origin: Option<String>,
    /// `[serve] trusted_proxies`.
    pub trusted_proxies: Vec<IpAddr>,
    /// Signup posts per client address.
    pub clients: Mutex<ClientLimit>,
    /// Wakes the confirmation sender.
    pub outgoing: Notify,
    /// The provider webhooks `[webhooks]` configures.
    pub webhooks: crate::feedback::webhook::Endpoints,
}

/// One sequence's signup form, as the endpoint needs it.
#[derive(Debug, Clone)]
pub struct SignupForm {
    pub id: String,
    pub name: String,
    /// The course's time zone, named on the form.
    pub zone: String,
    pub settings: Signup,
}

impl Shared {
    /// The name of sequence `id`, or the id when the project no longer has it.
    pub fn sequence_name(&self, id: &str) -> String {
        self.names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_owned())
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs the service on `state` until SIGTERM or SIGINT. The key of
/// `setup`'s links signs (and verifies) unsubscribe links. `setup` is
/// loaded once before, so that a broken project is refused at start, with
/// exit code 3, like `run`.
pub async fn serve(setup: Setup, state: StateSettings) -> anyhow::Result<()> {
    let Setup {
        project,
        drips,
        links,
        ..
    } = setup;
    let key = links.key;
    // Watch for signals first, so one during start-up also stops cleanly.
    let (shutdown_tx, shutdown) = watch::channel(false);
    let stop = Arc::new(AtomicBool::new(false));
    let signals = tokio::spawn(watch_signals(shutdown_tx, Arc::clone(&stop)));

    let keys = crate::setup::accepted_keys(&project, &key)?;
    let webhooks = crate::feedback::webhook::Endpoints::load(&project)?;

    let store = store::open(&state, Access::Send).await?;
    let listen = project.config.serve.listen;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen}; set another address in [serve] listen")
    })?;
    let bound = listener.local_addr()?;
    // On stdout, for whoever started the service (tests read it).
    println!("listening on http://{bound}");
    tracing::info!(
        "listening on http://{bound}; passes run on the schedule `{}` (UTC)",
        project.config.serve.tick
    );
    if project.config.unsubscribe.base_url.is_none() {
        tracing::warn!(
            "[unsubscribe] base_url is not set, so the emails carry no link to this service; set it to the public URL that reaches http://{bound}"
        );
    }

    let shared = Arc::new(Shared {
        keys,
        store: store.clone(),
        names: RwLock::new(names(&drips)),
        sender: project
            .config
            .sender
            .from
            .name
            .clone()
            .unwrap_or_else(|| project.config.sender.from.email.to_string()),
        health: Mutex::new(Health::default()),
        signups: RwLock::new(signup_forms(&project, &drips)),
        origin: project
            .config
            .unsubscribe
            .base_url
            .as_deref()
            .and_then(crate::signup::origin_of),
        trusted_proxies: project.config.serve.trusted_proxies.clone(),
        clients: Mutex::new(ClientLimit::default()),
        outgoing: Notify::new(),
        webhooks,
    });
    // A confirmation a stopped service was sending goes again.
    store.resume_outgoing().await?;
    let sender = tokio::spawn({
        let (config_file, key, shared) = (
            project.config_file.clone(),
            key.clone(),
            Arc::clone(&shared),
        );
        let shutdown = shutdown.clone();
        async move { confirmations::run(&config_file, key, shared, shutdown).await }
    });
    for path in shared.webhooks.paths() {
        tracing::info!("webhook endpoint: POST http://{bound}{path}");
    }
    let server = tokio::spawn(http::serve(
        listener,
        http::router(Arc::clone(&shared)),
        shutdown.clone(),
    ));

    let service = Service {
        config_file: project.config_file.clone(),
        key,
        store: &store,
        shared: &shared,
        stop: &stop,
    };
    service
        .run(project.config.serve.tick.clone(), shutdown)
        .await;

    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(err))) => tracing::error!("the HTTP endpoint failed: {err:#}"),
        Ok(Err(err)) => tracing::error!("the HTTP endpoint failed: {err}"),
        Err(_) => tracing::warn!(
            "HTTP requests still in progress after {}s were cut off",
            SHUTDOWN_GRACE.as_secs()
        ),
    }
    if tokio::time::timeout(SHUTDOWN_GRACE, sender).await.is_err() {
        tracing::warn!("signup confirmations still being sent at shutdown go at the next start");
    }
    signals.abort();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The pass loop's view of the service.
struct Service<'a> {
    config_file: PathBuf,
    key: Key,
    store: &'a StateStore,
    shared: &'a Shared,
    /// Set on shutdown; the engine checks it between batches.
    stop: &'a AtomicBool,
}

impl Service<'_> {
    /// Runs a pass now, then one at each tick, until shutdown.
    async fn run(&self, tick: CronSchedule, mut shutdown: watch::Receiver<bool>) {
        let mut failures: u32 = 0;
        let mut next = Utc::now();
        loop {
            self.shared.health().next_pass = Some(next);
            let wait = (next - Utc::now()).to_std().unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stopping(&mut shutdown) => return,
            }
            let outcome = tokio::select! {
                outcome = self.pass() => outcome,
                () = grace_expired(shutdown.clone()) => {
                    tracing::warn!(
                        "the pass did not finish within {}s of the shutdown request; the emails it had claimed go again, with the same Message-IDs, in the next pass",
                        SHUTDOWN_GRACE.as_secs()
                    );
                    return;
                }
            };
            let finished = Utc::now();
            let mut earliest = finished;
            match outcome {
                Ok(summary) => {
                    failures = 0;
                    log_summary(&summary);
                }
                Err(err) => {
                    failures += 1;
                    let backoff = backoff(failures);
                    earliest += chrono::Duration::from_std(backoff).unwrap_or_default();
                    tracing::error!(
                        "the pass failed ({failures} in a row): {err:#}; the next one runs at the first tick after {}s",
                        backoff.as_secs()
                    );
                }
            }
            {
                let mut health = self.shared.health();
                health.last_pass = Some(finished);
                health.last_pass_ok = Some(failures == 0);
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            next = match tick.next_after(earliest.naive_utc()) {
                Some(at) => at.and_utc(),
                None => {
                    tracing::warn!(
                        "[serve] tick `{tick}` never fires again: no more passes; the endpoint keeps serving"
                    );
                    stopping(&mut shutdown).await;
                    return;
                }
            };
        }
    }

    /// One pass over the project as it is on disk now.
    async fn pass(&self) -> anyhow::Result<Summary> {
        let setup = Setup::load(&self.config_file, Some(self.key.clone()))?;
        *self
            .shared
            .names
            .write()
            .unwrap_or_else(PoisonError::into_inner) = names(&setup.drips);
        *self
            .shared
            .signups
            .write()
            .unwrap_or_else(PoisonError::into_inner) = signup_forms(&setup.project, &setup.drips);
        self.read_mailbox(&setup.project).await;
        // No probe: a pass with nothing due must not log in to the provider
        // every tick. A dead server stops the pass at its first batch (the
        // claims go back to due) and the loop backs off.
        let transport = setup.transport(false).await?;
        let progress = Reporter::new();
        let pass = engine::Pass {
            project: &setup.project,
            store: self.store,
            transport: &transport,
            dry_run: false,
            progress: Some(&progress),
            clock: engine::Clock::System,
        };
        let summary = pass
            .run_recorded(&setup.drips, &setup.renderers, self.stop)
            .await;
        progress.finish();
        transport.close().await;
        summary
    }

    /// Reads `[mailbox]` before the pass, so what it says holds for the
    /// pass's emails. A mailbox that cannot be read is logged and the pass
    /// still runs: sending must not wait on the bounce mailbox.
    async fn read_mailbox(&self, project: &crate::config::Project) {
        match mailbox::read(project, self.store, &self.shared.keys, Utc::now()).await {
            Ok(Some(tally)) if !tally.is_empty() => tracing::info!("mailbox: {tally}"),
            Ok(_) => {}
            Err(err) => {
                tracing::error!("cannot read the [mailbox]: {err:#}; the next tick tries again")
            }
        }
    }
}

/// Sequence names by id.
fn names(drips: &[engine::Drip]) -> HashMap<String, String> {
    drips
        .iter()
        .map(|drip| {
            (
                drip.sequence.id.clone(),
                drip.sequence.settings.name.clone(),
            )
        })
        .collect()
}

/// The signup forms of the drips that `[signup]` turns on.
fn signup_forms(project: &Project, drips: &[engine::Drip]) -> HashMap<String, SignupForm> {
    drips
        .iter()
        .filter_map(|drip| {
            let sequence = &drip.sequence;
            let settings = project.config.signup.get(&sequence.id)?;
            let zone = sequence
                .settings
                .timezone
                .map_or(project.config.timezone.0, |zone| zone.0);
            Some((
                sequence.id.clone(),
                SignupForm {
                    id: sequence.id.clone(),
                    name: sequence.settings.name.clone(),
                    zone: zone.name().to_owned(),
                    settings: settings.get_ref().clone(),
                },
            ))
        })
        .collect()
}

fn log_summary(summary: &Summary) {
    let stopped = if summary.stopped {
        "; stopped early for shutdown, the rest goes in the next pass"
    } else {
        ""
    };
    if summary.sent + summary.failed + summary.retrying + summary.enrolled > 0 || summary.stopped {
        tracing::info!(
            "pass: {} sent, {} to retry, {} failed, {} new subscribers, {} bad list rows{stopped}",
            summary.sent,
            summary.retrying,
            summary.failed,
            summary.enrolled,
            summary.bad_rows
        );
    } else {
        tracing::debug!("pass: nothing due");
    }
    if summary.late > 0 {
        tracing::warn!(
            "{} emails went out more than catch_up after their slot: the passes are too far apart; make [serve] tick more frequent or widen [delivery] catch_up",
            summary.late
        );
    }
}

/// The wait after `failures` failed passes in a row.
fn backoff(failures: u32) -> Duration {
    schedule::doubling(failures, FIRST_BACKOFF, MAX_BACKOFF)
}

/// Resolves once shutdown is asked for (never, if it cannot be any more).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stopping| *stopping).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Resolves [`SHUTDOWN_GRACE`] after shutdown was asked for.
async fn grace_expired(mut shutdown: watch::Receiver<bool>) {
    stopping(&mut shutdown).await;
    tokio::time::sleep(SHUTDOWN_GRACE).await;
}

/// Waits for SIGTERM or SIGINT, then asks everything to stop.
async fn watch_signals(shutdown: watch::Sender<bool>, stop: Arc<AtomicBool>) {
    let signal = wait_for_signal().await;
    tracing::info!(
        "{signal}: stopping; the batch in flight finishes (at most {}s)",
        SHUTDOWN_GRACE.as_secs()
    );
    stop.store(true, Ordering::Release);
    shutdown.send_replace(true);
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => {
            tracing::warn!("cannot watch for SIGTERM; stop the service with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_fifteen_minutes() {
        let seconds: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(seconds, [10, 20, 40, 80, 160, 320, 640, 900, 900]);
    }
}
