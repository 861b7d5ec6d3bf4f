//! State shared by the writer and every handle, one concern per file:
//!
//! - [`epoch`]: the write epoch and the read protocol that keeps readers from mistaking a
//!   batch half-way between RocksDB and its published bounds for a hole;
//! - [`poison`]: refusing every write after one failed;
//! - [`lifecycle`]: whether the writer runs, and waiting for it to stop;
//! - [`stats`]: the counters behind [`LogStore::stats`](crate::LogStore::stats);
//! - [`sampler`]: the thread that records RocksDB's state as metrics once a second.
//!
//! [`Shared`] ties them together with the database and the groups' published state. It
//! sits below both the handles and the writer and knows neither.

mod epoch;
mod lifecycle;
mod poison;
pub(crate) mod sampler;
mod stats;
pub(crate) mod trimmer;

use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use rocksdb::DB;

pub use stats::Stats;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::state::GroupState;
use crate::storage::{DbStatistics, Groups, StorageState, StorageStats};
pub(crate) use epoch::WriteEpoch;
pub(crate) use lifecycle::{Lifecycle, Unsynced};
pub(crate) use poison::Poison;
pub(crate) use stats::Counters;

/// Failures a test can ask the writer to suffer. Only with the hidden `__testing` feature:
/// a library user's build carries no such seam.
#[cfg(feature = "__testing")]
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub fail_next_commit: std::sync::atomic::AtomicBool,
    /// Makes the next WAL fsync fail (`Wal::fsync`: `flush()`, the syncer, the final sync).
    pub fail_next_fsync: std::sync::atomic::AtomicBool,
    pub panic_next_batch: std::sync::atomic::AtomicBool,
    /// Microseconds the writer sleeps between writing each batch and publishing it.
    pub publish_delay_us: std::sync::atomic::AtomicU64,
    /// Microseconds the writer thread sleeps between draining a batch and committing it.
    pub hold_drained_us: std::sync::atomic::AtomicU64,
}

/// Everything the writer and the handles share (one `Arc` per engine).
pub(crate) struct Shared {
    pub config: Config,
    /// The database; `None` once the writer stopped and closed it. Reads hold the read
    /// lock for the duration of one RocksDB call; closing takes the write lock, so the
    /// directory's lock is released as soon as in-flight reads finish.
    db: RwLock<Option<DB>>,
    /// Every group's committed state. The writer replaces entries after a batch commits
    /// and before it replies, so a reader that saw a write's `Ok` sees its effect.
    groups: RwLock<Groups>,
    pub epoch: WriteEpoch,
    poison: Poison,
    pub lifecycle: Lifecycle,
    pub stats: Counters,
    /// RocksDB's own counters of the database.
    statistics: DbStatistics,
    pub metrics: Metrics,
    /// Held while the trimmer shrinks or removes an archived WAL file and while a
    /// checkpoint runs: a checkpoint hard-links WAL files (a linked file must not be
    /// shrunk) and lists the WAL archive, then reads each file's size, failing on one
    /// removed in between (`storage::wal_trim`).
    pub wal_removal: Arc<Mutex<()>>,
    #[cfg(feature = "__testing")]
    pub faults: Faults,
}

impl Shared {
    pub fn new(config: Config, db: DB, statistics: DbStatistics, groups: Groups, metrics: Metrics) -> Self {
        Shared {
            config,
            statistics,
            db: RwLock::new(Some(db)),
            groups: RwLock::new(groups),
            epoch: WriteEpoch::default(),
            poison: Poison::default(),
            lifecycle: Lifecycle::default(),
            stats: Counters::default(),
            metrics,
            wal_removal: Arc::default(),
            #[cfg(feature = "__testing")]
            faults: Faults::default(),
        }
    }

    /// RocksDB's counters now (they stay readable after the database closed).
    pub fn storage_stats(&self) -> StorageStats {
        self.statistics.snapshot()
    }

    /// RocksDB's state now: stalls, backlog, memory and sizes.
    ///
    /// Fails with [`Error::Closed`] once the database closed, or as
    /// [`crate::storage::properties::read`] does.
    pub fn storage_state(&self) -> Result<StorageState> {
        let db = self.db()?;
        crate::storage::properties::read(&db, &self.config.path)
    }

    /// The open database for one read, or `Closed`.
    pub fn db(&self) -> Result<DbGuard<'_>> {
        let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
        if guard.is_some() { Ok(DbGuard(guard)) } else { Err(Error::Closed) }
    }

    /// Closes the database (waiting for in-flight reads), releasing its lock. Unless the
    /// engine is poisoned (the disk may be failing), it first writes the clean-close
    /// record (unless the writer is panicking) and flushes the memtables, so the next open
    /// neither replays the WAL nor seeks for every group: a clean stop makes a fast start.
    pub fn close_db(&self) {
        let db = self.db.write().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(db) = &db
            && self.check_poison().is_ok()
        {
            // Only after a clean stop is the published state every write's: a writer that
            // panicked may have written a batch it never published.
            if !std::thread::panicking()
                && let Err(e) = crate::storage::clean_close::write(db, &self.groups())
            {
                tracing::warn!(error = %e, "writing the clean-close record failed; the next open seeks");
            }
            if let Err(e) = crate::storage::flush_memtables(db) {
                tracing::warn!(error = %e, "flushing memtables at close failed; the next open replays the WAL");
            }
        }
        drop(db);
    }

    /// The published state of group `id`, `None` if it does not exist.
    pub fn group(&self, id: u64) -> Option<GroupState> {
        self.groups().get(&id).copied()
    }

    /// Every group's published state.
    pub fn groups(&self) -> RwLockReadGuard<'_, Groups> {
        self.groups.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a committed batch's changes to readers (`None`: the group was removed).
    pub fn publish(&self, changes: &[(u64, Option<GroupState>)]) {
        let mut groups = self.groups.write().unwrap_or_else(PoisonError::into_inner);
        for (id, state) in changes {
            match state {
                Some(s) => groups.insert(*id, *s),
                None => groups.remove(id),
            };
        }
    }

    /// Poisons the engine (see [`poison`]) and says so in the log and the metrics.
    pub fn poison(&self, reason: String) {
        tracing::error!(%reason, "rocklog engine poisoned: refusing every further write until reopened");
        self.poison.set(reason);
        self.metrics.poisoned.set(1.0);
    }

    /// `Err(Poisoned)` once a write has failed.
    pub fn check_poison(&self) -> Result<()> {
        self.poison.check()
    }
}

/// A read guard on the open database.
pub(crate) struct DbGuard<'a>(RwLockReadGuard<'a, Option<DB>>);

impl std::ops::Deref for DbGuard<'_> {
    type Target = DB;
    fn deref(&self) -> &DB {
        // `Shared::db` only builds a guard around `Some`, and the write lock that could
        // take it is excluded while this read guard lives.
        match self.0.as_ref() {
            Some(db) => db,
            None => unreachable!("DbGuard is only built around an open database"),
        }
    }
}
