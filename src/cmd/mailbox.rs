//! `dripline mailbox`: reads the `[mailbox]` once (bounces, complaints,
//! mailto unsubscribes), for cron; `dripline serve` does the same on its
//! tick.

use std::path::Path;

use chrono::Utc;

use super::{ExitStatus, runtime};
use crate::config::Project;
use crate::diagnostic::{InvalidInput, Problem};
use crate::feedback::mailbox;
use crate::setup;
use crate::store::{self, Access, StateSettings};

/// Runs the command.
pub fn execute(config_file: &Path) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    if project.config.mailbox.is_none() {
        return Err(InvalidInput::from(Problem::error(
            &project.config_file,
            "there is no [mailbox] to read: add one with maildir = \"Maildir\" (a folder your mail server delivers the bounce address to) or an IMAP host; see docs/config.md",
        ))
        .into());
    }
    let key = setup::signing_key(&project)?;
    let keys = setup::accepted_keys(&project, &key)?;
    let state = StateSettings::of(&project)?;
    let tally = runtime()?.block_on(async {
        let store = store::open(&state, Access::Read).await?;
        let tally = mailbox::read(&project, &store, &keys, Utc::now()).await;
        store.close().await;
        tally
    })?;
    if let Some(tally) = tally {
        println!("mailbox: {tally}");
    }
    Ok(ExitStatus::Success)
}
