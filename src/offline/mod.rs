//! Offline access to a data directory: what `rocklog inspect`, `dump` and `check` use.
//!
//! [`OfflineLog`] opens a directory **read-only**: it writes nothing, takes no lock and
//! creates no file, so it works on a stopped node and beside a running engine alike. It
//! sees the directory as it was when opened (acknowledged writes still only in the WAL
//! included). Beside a running engine that view ages, and a long scan can fail with a
//! storage error if the engine's compactions delete a file the scan has not read yet:
//! open it again.
//!
//! - [`OfflineLog::groups`] shows what the engine would recover on open (the same code
//!   runs), plus sizes;
//! - [`OfflineLog::entries`] walks one group's records as they are on disk, yielding an
//!   error for each undecodable record or hole and carrying on;
//! - [`OfflineLog::check`] reads every record of both column families and reports each
//!   inconsistency as a [`Finding`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};

use prost::Message;
use rocksdb::{DB, DBRawIteratorWithThreadMode, ReadOptions};

use crate::error::{Error, Result};
use crate::records::{Entry, HardState, LogId};
use crate::state::LogState;
use crate::storage::codec::{self, CLEAN_CLOSE_KEY, FORMAT_KEY, MetaTag};

mod findings;
pub use findings::{CheckReport, Finding};

/// How long [`OfflineLog::open`] keeps trying to get a consistent view beside a live
/// engine that keeps flushing.
const OPEN_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// What changes in a RocksDB directory whenever the engine records a flush or compaction:
/// the manifest `CURRENT` names, and that manifest's length.
fn manifest_stamp(path: &Path) -> Option<(String, u64)> {
    let current = std::fs::read_to_string(path.join("CURRENT")).ok()?;
    let len = std::fs::metadata(path.join(current.trim())).ok()?.len();
    Some((current, len))
}

/// A data directory opened read-only, for inspection and checking.
pub struct OfflineLog {
    db: DB,
    path: PathBuf,
    format_version: u32,
}

impl fmt::Debug for OfflineLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfflineLog")
            .field("path", &self.path)
            .field("format_version", &self.format_version)
            .finish_non_exhaustive()
    }
}

/// One group as the engine would recover it on open, with its size on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupInfo {
    /// The group's id.
    pub id: u64,
    /// First and last entry and purge boundary, exactly as recovery computes them.
    pub log: LogState,
    /// The last saved hard state, if any.
    pub hard_state: Option<HardState>,
    /// The number of indexes from the first to the last entry ([`LogState::len`]). Computed
    /// from the bounds, not by counting: [`OfflineLog::check`] verifies there is no hole.
    pub entry_count: u64,
    /// RocksDB's estimate of the SST bytes holding the group's key range in `log`,
    /// including purged or truncated data not yet compacted away. Entries still only in
    /// the WAL are not counted (see [`OfflineLog::unflushed_writes`]).
    pub approximate_bytes: u64,
}

impl OfflineLog {
    /// Opens the directory at `path` read-only. Works whether or not an engine has it
    /// open; changes nothing in it.
    ///
    /// Fails with [`Error::NotRocklog`] for a missing, empty or foreign directory,
    /// [`Error::UnsupportedVersion`] for a newer format, and [`Error::Storage`] /
    /// [`Error::Io`] when RocksDB or the disk fails. Damaged metadata or entries do not
    /// prevent opening: [`OfflineLog::check`] reports them.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let started = std::time::Instant::now();
        let mut attempt = 1u64;
        loop {
            // A read-only open reads the manifest, then replays the WAL files it finds. If a
            // live engine flushes in between, the flushed WAL can be gone while the manifest
            // read does not name the new SST: a memtable's worth of entries would silently
            // be missing. The flush is in the manifest before the WAL is deleted, so a
            // manifest unchanged across the open means the view is whole. Whatever the
            // open concluded from a view that was not (even "no format-version record",
            // when the flushed WAL held it) is retried too. A file deleted under the open is
            // the same race, reported by RocksDB.
            let before = manifest_stamp(path);
            let result = crate::storage::open_read_only(path);
            let raced = before != manifest_stamp(path)
                || matches!(&result, Err(Error::Storage(e)) if e.to_string().contains("No such file"));
            if !raced {
                let (db, format_version) = result?;
                return Ok(OfflineLog { db, path: path.to_owned(), format_version });
            }
            if started.elapsed() > OPEN_PATIENCE {
                let busy = "a live engine flushed during every read-only open attempt; try again";
                return Err(Error::Io { path: path.to_owned(), source: std::io::Error::other(busy) });
            }
            tracing::debug!(attempt, "the directory changed during the read-only open; retrying");
            std::thread::sleep(std::time::Duration::from_millis((10 * attempt).min(200)));
            attempt += 1;
        }
    }

    /// The directory opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// RocksDB's state of the directory as opened: sizes of the SST, WAL and blob files,
    /// memtables (the WAL replayed at open), L0 files, and the room left on the disk.
    /// Stall and compaction figures describe this read-only view, which runs none.
    ///
    /// Fails with [`Error::Storage`] when RocksDB cannot answer, and [`Error::Io`] when the
    /// directory cannot be listed or its filesystem queried.
    pub fn storage_state(&self) -> Result<crate::storage::StorageState> {
        crate::storage::properties::read(&self.db, &self.path)
    }

    /// The on-disk format version recorded in the directory.
    pub fn format_version(&self) -> u32 {
        self.format_version
    }

    /// Every group, by ascending id, as the engine would recover it.
    ///
    /// Fails where opening an engine on the directory would: with [`Error::Corruption`]
    /// when a metadata record or a group's last entry does not decode (run
    /// [`OfflineLog::check`] to see everything that is wrong), or [`Error::Storage`].
    pub fn groups(&self) -> Result<Vec<GroupInfo>> {
        let (recovered, _) = crate::storage::recover(&self.db)?;
        let mut groups: Vec<GroupInfo> = recovered
            .into_iter()
            .map(|(id, s)| GroupInfo {
                id,
                log: s.log,
                hard_state: s.hard_state,
                entry_count: s.log.len(),
                approximate_bytes: 0,
            })
            .collect();
        groups.sort_unstable_by_key(|g| g.id);
        let bounds: Vec<_> =
            groups.iter().map(|g| (codec::log_key(g.id, 0), codec::log_group_end(g.id))).collect();
        let ranges: Vec<_> = bounds.iter().map(|(lo, hi)| rocksdb::Range::new(lo, hi)).collect();
        let sizes = self.db.get_approximate_sizes_cf(crate::storage::log_cf(&self.db)?, &ranges);
        for (group, size) in groups.iter_mut().zip(sizes) {
            group.approximate_bytes = size;
        }
        Ok(groups)
    }

    /// Writes (puts and deletes) to the `log` column family held in memtables: entries
    /// that were still only in the WAL when the directory was opened, which no group's
    /// [`approximate_bytes`](GroupInfo::approximate_bytes) counts. (A count rather than
    /// bytes: RocksDB reports a memtable's size as its allocated arena, megabytes even for
    /// a few small entries.)
    ///
    /// Fails with [`Error::Storage`].
    pub fn unflushed_writes(&self) -> Result<u64> {
        let log = crate::storage::log_cf(&self.db)?;
        let mut total = 0u64;
        for property in [
            rocksdb::properties::NUM_ENTRIES_ACTIVE_MEM_TABLE,
            rocksdb::properties::NUM_ENTRIES_IMM_MEM_TABLES,
        ] {
            total = total.saturating_add(self.db.property_int_value_cf(log, property)?.unwrap_or(0));
        }
        Ok(total)
    }

    /// The records of `group` whose index lies in `range`, in index order, as they are on
    /// disk: the group need not exist in the metadata. Each item is an entry, or an
    /// [`Error::Corruption`] naming the group and index for a record that does not decode
    /// (or claims another index) and for a hole between two records; the walk carries on
    /// after either. A storage failure ends it with [`Error::Storage`].
    ///
    /// Fails with [`Error::Corruption`] when the `log` column family is missing.
    pub fn entries(&self, group: u64, range: impl RangeBounds<u64>) -> Result<Entries<'_>> {
        let (lo, hi) = codec::index_bounds(&range);
        let mut ro = crate::storage::range_read_options(group, hi);
        ro.fill_cache(false);
        let mut it = self.db.raw_iterator_cf_opt(crate::storage::log_cf(&self.db)?, ro);
        if let Some(lo) = lo {
            it.seek(codec::log_key(group, lo));
        }
        Ok(Entries { it, group, next: None, deferred: None, done: lo.is_none() })
    }

    /// Reads every record of both column families and reports what is inconsistent: see
    /// [`Finding`] for the list. A clean directory gives a report without findings.
    ///
    /// Fails with [`Error::Corruption`] when a column family is missing. A storage error
    /// while scanning (such as a checksum mismatch in an SST file) is reported as
    /// [`Finding::Unreadable`], not as an error.
    pub fn check(&self) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let meta = self.scan_meta(&mut report)?;
        self.scan_log(&meta, &mut report)?;
        Ok(report)
    }

    fn scan_meta(&self, report: &mut CheckReport) -> Result<MetaScan> {
        let mut scan = MetaScan::default();
        let mut it = self.db.raw_iterator_cf_opt(crate::storage::meta_cf(&self.db)?, scan_options());
        it.seek_to_first();
        while let Some((key, value)) = it.item() {
            report.meta_records += 1;
            let undecodable = |group, record: MetaTag, reason: prost::DecodeError| Finding::UndecodableMeta {
                group,
                record: record.name().into(),
                reason: reason.to_string(),
            };
            match codec::parse_meta_key(key) {
                // `open` already decoded the format version; the clean-close record is a
                // cache the engine checks itself and ignores when it does not hold.
                None if key == FORMAT_KEY || key == CLEAN_CLOSE_KEY => {}
                None => report.findings.push(Finding::UnknownMetaKey { key: hex(key) }),
                Some((group, tag)) => {
                    scan.groups.insert(group);
                    match tag {
                        Some(MetaTag::Group) => {
                            scan.markers.insert(group);
                        }
                        Some(MetaTag::HardState) => {
                            if let Err(e) = HardState::decode(value) {
                                report.findings.push(undecodable(group, MetaTag::HardState, e));
                            }
                        }
                        // Opaque to rocklog: nothing to check.
                        Some(MetaTag::Metadata) => {}
                        Some(MetaTag::Purged) => match LogId::decode(value) {
                            Ok(id) => {
                                scan.purged.insert(group, id);
                            }
                            Err(e) => report.findings.push(undecodable(group, MetaTag::Purged, e)),
                        },
                        None => {
                            let tag = key.last().copied().unwrap_or_default();
                            report.findings.push(Finding::UnknownMetaTag { group, tag });
                        }
                    }
                }
            }
            it.next();
        }
        if let Err(e) = it.status() {
            report.findings.push(Finding::Unreadable { column_family: "meta".into(), reason: e.to_string() });
        }
        for &group in scan.groups.difference(&scan.markers) {
            report.findings.push(Finding::MetaWithoutMarker { group });
        }
        Ok(scan)
    }

    fn scan_log(&self, meta: &MetaScan, report: &mut CheckReport) -> Result<()> {
        let mut seen = meta.groups.clone();
        let mut current: Option<GroupScan> = None;
        let mut it = self.db.raw_iterator_cf_opt(crate::storage::log_cf(&self.db)?, scan_options());
        it.seek_to_first();
        while let Some((key, value)) = it.item() {
            report.entries += 1;
            match codec::parse_log_key(key) {
                None => report.findings.push(Finding::MalformedLogKey { key: hex(key) }),
                Some((group, index)) => {
                    if current.as_ref().is_none_or(|c| c.group != group) {
                        if let Some(done) = current.take() {
                            done.finish(&mut report.findings);
                        }
                        seen.insert(group);
                        current = Some(GroupScan::new(group, meta));
                    }
                    if let Some(scan) = current.as_mut() {
                        scan.record(index, value, &mut report.findings);
                    }
                }
            }
            it.next();
        }
        if let Some(done) = current.take() {
            done.finish(&mut report.findings);
        }
        if let Err(e) = it.status() {
            report.findings.push(Finding::Unreadable { column_family: "log".into(), reason: e.to_string() });
        }
        report.groups = seen.len() as u64;
        Ok(())
    }
}

/// Full scans read each block once: keep them out of the block cache, read ahead, and
/// verify checksums.
fn scan_options() -> ReadOptions {
    let mut ro = ReadOptions::default();
    ro.fill_cache(false);
    ro.set_verify_checksums(true);
    ro.set_readahead_size(2 << 20);
    ro
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// What the `meta` scan learnt, for judging the log records.
#[derive(Default)]
struct MetaScan {
    /// Groups with any metadata record.
    groups: BTreeSet<u64>,
    /// Groups with a group marker.
    markers: BTreeSet<u64>,
    /// Decodable purge boundaries.
    purged: BTreeMap<u64, LogId>,
}

/// A run of indexes, aggregated so that a million stray records make one finding.
#[derive(Clone, Copy)]
struct Run {
    first: u64,
    last: u64,
    count: u64,
}

impl Run {
    fn add(run: &mut Option<Run>, index: u64) {
        match run {
            Some(r) => {
                r.last = index;
                r.count += 1;
            }
            None => *run = Some(Run { first: index, last: index, count: 1 }),
        }
    }
}

/// The scan of one group's log records, in index order.
struct GroupScan {
    group: u64,
    has_marker: bool,
    purged: Option<LogId>,
    /// The index the next record must have; a log without a purge boundary starts at 0
    /// or 1, so a first record above 1 means the ones before it are missing. `None` where
    /// nothing is expected: before the first record of a group the engine does not know.
    expected: Option<u64>,
    /// The term of the last decodable entry (or the purge boundary's).
    term: Option<u64>,
    below_boundary: Option<Run>,
    orphans: Option<Run>,
}

impl GroupScan {
    fn new(group: u64, meta: &MetaScan) -> Self {
        let purged = meta.purged.get(&group).copied();
        let has_marker = meta.markers.contains(&group);
        GroupScan {
            group,
            has_marker,
            purged,
            expected: has_marker.then(|| purged.map_or(1, |p| p.index.saturating_add(1))),
            term: purged.map(|p| p.term),
            below_boundary: None,
            orphans: None,
        }
    }

    fn record(&mut self, index: u64, value: &[u8], findings: &mut Vec<Finding>) {
        let group = self.group;
        if !self.has_marker {
            Run::add(&mut self.orphans, index);
        }
        let term = match Entry::decode(value) {
            Ok(e) if e.index != index => {
                findings.push(Finding::IndexMismatch { group, index, stored_index: e.index });
                Some(e.term)
            }
            Ok(e) => Some(e.term),
            Err(e) => {
                findings.push(Finding::UndecodableEntry { group, index, reason: e.to_string() });
                None
            }
        };
        if self.purged.is_some_and(|p| index <= p.index) {
            Run::add(&mut self.below_boundary, index);
            return;
        }
        if let Some(expected) = self.expected
            && index > expected
        {
            findings.push(Finding::Hole { group, from: expected, to: index - 1 });
        }
        self.expected = index.checked_add(1);
        if let (Some(term), Some(previous)) = (term, self.term)
            && term < previous
        {
            findings.push(Finding::TermRegression { group, index, term, previous });
        }
        self.term = term.or(self.term);
    }

    fn finish(self, findings: &mut Vec<Finding>) {
        let group = self.group;
        if let (Some(r), Some(p)) = (self.below_boundary, self.purged) {
            findings.push(Finding::BelowPurgeBoundary {
                group,
                first: r.first,
                last: r.last,
                count: r.count,
                boundary: p.index,
            });
        }
        if let Some(r) = self.orphans {
            findings.push(Finding::LogWithoutGroup { group, first: r.first, last: r.last, count: r.count });
        }
    }
}

/// The records of one group's log, from [`OfflineLog::entries`].
pub struct Entries<'a> {
    it: DBRawIteratorWithThreadMode<'a, DB>,
    group: u64,
    /// The index the next record must have to leave no hole (`None` before the first).
    next: Option<u64>,
    /// A record to yield after the hole reported before it.
    deferred: Option<Result<Entry>>,
    done: bool,
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if let Some(item) = self.deferred.take() {
            return Some(item);
        }
        if self.done {
            return None;
        }
        let group = self.group;
        let Some((key, value)) = self.it.item() else {
            self.done = true;
            return self.it.status().err().map(|e| Err(e.into()));
        };
        let Some((_, index)) = codec::parse_log_key(key).filter(|(g, _)| *g == group) else {
            let error = Error::corruption(group, format!("key {}", hex(key)), "not a log key");
            self.it.next();
            return Some(Err(error));
        };
        let item = codec::decode_entry(group, index, value);
        self.it.next();
        let expected = self.next.replace(index.saturating_add(1));
        match expected {
            Some(from) if index > from => {
                self.deferred = Some(item);
                let what = if from == index - 1 {
                    format!("index {from}")
                } else {
                    format!("indexes {from}..={}", index - 1)
                };
                Some(Err(Error::corruption(group, what, "missing inside the log")))
            }
            _ => Some(item),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::storage::codec::{LOG_CF, META_CF, log_key, meta_key};
    use crate::{Config, LogStore};

    fn ents(range: std::ops::Range<u64>, term: u64) -> Vec<Entry> {
        range.map(|i| Entry::new(i, term, format!("entry {i}"))).collect()
    }

    /// Group 1: 6..=20 (purged at 5@1, terms 1 then 2 from 15), hard state; group 2: empty,
    /// purged at 50@4; group 3: 1..=3 after a truncate; group 4 created then removed.
    async fn write_history(dir: &Path) {
        let store = LogStore::start(Config::new(dir)).unwrap();
        let a = store.group(1);
        a.append(&ents(1..21, 1)).await.unwrap();
        a.append(&ents(15..21, 2)).await.unwrap();
        a.purge(LogId::new(1, 5)).await.unwrap();
        a.save_hard_state(HardState { term: 2, vote: Some(3), commit: 12 }).await.unwrap();
        store.group(2).append(&ents(1..6, 1)).await.unwrap();
        store.group(2).purge(LogId::new(4, 50)).await.unwrap();
        store.group(3).append(&ents(1..10, 1)).await.unwrap();
        store.group(3).truncate(4).await.unwrap();
        store.group(4).append(&ents(1..4, 1)).await.unwrap();
        store.group(4).remove().await.unwrap();
        store.shutdown().await.unwrap();
    }

    /// Writes into the directory with raw RocksDB, as damage would.
    fn plant(dir: &Path, damage: impl FnOnce(&DB, &rocksdb::ColumnFamily, &rocksdb::ColumnFamily)) {
        let mut opts = rocksdb::Options::default();
        opts.set_compression_type(rocksdb::DBCompressionType::None);
        let db = DB::open_cf(&opts, dir, [LOG_CF, META_CF]).unwrap();
        damage(&db, db.cf_handle(LOG_CF).unwrap(), db.cf_handle(META_CF).unwrap());
    }

    #[test]
    fn missing_empty_and_foreign_directories_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let foreign = dir.path().join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::write(foreign.join("notes.txt"), "hello").unwrap();
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        for (path, why) in [(&missing, "does not exist"), (&empty, "empty"), (&foreign, "no RocksDB")] {
            match OfflineLog::open(path) {
                Err(e @ Error::NotRocklog { .. }) => assert!(e.to_string().contains(why), "{e}"),
                other => panic!("{path:?}: {other:?}"),
            }
        }
        assert!(!missing.exists(), "a read-only open creates nothing");
    }

    #[tokio::test]
    async fn groups_show_what_the_engine_recovers() {
        let dir = tempfile::tempdir().unwrap();
        write_history(dir.path()).await;
        let log = OfflineLog::open(dir.path()).unwrap();
        assert_eq!(log.format_version(), crate::FORMAT_VERSION);
        let groups = log.groups().unwrap();
        assert_eq!(groups.iter().map(|g| g.id).collect::<Vec<_>>(), vec![1, 2, 3]);
        let a = groups[0];
        assert_eq!(a.log.first_index, Some(6));
        assert_eq!(a.log.last_log_id, Some(LogId::new(2, 20)));
        assert_eq!(a.log.purged, Some(LogId::new(1, 5)));
        assert_eq!(a.hard_state, Some(HardState { term: 2, vote: Some(3), commit: 12 }));
        assert_eq!(a.entry_count, 15);
        assert_eq!((groups[1].entry_count, groups[1].log.last_log_id), (0, Some(LogId::new(4, 50))));
        assert_eq!(groups[2].log.last_log_id, Some(LogId::new(1, 3)));
        assert_eq!(log.unflushed_writes().unwrap(), 0, "a clean close flushes the memtables");
        let report = log.check().unwrap();
        assert!(report.is_clean(), "{:?}", report.findings);
        assert_eq!((report.entries, report.groups), (18, 3));
        drop(log);
        // A write left only in the WAL (as a crash leaves them) shows as unflushed.
        plant(dir.path(), |db, log, _| {
            db.put_cf(log, log_key(3, 4), Entry::new(4, 1, "x").encode_to_vec()).unwrap();
        });
        assert_eq!(OfflineLog::open(dir.path()).unwrap().unflushed_writes().unwrap(), 1);
    }

    #[tokio::test]
    async fn entries_report_holes_and_corrupt_records_and_carry_on() {
        let dir = tempfile::tempdir().unwrap();
        write_history(dir.path()).await;
        plant(dir.path(), |db, log, _| {
            db.delete_cf(log, log_key(1, 9)).unwrap();
            db.delete_cf(log, log_key(1, 10)).unwrap();
            db.put_cf(log, log_key(1, 12), [0xFF, 0xFF, 0xFF]).unwrap();
        });
        let log = OfflineLog::open(dir.path()).unwrap();
        let items: Vec<_> = log.entries(1, 7..=13).unwrap().collect();
        let shown: Vec<String> = items
            .iter()
            .map(|r| match r {
                Ok(e) => format!("{}@{}", e.index, e.term),
                Err(e) => e.to_string(),
            })
            .collect();
        assert_eq!(shown[..2], ["7@1", "8@1"]);
        assert!(shown[2].contains("group 1 at indexes 9..=10") && shown[2].contains("missing"), "{shown:?}");
        assert_eq!(shown[3], "11@1");
        assert!(matches!(&items[4], Err(Error::Corruption { group: 1, what, .. }) if what == "index 12"));
        assert_eq!(shown[5], "13@1");
        assert_eq!(shown.len(), 6);
        assert_eq!(log.entries(1, 30..).unwrap().count(), 0);
        assert_eq!(log.entries(3, ..).unwrap().filter_map(std::result::Result::ok).count(), 3);
    }

    #[tokio::test]
    async fn check_names_every_kind_of_damage() {
        let dir = tempfile::tempdir().unwrap();
        write_history(dir.path()).await;
        plant(dir.path(), |db, log, meta| {
            db.delete_cf(log, log_key(1, 8)).unwrap();
            db.put_cf(log, log_key(1, 10), [0xFF, 0xFF, 0xFF]).unwrap();
            db.put_cf(log, log_key(1, 11), Entry::new(99, 1, "x").encode_to_vec()).unwrap();
            db.put_cf(log, log_key(1, 17), Entry::new(17, 1, "x").encode_to_vec()).unwrap();
            db.put_cf(log, log_key(1, 2), Entry::new(2, 1, "x").encode_to_vec()).unwrap();
            db.put_cf(log, log_key(4, 1), Entry::new(1, 1, "x").encode_to_vec()).unwrap();
            db.put_cf(meta, meta_key(3, MetaTag::HardState), [0xFF, 0xFF, 0xFF]).unwrap();
            db.put_cf(meta, [0, 0, 0, 0, 0, 0, 0, 9, 42], []).unwrap();
            db.put_cf(meta, b"stray", []).unwrap();
        });
        let log = OfflineLog::open(dir.path()).unwrap();
        assert!(
            matches!(log.groups(), Err(Error::Corruption { group: 3, .. })),
            "the engine would refuse it too"
        );
        let findings = log.check().unwrap().findings;
        let has = |f: &dyn Fn(&Finding) -> bool| findings.iter().any(f);
        assert!(has(&|f| matches!(f, Finding::Hole { group: 1, from: 8, to: 8 })), "{findings:?}");
        assert!(has(&|f| matches!(f, Finding::UndecodableEntry { group: 1, index: 10, .. })));
        assert!(has(&|f| matches!(f, Finding::IndexMismatch { group: 1, index: 11, stored_index: 99 })));
        assert!(has(&|f| matches!(f, Finding::TermRegression { group: 1, index: 17, term: 1, previous: 2 })));
        assert!(has(&|f| matches!(f, Finding::BelowPurgeBoundary { group: 1, first: 2, count: 1, .. })));
        assert!(has(&|f| matches!(f, Finding::LogWithoutGroup { group: 4, first: 1, last: 1, count: 1 })));
        assert!(has(&|f| matches!(f, Finding::UndecodableMeta { group: 3, .. })));
        assert!(has(&|f| matches!(f, Finding::UnknownMetaTag { group: 9, tag: 42 })));
        assert!(has(&|f| matches!(f, Finding::MetaWithoutMarker { group: 9 })));
        assert!(has(&|f| matches!(f, Finding::UnknownMetaKey { .. })));
        assert_eq!(findings.len(), 10, "{findings:#?}");
        let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert!(text.contains(&"group 1: hole: index 8 is missing inside the log".to_string()), "{text:?}");
    }
}
