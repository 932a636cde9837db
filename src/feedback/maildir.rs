//! A Maildir as the feedback mailbox (a local Postfix or Dovecot delivers
//! there): every message in `new/` and `cur/` not yet flagged is read;
//! processed ones move to the `.dripline-processed` subfolder (Maildir++,
//! so an IMAP client shows it as a folder), and the ones not understood
//! stay, moved to `cur/` with the `F` (flagged) flag, for a person. Nothing
//! is ever deleted. A message is moved only after what it says is recorded,
//! so a crash in between reads it again, harmlessly.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use super::apply::{self, Disposition, Tally};
use super::mail::Addresses;
use crate::store::Store;
use crate::token::Key;

/// The subfolder processed messages move to.
pub const PROCESSED: &str = ".dripline-processed";

/// Processes every unflagged message of the Maildir at `dir` once.
pub async fn process(
    dir: &Path,
    store: &impl Store,
    keys: &[Key],
    addresses: &Addresses,
    now: DateTime<Utc>,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    for path in unread(dir)? {
        let raw = match fs::read(&path) {
            Ok(raw) => raw,
            // Moved or removed by another reader meanwhile.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        match apply::handle(store, keys, addresses, &raw, &name, now, &mut tally).await? {
            Disposition::Processed => file_away(dir, &path, &name)?,
            Disposition::Left => flag(dir, &path, &name)?,
        }
    }
    Ok(tally)
}

/// The messages to read: all of `new/`, and those in `cur/` without `F`.
fn unread(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for sub in ["new", "cur"] {
        let folder = dir.join(sub);
        let entries = fs::read_dir(&folder).with_context(|| {
            format!(
                "cannot read the Maildir folder {}; [mailbox] maildir must name a Maildir (with cur/, new/ and tmp/)",
                folder.display()
            )
        })?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.file_type()?.is_file() {
                continue;
            }
            if sub == "cur" && flags(&name).contains('F') {
                continue;
            }
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths)
}

/// The flags of a Maildir file name (`uniq:2,FS` has `FS`).
fn flags(name: &str) -> &str {
    name.rsplit_once(":2,").map_or("", |(_, flags)| flags)
}

/// The unique part of a Maildir file name, before its `:2,` info.
fn unique(name: &str) -> &str {
    name.split_once(':').map_or(name, |(unique, _)| unique)
}

/// Moves a processed message to the processed folder, marked seen.
fn file_away(dir: &Path, path: &Path, name: &str) -> anyhow::Result<()> {
    let processed = dir.join(PROCESSED);
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(processed.join(sub))
            .with_context(|| format!("cannot create {}", processed.display()))?;
    }
    let target = processed.join("cur").join(format!("{}:2,S", unique(name)));
    rename(path, &target)
}

/// Leaves a message in the mailbox, in `cur/` and flagged.
fn flag(dir: &Path, path: &Path, name: &str) -> anyhow::Result<()> {
    let mut flags: Vec<char> = flags(name).chars().chain(['F']).collect();
    flags.sort_unstable();
    flags.dedup();
    let flags: String = flags.into_iter().collect();
    let target = dir.join("cur").join(format!("{}:2,{flags}", unique(name)));
    rename(path, &target)
}

/// Renames a message; one already gone was moved by another reader (a
/// `dripline mailbox` from cron beside `serve`), which is fine: what it
/// says is recorded idempotently.
fn rename(path: &Path, target: &Path) -> anyhow::Result<()> {
    match fs::rename(path, target) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !path.exists() => Ok(()),
        result => result
            .with_context(|| format!("cannot move {} to {}", path.display(), target.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_unique_part_and_flags() {
        assert_eq!(unique("1733.M1P2.host:2,FS"), "1733.M1P2.host");
        assert_eq!(flags("1733.M1P2.host:2,FS"), "FS");
        assert_eq!(unique("1733.M1P2.host"), "1733.M1P2.host");
        assert_eq!(flags("1733.M1P2.host"), "");
    }
}
