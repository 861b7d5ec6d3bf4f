//! Committing on the caller's thread while the writer is idle.
//!
//! A lone caller on an OS thread pays two thread wake-ups per append besides the fsync:
//! the writer's, when the command lands in its channel, and its own, when the writer
//! answers. On a virtual machine each wakes an idle vCPU, and together they cost about as
//! much as the write path itself. So the write side's state ([`Core`]) sits behind a lock
//! shared by the writer thread and the handles, and a blocking call
//! ([`BlockingGroup`](crate::BlockingGroup), [`LogStore::flush_blocking`](crate::LogStore::flush_blocking))
//! whose writer is idle takes that lock and runs the commit itself: the same staging,
//! write, fsync and answers, on its own thread. That is RocksDB's own write-group
//! leader, reduced to the one case it pays off in.
//!
//! A call commits inline only when all of these hold (checked under the lock):
//! - the writer is running and has not begun to stop (`Core::active`): until it runs,
//!   writes wait, and after a shutdown they fail, as every other write does;
//! - no command is pending: none sits in the channel or in a batch the writer has drained
//!   but not committed (`pending`), so an inline commit never overtakes one sent before
//!   it;
//! - the last batch held at most one command: a busy engine keeps batching on the writer
//!   thread, where commands that queue behind one fsync share the next;
//! - [`Config::inline_commits`](crate::Config::inline_commits) is on and
//!   [`Config::linger`](crate::Config::linger) is zero (a linger asks for fuller batches).
//!
//! Otherwise the call goes through the channel like any other. Only one thread holds the
//! lock at a time, so there is still one committer, every rule of the writer holds, and
//! commands that arrive during an inline commit's fsync queue in the channel and form the
//! writer's next batch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

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
}

impl Committer {
    pub(super) fn new(core: Core, enabled: bool) -> Self {
        Committer { core: Mutex::new(core), pending: AtomicUsize::new(0), enabled }
    }

    /// The state, for the writer thread; `None` if a thread panicked while committing
    /// with it, which leaves it unknown.
    pub(super) fn lock(&self) -> Option<MutexGuard<'_, Core>> {
        self.core.lock().ok()
    }

    /// `n` commands the writer drained were committed.
    pub(super) fn committed(&self, n: usize) {
        self.pending.fetch_sub(n, Ordering::AcqRel);
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
    /// answers it as the writer would; gives it back otherwise, to be sent.
    pub fn try_commit(&self, command: Command) -> Result<(), Command> {
        if !self.enabled || self.pending.load(Ordering::Acquire) != 0 {
            return Err(command);
        }
        let mut core = match self.core.try_lock() {
            Ok(core) => core,
            Err(TryLockError::WouldBlock | TryLockError::Poisoned(_)) => return Err(command),
        };
        if !core.active || core.last_batch > 1 || self.pending.load(Ordering::Acquire) != 0 {
            return Err(command);
        }
        core.commit(vec![command]);
        core.last_batch = 1;
        crate::shared::Counters::add(&core.shared.stats.inline_commits, 1);
        Ok(())
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
