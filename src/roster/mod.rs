//! Keeps each drip's roster in the state in step with its list file and
//! its confirmed signups, so that a pass loads only who is due.
//!
//! The list is read again only when its size or modification time changed
//! and its content hash too; then it is streamed a record at a time: a row
//! whose hash the roster holds is unchanged and not even parsed, a new or
//! changed one is parsed and stored, and rows whose hashes were not seen
//! left the list. A second row of an address the roster holds, while that
//! address's stored row is still in the file, is reported and skipped: the
//! row dripline already has wins. The problems found are stored with the
//! stamp and shown by every pass, as if the list had been read.

pub mod row;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use crate::diagnostic::{InvalidInput, Report};
use crate::engine::Drip;
use crate::signup;
use crate::store::roster::{DripKey, ListStamp, Member, Roster};
use crate::store::signups::Signups;
use crate::subscribers::{self, Columns, Reader};

use self::row::{ByHash, RowHashes};

/// New or changed rows handed from the reader to the store at a time.
const CHUNK: usize = 2048;

/// The roster key of a drip.
pub fn key_of(drip: &Drip) -> DripKey {
    DripKey {
        sequence: drip.sequence.id.clone(),
        list: drip.list.clone(),
    }
}

/// Brings the drip's roster up to date with its list and signups; returns
/// how many rows of the list are bad (each logged).
pub async fn sync(store: &(impl Roster + Signups), drip: &Drip) -> anyhow::Result<u64> {
    let key = key_of(drip);
    let mut stamp = stamp_of(drip)?;
    let stamp = match unchanged(store, &key, &drip.list_file, &mut stamp).await? {
        Some(known) => known,
        None => read(store, drip, &key, stamp).await?,
    };
    for problem in stamp.problems.lines() {
        tracing::warn!("{problem}");
    }
    add_signups(store, &key).await?;
    Ok(u64::try_from(stamp.bad_rows).unwrap_or(0))
}

/// The stamp of the drip's list as it is now, without its content hash.
fn stamp_of(drip: &Drip) -> anyhow::Result<ListStamp> {
    let file = &drip.list_file;
    let metadata = std::fs::metadata(file)
        .with_context(|| format!("cannot read the list {}", file.display()))?;
    let modified = metadata
        .modified()
        .ok()
        .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| {
            i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
        });
    Ok(ListStamp {
        size: i64::try_from(metadata.len()).unwrap_or(i64::MAX),
        modified,
        content: String::new(),
        layout: format!("{:?}", drip.columns),
        problems: String::new(),
        bad_rows: 0,
    })
}

/// The stored stamp, when the list is the one it describes: the same size,
/// time and mapping, or else the same content (the stamp is then brought
/// up to date). Fills in `stamp`'s content hash when it had to read it.
async fn unchanged(
    store: &impl Roster,
    key: &DripKey,
    file: &Path,
    stamp: &mut ListStamp,
) -> anyhow::Result<Option<ListStamp>> {
    let stored = store.stamp(key).await?;
    if let Some(stored) = stored.as_ref().filter(|stored| same_file(stored, stamp)) {
        return Ok(Some(stored.clone()));
    }
    let path = file.to_owned();
    stamp.content = tokio::task::spawn_blocking(move || content_hash(&path))
        .await
        .context("the list reader stopped")??;
    match stored {
        Some(stored) if stored.content == stamp.content && stored.layout == stamp.layout => {
            let touched = ListStamp {
                size: stamp.size,
                modified: stamp.modified,
                ..stored
            };
            store.save_stamp(key, &touched).await?;
            Ok(Some(touched))
        }
        _ => Ok(None),
    }
}

/// Whether the file is, by its size, time and column mapping, the one read.
fn same_file(stored: &ListStamp, now: &ListStamp) -> bool {
    stored.size == now.size && stored.modified == now.modified && stored.layout == now.layout
}

/// The SHA-256 of a file, in hex.
fn content_hash(path: &Path) -> anyhow::Result<String> {
    let mut file = BufReader::new(
        File::open(path).with_context(|| format!("cannot read the list {}", path.display()))?,
    );
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read the list {}", path.display()))?;
        if read == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

/// A new or changed row, and its line.
struct Change {
    line: usize,
    member: Member,
    /// The address as written.
    address: String,
}

/// What streaming a list found, besides its new and changed rows.
struct Scanned {
    /// The hash of every row read, with its line.
    seen: ByHash<i64, u32>,
    /// Stored rows no longer in the list, by hash.
    gone: Vec<i64>,
    report: Report,
    file: PathBuf,
}

/// Reads the list into the roster; returns the stamp it saved.
async fn read(
    store: &(impl Roster + Signups),
    drip: &Drip,
    key: &DripKey,
    mut stamp: ListStamp,
) -> anyhow::Result<ListStamp> {
    let stored = store.row_hashes(key).await?;
    // With nothing stored, no row can be a second row of a stored address:
    // rows go to the store as they are read, so a first import of a large
    // list is never held whole.
    let streaming = stored.is_empty();
    let (sender, mut receiver) = mpsc::channel(2);
    let (file, columns) = (drip.list_file.clone(), drip.columns.clone());
    let reader = tokio::task::spawn_blocking(move || scan(&file, &columns, stored, &sender));
    let mut held = Vec::new();
    while let Some(chunk) = receiver.recv().await {
        if streaming {
            let members: Vec<Member> = chunk
                .into_iter()
                .map(|change: Change| change.member)
                .collect();
            store.upsert(key, &members).await?;
        } else {
            held.extend(chunk);
        }
    }
    let mut scanned = reader.await.context("the list reader stopped")??;
    store.remove_rows(key, &scanned.gone).await?;
    let fresh = drop_duplicates(store, key, held, &mut scanned).await?;
    store.upsert(key, &fresh).await?;
    stamp.bad_rows = scanned.report.error_count() as i64;
    stamp.problems = scanned
        .report
        .problems()
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    store.save_stamp(key, &stamp).await?;
    Ok(stamp)
}

/// The changes that are not a second row of an address whose stored row
/// is still in the list; those are reported.
async fn drop_duplicates(
    store: &impl Roster,
    key: &DripKey,
    changes: Vec<Change>,
    scanned: &mut Scanned,
) -> anyhow::Result<Vec<Member>> {
    let emails: Vec<String> = changes.iter().map(|c| c.member.email.clone()).collect();
    let stored = store.stored_hashes(key, &emails).await?;
    let mut fresh = Vec::with_capacity(changes.len());
    for change in changes {
        let kept = stored
            .get(&change.member.email)
            .filter(|hash| Some(**hash) != change.member.row_hash)
            .and_then(|hash| scanned.seen.get(hash));
        match kept {
            Some(&kept) => scanned.report.push(subscribers::second_row(
                &scanned.file,
                &change.address,
                change.line,
                kept as usize,
            )),
            None => fresh.push(change.member),
        }
    }
    Ok(fresh)
}

/// Streams the list file against the stored row hashes, sending new and
/// changed rows on `sender` a chunk at a time.
fn scan(
    file: &PathBuf,
    columns: &Columns,
    stored: RowHashes,
    sender: &mpsc::Sender<Vec<Change>>,
) -> anyhow::Result<Scanned> {
    let reader =
        File::open(file).with_context(|| format!("cannot read the list {}", file.display()))?;
    let mut rows = Reader::open(BufReader::new(reader), file, columns)
        .map_err(|list| InvalidInput(list.report))?;
    let mut scan = Scan {
        hasher: row::RowHasher::new(&rows.layout()),
        seen: ByHash::with_capacity_and_hasher(stored.len(), Default::default()),
        report: std::mem::take(&mut rows.report),
        stored,
        parsed: ByHash::default(),
        subscribers: 0,
    };
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut record = csv::ByteRecord::new();
    while let Some(line) = rows.next_record(&mut record) {
        let change = match line {
            Ok(line) => scan.row(&rows, &record, line),
            Err(problem) => {
                scan.report.push(problem);
                None
            }
        };
        chunk.extend(change);
        if chunk.len() == CHUNK && sender.blocking_send(std::mem::take(&mut chunk)).is_err() {
            anyhow::bail!("the pass stopped while reading {}", file.display());
        }
    }
    if !chunk.is_empty() && sender.blocking_send(chunk).is_err() {
        anyhow::bail!("the pass stopped while reading {}", file.display());
    }
    if scan.subscribers == 0 && !scan.report.has_errors() {
        scan.report.push(rows.empty());
    }
    Ok(Scanned {
        seen: scan.seen,
        gone: scan.stored.into_iter().collect(),
        report: scan.report,
        file: file.clone(),
    })
}

/// Where the stream of one list stands. Held for the whole list, so it
/// keeps hashes, not rows: about 40 bytes a row.
struct Scan {
    hasher: row::RowHasher,
    /// Stored rows not seen yet, by hash.
    stored: RowHashes,
    /// The hash of every row read, with its line.
    seen: ByHash<i64, u32>,
    /// The addresses of the rows parsed, by key hash, with their line.
    parsed: ByHash<u128, u32>,
    report: Report,
    /// Good rows, unchanged ones included.
    subscribers: u64,
}

impl Scan {
    /// Takes the record on `line`: a new or changed row, or `None` (an
    /// unchanged row, or one reported and skipped).
    fn row(
        &mut self,
        rows: &Reader<impl Read>,
        record: &csv::ByteRecord,
        line: usize,
    ) -> Option<Change> {
        let hash = self.hasher.hash(record);
        let first = *self.seen.entry(hash).or_insert(line as u32) as usize;
        if first == line && self.stored.remove(&hash) {
            self.subscribers += 1;
            return None;
        }
        let (subscriber, warning) = rows
            .subscriber(record, line)
            .map_err(|problem| self.report.push(problem))
            .ok()?;
        if first != line {
            // The very same row again.
            self.report.push(rows.duplicate(&subscriber, line, first));
            return None;
        }
        if let Some(warning) = warning {
            self.report.push(warning);
        }
        let key = subscriber.key();
        let first = *self
            .parsed
            .entry(row::key_hash(&key))
            .or_insert(line as u32) as usize;
        if first != line {
            self.report.push(rows.duplicate(&subscriber, line, first));
            return None;
        }
        self.subscribers += 1;
        Some(Change {
            line,
            member: Member {
                email: key,
                row_hash: Some(hash),
                active: !subscriber.unsubscribed,
                row: row::encode(&subscriber),
                position: line as i64,
            },
            address: subscriber.email.to_string(),
        })
    }
}

/// Adds the drip's confirmed signups that its roster does not hold yet: a
/// list row of the same address wins, and one added before is not read again.
async fn add_signups(store: &(impl Roster + Signups), key: &DripKey) -> anyhow::Result<()> {
    let confirmed = store.confirmed_outside(key).await?;
    let members: Vec<Member> = confirmed
        .iter()
        .filter_map(signup::subscriber)
        .map(|subscriber| Member {
            email: subscriber.key(),
            row_hash: None,
            active: true,
            row: row::encode(&subscriber),
            position: i64::MAX,
        })
        .collect();
    if !members.is_empty() {
        store.add_absent(key, &members).await?;
    }
    Ok(())
}
