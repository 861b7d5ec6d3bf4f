//! State shared by the writer and every handle.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use rocksdb::DB;

use crate::config::Config;
use crate::db::Groups;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::state::GroupState;

/// Where the writer is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Opened, not yet running: commands wait in the channel.
    NotStarted,
    /// Running on its thread.
    Running,
    /// Stopped: the database is closed and its lock released.
    Stopped,
}

/// Counters kept with plain atomics, readable without any metrics recorder.
#[derive(Default)]
pub(crate) struct Counters {
    pub commits: AtomicU64,
    pub syncs: AtomicU64,
    pub commands: AtomicU64,
    pub appended_entries: AtomicU64,
    pub appended_bytes: AtomicU64,
    pub rejected: AtomicU64,
}

/// Failures a test can ask the writer to suffer. Debug builds only: release builds carry
/// no such seam.
#[cfg(debug_assertions)]
#[derive(Default)]
pub(crate) struct Faults {
    pub fail_next_commit: AtomicBool,
    pub panic_next_batch: AtomicBool,
    /// Microseconds the writer sleeps between writing a batch and publishing it.
    pub publish_delay_us: AtomicU64,
}

pub(crate) struct Shared {
    pub config: Config,
    /// The database; `None` once the writer stopped and closed it. Reads hold the read
    /// lock for the duration of one RocksDB call; closing takes the write lock, so the
    /// directory's lock is released as soon as in-flight reads finish.
    pub db: RwLock<Option<DB>>,
    /// Every group's committed state. The writer replaces entries after a batch commits
    /// and before it replies, so a reader that saw a write's `Ok` sees its effect.
    pub groups: RwLock<Groups>,
    /// Why the engine is poisoned, once it is.
    poison: Mutex<Option<String>>,
    poisoned: AtomicBool,
    pub metrics: Metrics,
    pub counters: Counters,
    phase: Mutex<Phase>,
    phase_changed: Condvar,
    /// Wakes handles awaiting replies when the writer stops, so none waits for a reply
    /// to a command the writer never received.
    pub stopped: tokio::sync::Notify,
    stopped_flag: AtomicBool,
    /// Odd while the writer has a batch in RocksDB that it has not published yet: a
    /// reader that finds the data and the published state disagreeing (a purge already
    /// applied, its new first index not yet published) waits and reads again instead of
    /// reporting a hole. Even otherwise; every batch moves it on by two.
    write_epoch: AtomicU64,
    #[cfg(debug_assertions)]
    pub faults: Faults,
}

fn unpoison<T>(r: Result<T, PoisonError<T>>) -> T {
    r.unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(config: Config, db: DB, groups: Groups, metrics: Metrics) -> Self {
        Shared {
            config,
            db: RwLock::new(Some(db)),
            groups: RwLock::new(groups),
            poison: Mutex::new(None),
            poisoned: AtomicBool::new(false),
            metrics,
            counters: Counters::default(),
            phase: Mutex::new(Phase::NotStarted),
            phase_changed: Condvar::new(),
            stopped: tokio::sync::Notify::new(),
            stopped_flag: AtomicBool::new(false),
            write_epoch: AtomicU64::new(0),
            #[cfg(debug_assertions)]
            faults: Faults::default(),
        }
    }

    /// The open database for one read, or `Closed`.
    pub fn db(&self) -> Result<DbGuard<'_>> {
        let guard = unpoison(self.db.read());
        if guard.is_some() { Ok(DbGuard(guard)) } else { Err(Error::Closed) }
    }

    /// Closes the database (waiting for in-flight reads), releasing its lock.
    pub fn close_db(&self) {
        let db = unpoison(self.db.write()).take();
        drop(db);
    }

    pub fn group(&self, id: u64) -> Option<GroupState> {
        unpoison(self.groups.read()).get(&id).copied()
    }

    pub fn groups(&self) -> RwLockReadGuard<'_, Groups> {
        unpoison(self.groups.read())
    }

    /// The writer is about to write a batch (the epoch turns odd).
    pub fn write_started(&self) {
        self.write_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The batch is published, or failed (the epoch turns even).
    pub fn write_done(&self) {
        self.write_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// The current write epoch (see [`Shared::write_started`]).
    pub fn write_epoch(&self) -> u64 {
        self.write_epoch.load(Ordering::SeqCst)
    }

    /// Waits (briefly, on a reader's error path only) until the batch in flight at epoch
    /// `seen` has been published.
    pub fn wait_for_publish(&self, seen: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
        while self.write_epoch() == seen && !seen.is_multiple_of(2) && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
    }

    pub fn publish(&self, changes: &[(u64, Option<GroupState>)]) {
        let mut groups = unpoison(self.groups.write());
        for (id, state) in changes {
            match state {
                Some(s) => groups.insert(*id, *s),
                None => groups.remove(id),
            };
        }
    }

    pub fn poison(&self, reason: String) {
        tracing::error!(%reason, "rocklog engine poisoned: refusing every further write until reopened");
        *unpoison(self.poison.lock()) = Some(reason);
        self.poisoned.store(true, Ordering::Release);
        self.metrics.poisoned.set(1.0);
    }

    /// `Err(Poisoned)` once a write has failed.
    pub fn check_poison(&self) -> Result<()> {
        if !self.poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        let reason = unpoison(self.poison.lock()).clone().unwrap_or_default();
        Err(Error::Poisoned(reason))
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped_flag.load(Ordering::Acquire)
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        unpoison(self.phase.lock())
    }

    pub fn set_running(&self) {
        *self.phase() = Phase::Running;
    }

    /// Marks the writer stopped and wakes everyone waiting for that.
    pub fn set_stopped(&self) {
        *self.phase() = Phase::Stopped;
        self.stopped_flag.store(true, Ordering::Release);
        self.phase_changed.notify_all();
        self.stopped.notify_waiters();
    }

    /// Blocks while the writer is running (used when the last handle goes away, so the
    /// directory's lock is released before `drop` returns).
    pub fn wait_while_running(&self) {
        let mut phase = self.phase();
        while *phase == Phase::Running {
            phase = unpoison(self.phase_changed.wait(phase));
        }
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
