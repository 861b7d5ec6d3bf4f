//! Committing on the caller's thread while the writer is idle.
//!
//! A lone caller pays two thread wake-ups per append besides the fsync: the writer's,
//! when the command lands in its channel, and its own, when the writer answers. On a
//! virtual machine each wakes an idle vCPU, and together they cost about as much as the
//! write path itself. So the write side's state ([`Core`]) sits behind a lock shared by
//! the writer thread and the handles, and a caller whose writer is idle takes that lock
//! and runs the commit itself: the same staging, write, fsync and answers, on its own
//! thread. That is RocksDB's own write-group leader, reduced to the one case it pays off
//! in. Two kinds of caller do so:
//! - a blocking call ([`BlockingGroup`](crate::BlockingGroup),
//!   [`LogStore::flush_blocking`](crate::LogStore::flush_blocking)), on its own thread;
//! - an async write ([`Group::append`](crate::Group::append) and the other awaited writes
//!   but `append_then`) on a multi-threaded tokio runtime, inside
//!   [`tokio::task::block_in_place`]: tokio first hands the worker's other tasks to
//!   another thread, so they keep running during the fsync. On a current-thread runtime
//!   (where `block_in_place` panics) or with no runtime, async writes always go through
//!   the writer.
//!
//! A call commits inline only when all of these hold (checked under the lock):
//! - the writer is running and has not begun to stop (`Core::active`): until it runs,
//!   writes wait, and after a shutdown they fail, as every other write does;
//! - no command is pending: none sits in the channel or in a batch the writer has drained
//!   but not committed (`pending`), so an inline commit never overtakes one sent before
//!   it;
//! - the last batch held at most one command, and no batch waits for the syncer's fsync:
//!   a busy engine keeps batching on the writer thread, where commands that queue behind
//!   one fsync share the next;
//! - [`Config::inline_commits`](crate::Config::inline_commits) is on and
//!   [`Config::linger`](crate::Config::linger) is zero (a linger asks for fuller batches).
//!
//! Otherwise the call goes through the channel like any other. Only one thread holds the
//! lock at a time, so there is still one committer, every rule of the writer holds, and
//! commands that arrive during an inline commit's fsync queue in the channel and form the
//! writer's next batch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use super::Core;
use super::command::Command;

/// The write side's state and the count of commands on their way to the writer. See the
/// module docs.
pub(crate) struct Committer {
    core: Mutex<Core>,
    /// Commands sent (or being sent) to the channel and not yet committed.
    pending: AtomicUsize,
    /// `Config::inline_commits` with a zero linger.
    enabled: bool,
    /// Commands in the last batch committed, as a hint read without the lock; the writer
    /// sets it under the lock, and [`Committer::try_commit`] checks it there.
    last_batch: AtomicUsize,
    /// The core's count of batches waiting for the syncer's fsync.
    syncing: Arc<AtomicUsize>,
}

impl Committer {
    pub(super) fn new(core: Core, enabled: bool) -> Self {
        let syncing = Arc::clone(&core.syncing);
        Committer {
            core: Mutex::new(core),
            pending: AtomicUsize::new(0),
            enabled,
            last_batch: AtomicUsize::new(0),
            syncing,
        }
    }

    /// The state, for the writer thread; `None` if a thread panicked while committing
    /// with it, which leaves it unknown.
    pub(super) fn lock(&self) -> Option<MutexGuard<'_, Core>> {
        self.core.lock().ok()
    }

    /// `n` commands the writer drained were committed, as one batch.
    pub(super) fn committed(&self, n: usize) {
        self.last_batch.store(n, Ordering::Release);
        self.pending.fetch_sub(n, Ordering::AcqRel);
    }

    /// Whether an inline commit may happen now, judged without the lock (a hint: the
    /// lock holder decides).
    fn may_commit(&self) -> bool {
        self.enabled
            && self.pending.load(Ordering::Acquire) == 0
            && self.last_batch.load(Ordering::Acquire) <= 1
            && self.syncing.load(Ordering::Acquire) == 0
    }

    /// No caller commits inline any more; stops the syncer after it answered what it
    /// holds. Called once the writer stops, whatever state a panic left.
    pub(super) fn deactivate(&self) {
        let mut core = self.core.lock().unwrap_or_else(PoisonError::into_inner);
        core.active = false;
        if let Some(mut syncer) = core.syncer.take() {
            syncer.stop();
        }
    }

    /// Counts a command about to be sent to the channel until the writer commits it;
    /// dropping the returned guard unsent (a failed or cancelled send) uncounts it.
    pub fn sending(&self) -> Sending<'_> {
        self.pending.fetch_add(1, Ordering::AcqRel);
        Sending { pending: &self.pending, sent: false }
    }

    /// Commits `command` on the calling thread if the writer is idle (module docs), and
    /// answers it as the writer would; gives it back otherwise, to be sent. Under the
    /// lock nothing is syncing, so the commit fsyncs here: it is never pipelined.
    pub fn try_commit(&self, command: Command) -> Result<(), Command> {
        if !self.may_commit() {
            return Err(command);
        }
        let mut core = match self.core.try_lock() {
            Ok(core) => core,
            Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => return Err(command),
        };
        if !core.active || !self.may_commit() {
            return Err(command);
        }
        let answers = core.commit(vec![command]);
        self.last_batch.store(1, Ordering::Release);
        crate::shared::Counters::add(&core.shared.stats.inline_commits, 1);
        drop(core);
        answers.send();
        Ok(())
    }

    /// [`Committer::try_commit`] for an async caller: on a multi-threaded tokio runtime
    /// the commit runs inside [`tokio::task::block_in_place`], which first hands the
    /// worker's other tasks to another thread. Elsewhere (a current-thread runtime, where
    /// `block_in_place` would panic, or no runtime) it gives the command back.
    pub fn try_commit_in_task(&self, command: Command) -> Result<(), Command> {
        if !self.may_commit() {
            return Err(command);
        }
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.try_commit(command))
            }
            _ => Err(command),
        }
    }
}

/// A command counted as pending while it is sent; see [`Committer::sending`].
pub(crate) struct Sending<'a> {
    pending: &'a AtomicUsize,
    sent: bool,
}

impl Sending<'_> {
    /// The command is in the channel: the writer uncounts it once committed.
    pub fn sent(mut self) {
        self.sent = true;
    }
}

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        if !self.sent {
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }
}
