//! [`LogReader`]: openraft's read-only view of one rocklog group.

use std::fmt::{self, Debug};
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use ::openraft::{ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, RaftTypeConfig, StorageError};

use super::codec::{decode_entry, rocklog_error};
use crate::{Error, Group, LogState};

/// How often a range read retries when a purge moved the log's start under it.
const READ_RETRIES: usize = 3;

/// The default bound on one [`RaftLogReader::limited_get_log_entries`] answer, in payload
/// bytes (always at least one entry).
pub const DEFAULT_MAX_READ_BYTES: u64 = 4 << 20;

/// openraft's [`RaftLogReader`] over one rocklog [`Group`]: the `LogReader` of
/// [`LogStorage`](super::LogStorage), which replication tasks use concurrently with it.
/// Cheap to clone; reads are plain synchronous RocksDB reads (microseconds when cached).
pub struct LogReader<C: RaftTypeConfig> {
    group: Group,
    max_read_bytes: u64,
    _config: PhantomData<fn() -> C>,
}

impl<C: RaftTypeConfig> Clone for LogReader<C> {
    fn clone(&self) -> Self {
        LogReader { group: self.group.clone(), max_read_bytes: self.max_read_bytes, _config: PhantomData }
    }
}

impl<C: RaftTypeConfig> Debug for LogReader<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader")
            .field("group", &self.group.id())
            .field("max_read_bytes", &self.max_read_bytes)
            .finish()
    }
}

impl<C: RaftTypeConfig> LogReader<C> {
    pub(crate) fn new(group: Group) -> Self {
        LogReader { group, max_read_bytes: DEFAULT_MAX_READ_BYTES, _config: PhantomData }
    }

    pub(crate) fn set_max_read_bytes(&mut self, max_read_bytes: u64) {
        self.max_read_bytes = max_read_bytes;
    }

    /// The rocklog group read.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// The group's log state; a group that does not exist yet is an empty log.
    pub(crate) fn state(&self) -> Result<LogState, StorageError<C::NodeId>> {
        match self.group.log_state() {
            Ok(state) => Ok(state),
            Err(Error::GroupNotFound(_)) => Ok(LogState::default()),
            Err(e) => Err(rocklog_error(ErrorSubject::Logs, ErrorVerb::Read, &e)),
        }
    }

    /// The entries of `[lo, hi)` present in the log, in order, stopping after
    /// `max_bytes` of payload (at least one entry): openraft's "entries not found are
    /// allowed". The start is moved up to the first entry, and moved again if a purge
    /// commits between reading the log's bounds and its entries.
    pub(crate) fn read(
        &self,
        lo: u64,
        hi: Option<u64>,
        max_bytes: Option<u64>,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        let mut last_error = None;
        for _ in 0..READ_RETRIES {
            let Some(first) = self.state()?.first_index else {
                return Ok(Vec::new());
            };
            let lo = lo.max(first);
            if hi.is_some_and(|hi| hi <= lo) {
                return Ok(Vec::new());
            }
            let read = match hi {
                Some(hi) => self.group.entries(lo..hi, max_bytes),
                None => self.group.entries(lo.., max_bytes),
            };
            match read {
                Ok(entries) => return entries.iter().map(decode_entry::<C>).collect(),
                Err(Error::GroupNotFound(_)) => return Ok(Vec::new()),
                Err(e @ Error::Compacted { .. }) => last_error = Some(e),
                Err(e) => return Err(rocklog_error(ErrorSubject::Logs, ErrorVerb::Read, &e)),
            }
        }
        let e = last_error.unwrap_or(Error::Closed);
        Err(rocklog_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    }

    /// The full log id of the entry at `index`, `None` when it is not in the log.
    pub(crate) fn log_id(&self, index: u64) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        use ::openraft::RaftLogId;
        let entry = self
            .group
            .entry(index)
            .map_err(|e| rocklog_error(ErrorSubject::LogIndex(index), ErrorVerb::Read, &e))?;
        entry.map(|e| decode_entry::<C>(&e).map(|e| e.get_log_id().clone())).transpose()
    }
}

/// `range` as `[lo, hi)`; `hi` is `None` for "to the end". `None` for an empty range.
pub(crate) fn half_open(range: &impl RangeBounds<u64>) -> Option<(u64, Option<u64>)> {
    let lo = match range.start_bound() {
        Bound::Included(&i) => i,
        Bound::Excluded(&i) => i.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let hi = match range.end_bound() {
        Bound::Included(&i) => i.checked_add(1),
        Bound::Excluded(&i) => Some(i),
        Bound::Unbounded => None,
    };
    Some((lo, hi))
}

impl<C: RaftTypeConfig> RaftLogReader<C> for LogReader<C> {
    /// The entries of `range` that are in the log (purged and future ones are left out).
    ///
    /// Fails with a `StorageError` when RocksDB fails, the engine is closed, or a stored
    /// entry does not decode.
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        match half_open(&range) {
            Some((lo, hi)) => self.read(lo, hi, None),
            None => Ok(Vec::new()),
        }
    }

    /// Like `try_get_log_entries(start..end)`, but stops after the reader's byte bound
    /// (`LogStorage::with_max_read_bytes`), always returning at least one entry.
    ///
    /// Fails as `try_get_log_entries` does.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        self.read(start, Some(end), Some(self.max_read_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::half_open;

    #[test]
    fn ranges_become_half_open() {
        assert_eq!(half_open(&(3..7)), Some((3, Some(7))));
        assert_eq!(half_open(&(3..=7)), Some((3, Some(8))));
        assert_eq!(half_open(&(..)), Some((0, None)));
        assert_eq!(half_open(&(5..=u64::MAX)), Some((5, None)));
        let excluded = (std::ops::Bound::Excluded(u64::MAX), std::ops::Bound::Unbounded);
        assert_eq!(half_open(&excluded), None);
    }
}
