//! [`Group`]: one Raft group's log, as seen through a [`LogStore`].

use std::ops::{Bound, RangeBounds};
use std::time::Instant;

use bytes::Bytes;

use super::{BlockingGroup, LogStore};
use crate::error::{Error, Result};
use crate::metrics::ReadOp;
use crate::records::{Entry, HardState, LogId};
use crate::state::LogState;
use crate::storage::codec;
use crate::writer::command::Op;

/// One group's log and hard state. Cheap to clone; obtained from [`LogStore::group`].
///
/// Writes resolve once durable (per the engine's [`Durability`](crate::Durability)) and
/// are visible to every reader from then on. Writes to one group from one task apply in
/// the order they were awaited; rocklog does not order writes racing from different tasks.
#[derive(Clone, Debug)]
pub struct Group {
    store: LogStore,
    id: u64,
}

impl Group {
    pub(crate) fn new(store: LogStore, id: u64) -> Self {
        Group { store, id }
    }

    /// The group's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The engine this group belongs to.
    pub fn store(&self) -> &LogStore {
        &self.store
    }

    // ----- writes -----

    /// This group's writes as blocking calls, for callers on their own OS threads rather
    /// than in an async runtime: see [`BlockingGroup`].
    pub fn blocking(&self) -> BlockingGroup {
        BlockingGroup::new(self.clone())
    }

    /// Creates the group if it does not exist (idempotent). Appends, purges and hard-state
    /// saves create groups too; this is for registering an empty group up front.
    ///
    /// Fails with [`Error::Poisoned`], [`Error::WriteFailed`] or [`Error::Closed`].
    pub async fn create(&self) -> Result<()> {
        self.store.write(self.id, Op::Create).await
    }

    /// Appends `entries` (consecutive indexes, terms never decreasing), creating the group
    /// if needed. The first entry's index must be at most `last_index + 1`; when it is at
    /// or below `last_index`, the entries from that index on are replaced atomically (Raft's
    /// conflict resolution). A group that never held an entry nor a purge accepts a first
    /// index of 0 or 1. An empty slice is a no-op.
    ///
    /// Fails, writing nothing, with [`Error::Gap`], [`Error::NonContiguous`],
    /// [`Error::BelowPurgeBoundary`], [`Error::BelowFirstIndex`], [`Error::TermRegression`]
    /// or [`Error::EntryTooLarge`]; and with [`Error::Poisoned`], [`Error::WriteFailed`] or
    /// [`Error::Closed`] when the engine cannot write.
    ///
    /// On a multi-threaded tokio runtime, an append made while the writer is idle commits
    /// on the calling thread inside [`tokio::task::block_in_place`]
    /// ([`Config::inline_commits`](crate::Config::inline_commits)); so do the other
    /// awaited writes. Futures joined with it in the same task wait for its fsync.
    pub async fn append(&self, entries: &[Entry]) -> Result<()> {
        self.store.write(self.id, Op::append(entries)).await
    }

    /// Appends like [`Group::append`], but returns as soon as the entries are written and
    /// readable — before their fsync — and reports durability through `on_durable`.
    ///
    /// This is the shape Raft libraries want from a log store (openraft's `append` +
    /// `LogFlushed`): the leader moves on to its next append while this one syncs, so a
    /// single busy group also gets many appends per fsync. `on_durable` is called exactly
    /// once, on the writer thread, after the group commit holding the entries is fsynced
    /// (`Ok`), or with [`Error::WriteFailed`] / [`Error::Closed`] when it cannot be. It must
    /// not block: send on a channel, complete a callback. It is never called when this
    /// returns an error.
    ///
    /// Entries visible before their fsync can still be lost by a crash; a reader of this
    /// group may see them before `on_durable` runs, and if the fsync fails (the engine is
    /// then poisoned) they stay visible until the engine is reopened. Under
    /// [`Durability::Buffered`](crate::Durability::Buffered) `on_durable` runs when the
    /// entries are written, as [`Group::append`] would return.
    ///
    /// Fails like [`Group::append`].
    pub async fn append_then(
        &self,
        entries: &[Entry],
        on_durable: impl FnOnce(Result<()>) + Send + 'static,
    ) -> Result<()> {
        self.store.write_then(self.id, Op::append(entries), on_durable).await
    }

    /// Deletes the entries at `from` and above (a no-op when `from` is past the end).
    ///
    /// Fails with [`Error::GroupNotFound`] or [`Error::BelowPurgeBoundary`] (nothing
    /// written), or as [`Group::append`] does when the engine cannot write.
    pub async fn truncate(&self, from: u64) -> Result<()> {
        self.store.write(self.id, Op::Truncate(from)).await
    }

    /// Deletes the entries at `upto.index` and below and records `upto` as the purge
    /// boundary, creating the group if needed. Purging past the last entry leaves an empty
    /// log whose last log id is `upto` (openraft's rule); purging at the current boundary
    /// again is a no-op. Disk space is reclaimed by RocksDB's background compaction.
    ///
    /// The term check reads nothing from the disk when `upto.index` is in the log's last
    /// term run, the entries appended since the last change of term (or since the engine
    /// opened), as a purge after a snapshot nearly always is. Below it, the writer reads
    /// the entry, and every write queued behind the purge waits for that read.
    ///
    /// Fails, writing nothing, with [`Error::BelowPurgeBoundary`] when `upto` is below the
    /// current boundary, or [`Error::TermMismatch`] when the entry at `upto.index` (or the
    /// boundary itself) has another term; or as [`Group::append`] does when the engine
    /// cannot write.
    pub async fn purge(&self, upto: LogId) -> Result<()> {
        self.store.write(self.id, Op::Purge(upto)).await
    }

    /// Replaces the hard state, creating the group if needed. rocklog does not judge the
    /// values: vote rules belong to the Raft library.
    ///
    /// Fails with [`Error::Poisoned`], [`Error::WriteFailed`] or [`Error::Closed`].
    pub async fn save_hard_state(&self, hard_state: HardState) -> Result<()> {
        self.store.write(self.id, Op::SaveHardState(hard_state)).await
    }

    /// Replaces the group's metadata, creating the group if needed. The metadata is an
    /// opaque byte string kept beside the hard state for what a Raft library persists and
    /// [`HardState`] cannot hold (the openraft adapter keeps its vote, committed log id and
    /// purge boundary there). Like every write it goes through the writer, in order with
    /// the group's other writes, and resolves once durable. [`Group::reset`] keeps it,
    /// [`Group::remove`] deletes it. It is rewritten whole on each save and read from
    /// RocksDB: meant for small records, not for data.
    ///
    /// Fails with [`Error::Poisoned`], [`Error::WriteFailed`] or [`Error::Closed`].
    pub async fn save_metadata(&self, metadata: impl Into<Bytes>) -> Result<()> {
        self.store.write(self.id, Op::SaveMetadata(metadata.into())).await
    }

    /// Deletes every entry and the purge boundary, keeping the group, its hard state and
    /// its metadata: the log starts afresh.
    ///
    /// Fails with [`Error::GroupNotFound`], or as [`Group::append`] does when the engine
    /// cannot write.
    pub async fn reset(&self) -> Result<()> {
        self.store.write(self.id, Op::Reset).await
    }

    /// Deletes the group: its log, purge boundary, hard state and metadata.
    ///
    /// Fails with [`Error::GroupNotFound`], or as [`Group::append`] does when the engine
    /// cannot write.
    pub async fn remove(&self) -> Result<()> {
        self.store.write(self.id, Op::Remove).await
    }

    // ----- reads -----

    /// The metadata last saved with [`Group::save_metadata`], `None` if none was.
    ///
    /// Fails with [`Error::GroupNotFound`], [`Error::Closed`] or [`Error::Storage`].
    pub fn metadata(&self) -> Result<Option<Bytes>> {
        if !self.exists() {
            return Err(Error::GroupNotFound(self.id));
        }
        let db = self.store.shared().db()?;
        let key = codec::meta_key(self.id, codec::MetaTag::Metadata);
        Ok(db.get_pinned_cf(crate::storage::meta_cf(&db)?, key)?.map(|v| Bytes::copy_from_slice(&v)))
    }

    /// True if the group exists.
    pub fn exists(&self) -> bool {
        self.store.shared().group(self.id).is_some()
    }

    /// The group's first and last entry and purge boundary; no disk read.
    ///
    /// Fails with [`Error::GroupNotFound`].
    pub fn log_state(&self) -> Result<LogState> {
        self.store.shared().group(self.id).map(|s| s.log).ok_or(Error::GroupNotFound(self.id))
    }

    /// The index of the first entry, `None` when the log is empty.
    ///
    /// Fails with [`Error::GroupNotFound`].
    pub fn first_index(&self) -> Result<Option<u64>> {
        self.log_state().map(|s| s.first_index)
    }

    /// The index of the last entry, or of the purge boundary when the log is empty.
    ///
    /// Fails with [`Error::GroupNotFound`].
    pub fn last_index(&self) -> Result<Option<u64>> {
        self.log_state().map(|s| s.last_index())
    }

    /// The log id of the last entry, or the purge boundary when the log is empty.
    ///
    /// Fails with [`Error::GroupNotFound`].
    pub fn last_log_id(&self) -> Result<Option<LogId>> {
        self.log_state().map(|s| s.last_log_id)
    }

    /// The log id of the last purged entry.
    ///
    /// Fails with [`Error::GroupNotFound`].
    pub fn purged(&self) -> Result<Option<LogId>> {
        self.log_state().map(|s| s.purged)
    }

    /// The last saved hard state; no disk read.
    ///
    /// Fails with [`Error::GroupNotFound`].
    pub fn hard_state(&self) -> Result<Option<HardState>> {
        self.store.shared().group(self.id).map(|s| s.hard_state).ok_or(Error::GroupNotFound(self.id))
    }

    /// The entry at `index`, or `None` when it is not in the log (purged or past the end).
    ///
    /// Fails with [`Error::GroupNotFound`], [`Error::Corruption`] when the stored record
    /// does not decode or is missing inside the log, [`Error::Closed`], or
    /// [`Error::Storage`].
    pub fn entry(&self, index: u64) -> Result<Option<Entry>> {
        let started = Instant::now();
        let result = self.read_entry(index);
        self.store.shared().metrics.read(ReadOp::Entry).record(started.elapsed());
        result
    }

    /// The entry at `index`, read under the epoch protocol (see `shared::epoch`).
    fn read_entry(&self, index: u64) -> Result<Option<Entry>> {
        let shared = self.store.shared();
        shared.epoch.read(
            || self.log_state(),
            |state| {
                if !state.contains(index) {
                    return Ok(None);
                }
                let db = shared.db()?;
                let key = codec::log_key(self.id, index);
                match db.get_pinned_cf(crate::storage::log_cf(&db)?, key)? {
                    Some(bytes) => codec::decode_entry(self.id, index, &bytes).map(Some),
                    None => Err(missing(self.id, index)),
                }
            },
        )
    }

    /// The term of the entry at `index`: also answered for the purge boundary itself
    /// (Raft needs the term just before the first entry); `None` elsewhere outside the log.
    /// Answered from memory, with no disk read, for the purge boundary and the log's last
    /// term run (the entries appended since the last change of term).
    ///
    /// Fails as [`Group::entry`] does.
    pub fn term(&self, index: u64) -> Result<Option<u64>> {
        let started = Instant::now();
        // Closed is checked first, so that a term is never answered after shutdown, from
        // memory or not.
        drop(self.store.shared().db()?);
        let state = self.store.shared().group(self.id).ok_or(Error::GroupNotFound(self.id))?;
        let result = match (state.log.purged, state.known_term(index)) {
            (Some(p), _) if p.index == index => Ok(Some(p.term)),
            (_, Some(term)) => Ok(Some(term)),
            _ => self.read_entry(index).map(|e| e.map(|e| e.term)),
        };
        self.store.shared().metrics.read(ReadOp::Term).record(started.elapsed());
        result
    }

    /// The entries of `range` that are in the log, in order: the range is cut at the last
    /// entry. With `max_bytes`, stops before the entry that would take the payload total
    /// past it, but always returns at least the first entry (so a caller makes progress).
    /// Reads one consistent snapshot with `iterate_upper_bound` set.
    ///
    /// Fails with [`Error::Compacted`] when the range starts below the first entry (at or
    /// below the purge boundary), [`Error::GroupNotFound`], [`Error::Corruption`] for an
    /// undecodable record or a hole inside the log, [`Error::Closed`], or
    /// [`Error::Storage`].
    pub fn entries(&self, range: impl RangeBounds<u64>, max_bytes: Option<u64>) -> Result<Vec<Entry>> {
        let started = Instant::now();
        let (lo, hi) = codec::index_bounds(&range);
        let from_first = range.start_bound() == Bound::Unbounded;
        let result = match lo {
            None => Ok(Vec::new()),
            Some(lo) => self
                .store
                .shared()
                .epoch
                .read(|| self.log_state(), |state| self.read_range(state, lo, hi, max_bytes, from_first)),
        };
        self.store.shared().metrics.read(ReadOp::Entries).record(started.elapsed());
        result
    }

    fn read_range(
        &self,
        state: &LogState,
        lo: u64,
        hi: Option<u64>,
        max_bytes: Option<u64>,
        from_first: bool,
    ) -> Result<Vec<Entry>> {
        let (Some(first), Some(last)) = (state.first_index, state.last_log_id) else {
            return match state.purged {
                Some(p) if lo <= p.index && !from_first && hi.is_none_or(|h| h > lo) => {
                    Err(Error::Compacted { group: self.id, index: lo, first: p.index.saturating_add(1) })
                }
                _ => Ok(Vec::new()),
            };
        };
        let lo = if from_first { first } else { lo };
        // In u128: a log may end at index u64::MAX, and no u64 lies above that.
        let end = u128::from(last.index) + 1;
        let hi = hi.map_or(end, |h| u128::from(h).min(end));
        if u128::from(lo) >= hi {
            return Ok(Vec::new());
        }
        if lo < first {
            return Err(Error::Compacted { group: self.id, index: lo, first });
        }
        let db = self.store.shared().db()?;
        let mut it = db.raw_iterator_cf_opt(
            crate::storage::log_cf(&db)?,
            crate::storage::range_read_options(self.id, hi.try_into().ok()),
        );
        it.seek(codec::log_key(self.id, lo));
        let mut out = Vec::with_capacity(usize::try_from(hi - u128::from(lo)).unwrap_or(0).min(1024));
        let mut total = 0u64;
        let mut expected = u128::from(lo);
        // Only called below `hi`, so `expected` is a u64 there.
        let hole = |expected: u128| missing(self.id, u64::try_from(expected).unwrap_or(u64::MAX));
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            let index = match codec::parse_log_key(key) {
                Some((g, i)) if g == self.id => i,
                _ => break,
            };
            if u128::from(index) != expected {
                return Err(hole(expected));
            }
            let entry = codec::decode_entry(self.id, index, value)?;
            total = total.saturating_add(entry.payload.len() as u64);
            if max_bytes.is_some_and(|m| total > m) && !out.is_empty() {
                return Ok(out);
            }
            out.push(entry);
            expected += 1;
            it.next();
        }
        it.status()?;
        if expected != hi {
            return Err(hole(expected));
        }
        Ok(out)
    }
}

fn missing(group: u64, index: u64) -> Error {
    Error::corruption(group, format!("index {index}"), "entry missing inside the log")
}
