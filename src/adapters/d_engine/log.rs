//! d-engine's `LogStore` over a rocklog group.

use std::ops::RangeInclusive;

use async_trait::async_trait;
use d_engine_core::{Error as DError, LogStore as DLogStore};
use d_engine_proto::common::{Entry as DEntry, LogId as DLogId};

use super::bridge;
use super::codec::{decode_entry, encode_entry};
use crate::config::Durability;
use crate::error::Error;
use crate::handle::Group;
use crate::records::{Entry, LogId};
use crate::state::LogState;

/// d-engine's log store over one rocklog group: its entries and purge boundary.
///
/// Writes are meant to come from one task at a time, as d-engine's IO thread issues them:
/// [`persist_entries`](DLogStore::persist_entries) looks at the log before it appends.
#[derive(Clone, Debug)]
pub struct DEngineLogStore {
    group: Group,
}

impl DEngineLogStore {
    pub(super) fn new(group: Group) -> Self {
        DEngineLogStore { group }
    }

    /// The rocklog group holding the log.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// The group's log state; a group never written has the empty one.
    fn log_state(&self) -> Result<LogState, Error> {
        match self.group.log_state() {
            Err(Error::GroupNotFound(_)) => Ok(LogState::default()),
            other => other,
        }
    }

    fn decode(&self, entries: &[Entry]) -> Result<Vec<DEntry>, DError> {
        entries.iter().map(|e| decode_entry(self.group.id(), e).map_err(DError::from)).collect()
    }

    /// The part of `entries` (contiguous) that is not in the log yet.
    ///
    /// Entries at or below the purge boundary are covered by a snapshot: skipped. Entries
    /// overlapping the log are skipped when the last overlapping one has the stored term:
    /// by Raft's Log Matching Property, logs that agree on an entry's index and term agree
    /// on every entry up to it. Otherwise there is a conflict, and all of them are appended,
    /// which replaces the log from the first of them on in one atomic batch.
    fn unwritten<'a>(&self, entries: &'a [DEntry]) -> Result<&'a [DEntry], Error> {
        let state = self.log_state()?;
        let purged = state.purged_index();
        let entries = match purged {
            Some(p) => &entries[entries.partition_point(|e| e.index <= p)..],
            None => entries,
        };
        let Some(last) = state.first_index.and(state.last_log_id) else { return Ok(entries) };
        let overlap = entries.partition_point(|e| e.index <= last.index);
        match overlap.checked_sub(1).map(|i| &entries[i]) {
            Some(probe) if self.group.term(probe.index)? == Some(probe.term) => Ok(&entries[overlap..]),
            _ => Ok(entries),
        }
    }

    fn check_contiguous(&self, entries: &[DEntry]) -> Result<(), Error> {
        match entries.windows(2).find(|w| Some(w[1].index) != w[0].index.checked_add(1)) {
            Some(w) => {
                Err(Error::NonContiguous { group: self.group.id(), previous: w[0].index, index: w[1].index })
            }
            None => Ok(()),
        }
    }

    async fn append(&self, entries: &[DEntry]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let encoded: Vec<Entry> = entries.iter().map(encode_entry).collect();
        self.group.append(&encoded).await
    }
}

#[async_trait]
impl DLogStore for DEngineLogStore {
    /// Appends `entries` (consecutive indexes), durable when this returns under
    /// `Durability::Sync`. Entries already in the log are skipped, and a conflicting
    /// overlap replaces the log's suffix atomically (see the module docs).
    ///
    /// Fails with a rocklog bad-input error (non-contiguous entries, a gap after the last
    /// entry, terms going backwards, an entry over `max_entry_bytes`), or when the engine
    /// cannot write.
    async fn persist_entries(&self, entries: Vec<DEntry>) -> Result<(), DError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.check_contiguous(&entries)?;
        let unwritten = self.unwritten(&entries)?;
        Ok(self.append(unwritten).await?)
    }

    /// The entry at `index`, `None` outside the log.
    ///
    /// Fails when the stored record is corrupt or the engine is closed.
    async fn entry(&self, index: u64) -> Result<Option<DEntry>, DError> {
        match self.group.entry(index) {
            Ok(Some(e)) => Ok(Some(decode_entry(self.group.id(), &e)?)),
            Ok(None) | Err(Error::GroupNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The entries of `range` the log holds (the range is cut to the log's bounds).
    ///
    /// Fails when a record is corrupt or missing inside the log, or the engine is closed.
    fn get_entries(&self, range: RangeInclusive<u64>) -> Result<Vec<DEntry>, DError> {
        // A purge can land between reading the first index and reading the range: retry.
        let mut attempts = 0;
        loop {
            let Some(first) = self.log_state()?.first_index else { return Ok(Vec::new()) };
            let (lo, hi) = ((*range.start()).max(first), *range.end());
            if lo > hi {
                return Ok(Vec::new());
            }
            attempts += 1;
            match self.group.entries(lo..=hi, None) {
                Ok(entries) => return self.decode(&entries),
                Err(Error::Compacted { .. }) if attempts < 3 => {}
                Err(Error::GroupNotFound(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Deletes the entries at `cutoff.index` and below and records `cutoff` as the purge
    /// boundary. Index 0 and a cutoff below the current boundary are no-ops (nothing left
    /// to purge). When the log holds another term at `cutoff.index`, it is not a prefix
    /// of the log the snapshot covers: as Raft's `InstallSnapshot` rule says, the whole log
    /// is discarded (then the boundary recorded), in two durable writes.
    ///
    /// Fails when the engine cannot write.
    async fn purge(&self, cutoff: DLogId) -> Result<(), DError> {
        if cutoff.index == 0 {
            return Ok(());
        }
        let upto = LogId::new(cutoff.term, cutoff.index);
        match self.group.purge(upto).await {
            Ok(()) | Err(Error::BelowPurgeBoundary { .. }) => Ok(()),
            Err(Error::TermMismatch { found, .. }) => {
                tracing::warn!(
                    group = self.group.id(),
                    %upto,
                    stored_term = found,
                    "purge boundary conflicts with the log: discarding the whole log"
                );
                self.group.reset().await?;
                Ok(self.group.purge(upto).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the entries at `from_index` and above (a no-op past the end).
    ///
    /// Fails when `from_index` is at or below the purge boundary, or the engine cannot
    /// write.
    async fn truncate(&self, from_index: u64) -> Result<(), DError> {
        match self.group.truncate(from_index).await {
            Ok(()) | Err(Error::GroupNotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the log from `from_index` on with `new_entries` in one atomic write (one
    /// rocklog append starting at `from_index`, which replaces the suffix in the batch that
    /// adds the entries). With no entries, a truncation.
    ///
    /// Fails, writing nothing, when the entries do not start at `from_index` (a gap), are
    /// not contiguous, or reach at or below the purge boundary; or when the engine cannot
    /// write.
    async fn replace_range(&self, from_index: u64, new_entries: Vec<DEntry>) -> Result<(), DError> {
        let Some(first) = new_entries.first() else { return self.truncate(from_index).await };
        if first.index != from_index {
            let group = self.group.id();
            return Err(Error::Gap { group, index: first.index, expected: from_index }.into());
        }
        self.check_contiguous(&new_entries)?;
        Ok(self.append(&new_entries).await?)
    }

    /// True under `Durability::Sync`: every write resolves after its fsync.
    fn is_write_durable(&self) -> bool {
        self.group.store().config().durability == Durability::Sync
    }

    /// Makes every acknowledged write durable: an fsync under `Durability::Buffered`,
    /// nothing to do under `Sync`. Blocks the calling thread (see the module docs).
    ///
    /// Fails when the fsync fails or the engine is closed.
    fn flush(&self) -> Result<(), DError> {
        if self.is_write_durable() {
            return Ok(());
        }
        Ok(bridge::wait(self.group.store().flush())?)
    }

    /// [`flush`](DLogStore::flush), awaited.
    ///
    /// Fails as `flush` does.
    async fn flush_async(&self) -> Result<(), DError> {
        if self.is_write_durable() {
            return Ok(());
        }
        Ok(self.group.store().flush().await?)
    }

    /// Deletes every entry and the purge boundary; the hard state stays.
    ///
    /// Fails when the engine cannot write.
    async fn reset(&self) -> Result<(), DError> {
        match self.group.reset().await {
            Ok(()) | Err(Error::GroupNotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The index of the last entry, or of the purge boundary when the log is empty; 0
    /// when the group was never written. No disk read.
    fn last_index(&self) -> u64 {
        self.log_state().ok().and_then(|s| s.last_index()).unwrap_or(0)
    }

    /// The log id of the last purged entry, `None` if the log was never purged (or was
    /// reset since).
    ///
    /// Never fails: the boundary is in memory.
    fn load_purge_boundary(&self) -> Result<Option<DLogId>, DError> {
        Ok(self.log_state()?.purged.map(|p| DLogId { term: p.term, index: p.index }))
    }
}
