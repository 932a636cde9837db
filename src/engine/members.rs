//! Where a pass finds the members of a drip to look at: the roster's due
//! members, a page at a time, for a pass that sends; the whole list as it
//! is, for a dry run, which writes nothing (not even the roster).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest as _, Sha256};

use super::{Drip, Looks, read_list};
use crate::roster::{self, row};
use crate::sequence::Sequence;
use crate::signup;
use crate::store::roster::{DripKey, Look, Roster};
use crate::store::signups::Signups;
use crate::store::{SequenceState, Store, Suppression};
use crate::subscribers::List;

/// Due members loaded and decided on together.
const PAGE: usize = 4096;

/// Members of a drip and what the state holds about them.
pub struct Slice {
    pub list: List,
    pub state: SequenceState,
    pub suppressed: HashMap<String, Suppression>,
    /// When each last got an email from any sequence, before this pass.
    pub last_sent: HashMap<String, DateTime<Utc>>,
}

/// The members a pass goes through, a slice at a time.
pub enum Members {
    /// The whole list, once.
    Whole(Option<Slice>),
    /// The roster's due members, by key, from `next` on.
    Due {
        key: DripKey,
        keys: Vec<String>,
        next: usize,
        /// The version of each member of the slice handed out last.
        versions: HashMap<String, i64>,
        /// The new timing fingerprint, once every member was looked at.
        retimed: Option<String>,
    },
}

/// The timing a sequence's next-due times were computed under: when it
/// changes, they are all computed again.
pub struct TimingKey<'a> {
    pub sequence: &'a Sequence,
    pub default_zone: chrono_tz::Tz,
    pub catch_up: Duration,
    /// Whether the runs are too far apart for `catch_up` (late sends count
    /// for their slot's day then).
    pub far_apart: bool,
}

impl TimingKey<'_> {
    fn fingerprint(&self) -> String {
        let settings = &self.sequence.settings;
        let mut hasher = Sha256::new();
        hasher.update(format!(
            "{}|{:?}|{:?}|{}|{}|{}",
            settings.send_at,
            settings.timezone,
            settings.first_step,
            self.default_zone,
            self.catch_up.num_seconds(),
            self.far_apart
        ));
        for step in &self.sequence.steps {
            hasher.update(format!("|{}:{}", step.id, step.wait_days));
        }
        hex::encode(hasher.finalize())
    }
}

impl Members {
    /// The whole list with its signups, read as it is; and its bad rows.
    pub async fn whole(
        store: &(impl Store + Signups),
        drip: &Drip,
    ) -> anyhow::Result<(Members, u64)> {
        let file = drip.list_file.clone();
        let columns = drip.columns.clone();
        let (mut list, state, signups, suppressed, last_sent) = tokio::try_join!(
            async {
                tokio::task::spawn_blocking(move || read_list(&file, &columns))
                    .await
                    .map_err(anyhow::Error::from)?
            },
            store.load(&drip.sequence.id),
            store.confirmed(&drip.sequence.id),
            store.suppressions(),
            store.last_sent(),
        )?;
        signup::merge(&mut list, &signups);
        let bad_rows = list.report.error_count() as u64;
        let slice = Slice {
            list,
            state,
            suppressed,
            last_sent,
        };
        Ok((Members::Whole(Some(slice)), bad_rows))
    }

    /// The roster's members due at `now`, after bringing the roster up to
    /// date; and the list's bad rows.
    pub async fn due(
        store: &(impl Store + Roster + Signups),
        drip: &Drip,
        timing: &TimingKey<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<(Members, u64)> {
        let bad_rows = roster::sync(store, drip).await?;
        let key = roster::key_of(drip);
        let fingerprint = timing.fingerprint();
        let retimed = store.timing(&key).await?.as_deref() != Some(fingerprint.as_str());
        // Under a new timing every member is looked at once; the
        // fingerprint is saved when they all were.
        let mut keys = store.due(&key, (!retimed).then_some(now)).await?;
        // Instances that share the state each start at their own point,
        // so they mostly claim different subscribers.
        let start = usize::try_from(store.walk_offset() % keys.len().max(1) as u64).unwrap_or(0);
        keys.rotate_left(start);
        let members = Members::Due {
            key,
            keys,
            next: 0,
            versions: HashMap::new(),
            retimed: retimed.then_some(fingerprint),
        };
        Ok((members, bad_rows))
    }

    /// Records in the roster when the members of the last slice are next
    /// worth a look (nothing to record for the whole list).
    pub async fn reschedule(&self, store: &impl Roster, looks: Looks) -> anyhow::Result<()> {
        let Members::Due { key, versions, .. } = self else {
            return Ok(());
        };
        let looks: Vec<Look> = looks
            .into_iter()
            .filter_map(|(email, at)| {
                let version = *versions.get(&email)?;
                Some((email, version, at))
            })
            .collect();
        store.reschedule(key, &looks).await
    }

    /// The next slice; `None` when all were handed out.
    pub async fn next(&mut self, store: &impl Roster) -> anyhow::Result<Option<Slice>> {
        match self {
            Members::Whole(slice) => Ok(slice.take()),
            Members::Due {
                key,
                keys,
                next,
                versions,
                retimed,
            } => {
                if *next >= keys.len() {
                    if let Some(fingerprint) = retimed.take() {
                        store.save_timing(key, &fingerprint).await?;
                    }
                    return Ok(None);
                }
                let end = (*next + PAGE).min(keys.len());
                let page = store.page(key, &keys[*next..end]).await?;
                *next = end;
                let mut list = List::default();
                versions.clear();
                for (email, stored, version) in page.members {
                    versions.insert(email.clone(), version);
                    match row::decode(&stored) {
                        Ok(subscriber) => list.subscribers.push(subscriber),
                        Err(err) => tracing::warn!(
                            "{email} in the state of {}: {err}; it is skipped until its row of the list changes",
                            key.list
                        ),
                    }
                }
                Ok(Some(Slice {
                    list,
                    state: page.state,
                    suppressed: page.suppressed,
                    last_sent: page.last_sent,
                }))
            }
        }
    }
}
