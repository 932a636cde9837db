//! `[mailbox]` read once: by `dripline mailbox` (from cron) and by
//! `dripline serve` before each pass, so a request or a bounce is honoured
//! by the emails of that same pass.

use chrono::{DateTime, Utc};

use super::apply::Tally;
use super::mail::Addresses;
use super::{imap, maildir};
use crate::config::Project;
use crate::store::Store;
use crate::token::Key;

/// The addresses of the project that carry a `+TOKEN`.
pub fn addresses(project: &Project) -> Addresses {
    Addresses {
        bounce: project.config.delivery.return_path.clone(),
        unsubscribe: project
            .config
            .unsubscribe
            .mailto
            .as_ref()
            .map(|mailbox| mailbox.email.clone()),
    }
}

/// Processes the project's `[mailbox]` once; `None` when it has none.
pub async fn read(
    project: &Project,
    store: &impl Store,
    keys: &[Key],
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Tally>> {
    let Some(mailbox) = &project.config.mailbox else {
        return Ok(None);
    };
    let addresses = addresses(project);
    let tally = match &mailbox.maildir {
        Some(dir) => maildir::process(&project.resolve(dir), store, keys, &addresses, now).await?,
        None => imap::process(project, mailbox, store, keys, &addresses, now).await?,
    };
    Ok(Some(tally))
}
