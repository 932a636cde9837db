//! The outbox transport: each message becomes an `.eml` file, so a project
//! runs end to end with no mail server (the default).
//!
//! A file is written under a temporary name and linked into place, so a
//! reader never sees half a message. A message written twice (a resend
//! after a crash) gets a second file (`-2.eml`) rather than replacing the
//! first, so duplicates stay visible. Each file starts with a
//! `Return-Path:` naming the envelope sender, as a mail server's local
//! delivery writes it, so the VERP address shows.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{DeliveryError, Parcel, Transport};

/// Writes messages into a folder.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// An outbox writing into `dir`, created if needed.
    pub fn new(dir: &Path) -> io::Result<Outbox> {
        fs::create_dir_all(dir)?;
        Ok(Outbox {
            dir: dir.to_path_buf(),
        })
    }

    fn write(&self, parcel: &Parcel) -> io::Result<PathBuf> {
        let stem: String = parcel
            .message_id
            .trim_start_matches('<')
            .split('@')
            .next()
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let staging = tempfile::NamedTempFile::with_prefix_in(".writing-", &self.dir)?;
        let mut bytes = format!("Return-Path: <{}>\r\n", parcel.from).into_bytes();
        bytes.extend_from_slice(&parcel.bytes);
        fs::write(staging.path(), bytes)?;
        for copy in 1.. {
            let name = match copy {
                1 => format!("{stem}.eml"),
                n => format!("{stem}-{n}.eml"),
            };
            let target = self.dir.join(name);
            match fs::hard_link(staging.path(), &target) {
                Ok(()) => return Ok(target),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
        unreachable!("an unbounded range always yields another name")
    }
}

impl Transport for Outbox {
    async fn send(&self, parcel: &Parcel) -> Result<String, DeliveryError> {
        match self.write(parcel) {
            Ok(path) => Ok(format!("written to {}", path.display())),
            // A full disk or a permission problem may pass; try again later.
            Err(err) => Err(DeliveryError::Transient(format!(
                "cannot write to the outbox {}: {err}",
                self.dir.display()
            ))),
        }
    }
}
