//! The exit codes of every command, documented in the README. They are
//! stable: cron jobs and service managers act on them.

use crate::delivery::Unreachable;
use crate::diagnostic::InvalidInput;
use crate::store::Locked;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything worked.
    Success = 0,
    /// An unexpected failure: an I/O error, a bug.
    Failure = 1,
    /// The command line is wrong.
    Usage = 2,
    /// The config, a sequence, a template, a list or an article has errors.
    InvalidInput = 3,
    /// Some emails could not be delivered (they are retried or reported).
    DeliveryFailed = 4,
    /// Another `run` or `serve` holds the state file.
    Locked = 5,
    /// The mail server cannot be reached (or refused the session); the
    /// emails stay due.
    Unreachable = 6,
}

/// The command line asks for something that is not there: a sequence,
/// a step or a subscriber the project does not have. Exit code 2, like a
/// mistake clap catches.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

impl ExitStatus {
    /// The status for an error that reached `main`.
    pub fn of(error: &anyhow::Error) -> ExitStatus {
        if error.downcast_ref::<Usage>().is_some() {
            ExitStatus::Usage
        } else if error.downcast_ref::<InvalidInput>().is_some() {
            ExitStatus::InvalidInput
        } else if error.downcast_ref::<Locked>().is_some() {
            ExitStatus::Locked
        } else if error.downcast_ref::<Unreachable>().is_some() {
            ExitStatus::Unreachable
        } else {
            ExitStatus::Failure
        }
    }
}
