//! `dripline unsubscribe EMAIL` and `dripline resubscribe EMAIL`:
//! suppression by hand.

use std::path::Path;

use chrono::Utc;

use super::{ExitStatus, parse_address, runtime};
use crate::config::Project;
use crate::store::{self, Access, Reason, StateSettings, Store as _};
use crate::subscribers;

/// The arguments of `dripline unsubscribe` and `dripline resubscribe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address.
    #[arg(value_parser = parse_address)]
    email: lettre::Address,
}

/// Unsubscribes the address when `unsubscribe`, else resubscribes it.
pub fn execute(config_file: &Path, args: &Args, unsubscribe: bool) -> anyhow::Result<ExitStatus> {
    let project = Project::load(config_file)?;
    let key = subscribers::key(args.email.as_ref());
    let state = StateSettings::of(&project)?;
    let changed = runtime()?.block_on(async {
        let store = store::open(&state, Access::Read).await?;
        if unsubscribe {
            store
                .suppress(
                    &key,
                    Reason::Unsubscribed,
                    "dripline unsubscribe",
                    Utc::now(),
                )
                .await
        } else {
            store.resubscribe(&key).await
        }
    })?;
    let message = match (unsubscribe, changed) {
        (true, true) => format!("{key} is unsubscribed: no sequence sends to it any more."),
        (true, false) => format!("{key} was already unsubscribed or bounced; nothing changed."),
        (false, true) => {
            format!("{key} is resubscribed: its sequences continue where they stopped.")
        }
        (false, false) => format!("{key} was not unsubscribed or bounced; nothing changed."),
    };
    println!("{message}");
    Ok(ExitStatus::Success)
}
