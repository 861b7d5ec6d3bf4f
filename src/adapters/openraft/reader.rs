//! [`LogReader`]: openraft's read-only view of one rocklog group.

use std::fmt::{self, Debug};
use std::marker::PhantomData;
use std::ops::RangeBounds;

use ::openraft::{ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, RaftTypeConfig, StorageError};

use super::codec::{decode_entry, storage_error};
use crate::adapters::openraft_shared::{Failure, GroupLog};
use crate::handle::Group;

/// openraft's [`RaftLogReader`] over one rocklog [`Group`]: the `LogReader` of
/// [`LogStorage`](super::LogStorage), which replication tasks use concurrently with it.
/// Cheap to clone; reads are plain synchronous RocksDB reads (microseconds when cached).
pub struct LogReader<C: RaftTypeConfig> {
    log: GroupLog,
    _config: PhantomData<fn() -> C>,
}

impl<C: RaftTypeConfig> Clone for LogReader<C> {
    fn clone(&self) -> Self {
        LogReader { log: self.log.clone(), _config: PhantomData }
    }
}

impl<C: RaftTypeConfig> Debug for LogReader<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader")
            .field("group", &self.log.group().id())
            .field("max_read_bytes", &self.log.max_read_bytes())
            .finish()
    }
}

impl<C: RaftTypeConfig> LogReader<C> {
    pub(crate) fn new(group: Group) -> Self {
        LogReader { log: GroupLog::new(group), _config: PhantomData }
    }

    pub(crate) fn log(&self) -> &GroupLog {
        &self.log
    }

    pub(crate) fn set_max_read_bytes(&mut self, max_read_bytes: u64) {
        self.log.set_max_read_bytes(max_read_bytes);
    }

    /// The rocklog group read.
    pub fn group(&self) -> &Group {
        self.log.group()
    }

    /// The entries of `range` in the log, decoded; see [`GroupLog::read`].
    fn read(
        &self,
        range: &impl RangeBounds<u64>,
        limited: bool,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        let decoded: Result<Vec<C::Entry>, Failure> =
            self.log.read(range, limited).and_then(|entries| entries.iter().map(decode_entry::<C>).collect());
        decoded.map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    }

    /// The full log id of the last entry when it lies above `purged` (see
    /// [`GroupLog::last_entry`]).
    pub(crate) fn last_log_id(
        &self,
        purged: Option<u64>,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        use ::openraft::RaftLogId;
        let last = self.log.last_entry(purged).and_then(|e| e.as_ref().map(decode_entry::<C>).transpose());
        let last = last.map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
        Ok(last.map(|e| e.get_log_id().clone()))
    }
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
        self.read(&range, false)
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
        self.read(&(start..end), true)
    }
}
