//! One `run` or `serve` per SQLite state file: an OS file lock beside it.
//!
//! The lock is held by an open file, so the operating system releases it
//! when the process ends in any way, SIGKILL included: there is never a
//! stale lock to clean up by hand.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// Another process holds the state file.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} is in use by another dripline (`run` or `serve`); this one exits without sending anything. Wait for the other to finish, or stop the service",
    state.display()
)]
pub struct Locked {
    state: PathBuf,
}

/// Held while a process works on a state file; released on drop.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Takes the lock for the state file `state`, or fails at once.
    pub fn acquire(state: &Path) -> anyhow::Result<StateLock> {
        let mut name = state.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|err| {
                anyhow::anyhow!("cannot create {} for the state file: {err}", dir.display())
            })?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| {
                anyhow::anyhow!("cannot open the lock file {}: {err}", path.display())
            })?;
        match file.try_lock() {
            Ok(()) => Ok(StateLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Locked {
                state: state.to_path_buf(),
            }
            .into()),
            Err(std::fs::TryLockError::Error(err)) => {
                Err(anyhow::anyhow!("cannot lock {}: {err}", path.display()))
            }
        }
    }
}
