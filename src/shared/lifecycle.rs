//! Where the writer is in its life, and waiting on it.
//!
//! Handles need two answers: "has the writer stopped?" (so no caller waits for a reply to a
//! command the writer never received) and "wait until it stops" (so dropping the last
//! handle returns only once the database is closed and its directory lock released).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::futures::Notified;

use crate::error::{Error, Result};

/// Why writes acknowledged under `Durability::Buffered` were not fsynced when the writer
/// stopped (see `LogStore::shutdown`).
#[derive(Clone, Debug)]
pub(crate) enum Unsynced {
    /// The final fsync failed (the engine poisoned itself).
    SyncFailed(String),
    /// The engine was poisoned, so no final fsync was attempted.
    Poisoned(String),
}

/// The writer's phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Opened, not yet running: commands wait in the channel.
    NotStarted,
    /// Running on its thread.
    Running,
    /// Stopped: the database is closed and its lock released.
    Stopped,
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    phase: Mutex<Phase>,
    phase_changed: Condvar,
    /// Wakes async waiters (replies, `shutdown`) when the writer stops.
    stopped: tokio::sync::Notify,
    /// `phase == Stopped`, readable without the lock.
    stopped_flag: AtomicBool,
    /// Set by the writer before it stops when buffered writes were left unsynced.
    unsynced: Mutex<Option<Unsynced>>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            phase: Mutex::new(Phase::NotStarted),
            phase_changed: Condvar::new(),
            stopped: tokio::sync::Notify::new(),
            stopped_flag: AtomicBool::new(false),
            unsynced: Mutex::new(None),
        }
    }
}

impl Lifecycle {
    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The writer runs (or is about to: set before its thread is scheduled, so a handle
    /// dropped at once still waits for it).
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

    /// Records, before the writer stops, that buffered writes were left unsynced.
    pub fn set_unsynced(&self, why: Unsynced) {
        *self.unsynced.lock().unwrap_or_else(PoisonError::into_inner) = Some(why);
    }

    /// How the writer's stop left the writes it acknowledged: `Ok` when every one is
    /// fsynced (or none was buffered), the error `LogStore::shutdown` reports otherwise.
    pub fn stop_outcome(&self) -> Result<()> {
        match self.unsynced.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            None => Ok(()),
            Some(Unsynced::SyncFailed(reason)) => Err(Error::WriteFailed(reason.clone())),
            Some(Unsynced::Poisoned(reason)) => Err(Error::Poisoned(reason.clone())),
        }
    }

    /// Whether the writer has stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped_flag.load(Ordering::Acquire)
    }

    /// A future that completes when the writer stops. Enable it (`Notified::enable`)
    /// before checking [`Lifecycle::is_stopped`], so a stop in between is not missed.
    pub fn stopped(&self) -> Notified<'_> {
        self.stopped.notified()
    }

    /// Blocks while the writer is running.
    pub fn wait_while_running(&self) {
        let mut phase = self.phase();
        while *phase == Phase::Running {
            phase = self.phase_changed.wait(phase).unwrap_or_else(PoisonError::into_inner);
        }
    }
}
