//! [`LogReader`]: openraft 0.10's read-only view of one rocklog group.

use std::fmt::{self, Debug};
use std::io;
use std::ops::RangeBounds;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ::openraft10::entry::RaftEntry;
use ::openraft10::type_config::alias::{CommittedLeaderIdOf, LogIdOf, VoteOf};
use ::openraft10::{OptionalSend, RaftLogReader, RaftTypeConfig};

use super::codec::{LeaderTerm, Meta, decode_entry};
use crate::adapters::openraft_shared::{Failure, GroupLog};
use crate::handle::Group;

/// openraft 0.10's [`RaftLogReader`] over one rocklog [`Group`]: the `LogReader` of
/// [`LogStorage`](super::LogStorage), which replication tasks use concurrently with it.
/// Cheap to clone; reads are plain synchronous RocksDB reads (microseconds when cached),
/// and [`read_vote`](RaftLogReader::read_vote) answers from memory: the vote its
/// `LogStorage` last saved durably.
pub struct LogReader<C: RaftTypeConfig> {
    log: GroupLog,
    /// The metadata the `LogStorage` last saved, shared with it and every reader.
    meta: Arc<Mutex<Meta<C>>>,
}

impl<C: RaftTypeConfig> Clone for LogReader<C> {
    fn clone(&self) -> Self {
        LogReader { log: self.log.clone(), meta: Arc::clone(&self.meta) }
    }
}

impl<C: RaftTypeConfig> Debug for LogReader<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogReader").field("log", &self.log).field("meta", &*self.meta()).finish()
    }
}

impl<C: RaftTypeConfig> LogReader<C> {
    pub(crate) fn new(log: GroupLog, meta: Meta<C>) -> Self {
        LogReader { log, meta: Arc::new(Mutex::new(meta)) }
    }

    /// The rocklog group read.
    pub fn group(&self) -> &Group {
        self.log.group()
    }

    pub(crate) fn log(&self) -> &GroupLog {
        &self.log
    }

    pub(crate) fn log_mut(&mut self) -> &mut GroupLog {
        &mut self.log
    }

    /// The shared metadata. A panic while it was held cannot leave it half-written (it
    /// is only ever replaced whole), so a poisoned lock is used as is.
    pub(crate) fn meta(&self) -> MutexGuard<'_, Meta<C>> {
        self.meta.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C> LogReader<C>
where
    C: RaftTypeConfig,
    CommittedLeaderIdOf<C>: LeaderTerm,
{
    /// The full log id of the last entry when it lies above `purged` (see
    /// [`GroupLog::last_entry`]).
    pub(crate) fn last_log_id(&self, purged: Option<u64>) -> Result<Option<LogIdOf<C>>, io::Error> {
        let last = self.log.last_entry(purged)?;
        Ok(last.as_ref().map(decode_entry::<C>).transpose()?.map(|e| e.log_id()))
    }

    /// The entries of `range` in the log, decoded; see [`GroupLog::read`].
    fn read(&self, range: &impl RangeBounds<u64>, limited: bool) -> Result<Vec<C::Entry>, io::Error> {
        let entries = self.log.read(range, limited)?;
        Ok(entries.iter().map(decode_entry::<C>).collect::<Result<_, Failure>>()?)
    }
}

impl<C> RaftLogReader<C> for LogReader<C>
where
    C: RaftTypeConfig,
    CommittedLeaderIdOf<C>: LeaderTerm,
{
    /// The entries of `range` that are in the log (purged and future ones are left out).
    ///
    /// Fails when RocksDB fails or the engine is closed (an `ErrorKind::Other` error whose
    /// inner error is the [`crate::Error`]), or when a stored entry does not decode
    /// (`InvalidData`).
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, io::Error> {
        self.read(&range, false)
    }

    /// The vote the `LogStorage` last saved; no disk read.
    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(self.meta().vote.clone())
    }

    /// Like `try_get_log_entries(start..end)`, but stops after the reader's byte bound
    /// (`LogStorage::with_max_read_bytes`), always returning at least one entry.
    ///
    /// Fails as `try_get_log_entries` does.
    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> Result<Vec<C::Entry>, io::Error> {
        self.read(&(start..end), true)
    }
}
