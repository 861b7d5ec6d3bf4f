//! The writer actor: the one owner of the database's write side.
//!
//! It runs on a dedicated OS thread (never on an async worker: every batch ends in a
//! blocking write + fsync). One turn of its loop, file by file:
//!
//! 1. [`drain`]: block until one command arrives, then take whatever else is already
//!    queued, up to `max_batch_entries` / `max_batch_bytes`; wait for more only up to a
//!    non-zero `linger`, or (with `adaptive_batching`) briefly while the callers the
//!    previous commit just answered are still coming back;
//! 2. [`commit`], the pipeline *stage → write → publish → answer or hand to the syncer*:
//!    - [`staging`] validates each [`command`] against the state the earlier ones leave
//!      and stages it into one `WriteBatch` (a refused command fails alone);
//!    - [`wal`] writes the batch and fsyncs once (per [`Durability`](crate::Durability));
//!      every write and fsync of the engine, and their accounting, live there;
//!    - the groups' new state is published to readers;
//!    - [`reply`] answers every waiter, or, for a pipelined batch, tells its callers the
//!      entries are visible and hands the waiters to the [`syncer`] thread, which fsyncs
//!      and answers while the writer goes on with the next batch.
//!
//! While a batch is being written and synced, new commands queue in the bounded channel:
//! they form the next batch. That is the whole of group commit — no timer is involved.
//!
//! The write side's state ([`Core`]) sits behind one lock, which the writer thread takes
//! for each batch. A blocking caller that finds the writer idle takes it instead and runs
//! step 2 for its own command on its own thread ([`inline`]); whoever holds the lock is
//! the one committer, so everything above holds either way.
//!
//! Arrows point down: handles send [`command::Command`]s here, and the writer calls into
//! `shared` and `storage`, never back into a handle.

pub(crate) mod command;
mod commit;
mod drain;
mod inline;
pub(crate) mod reply;
mod staging;
mod syncer;
mod wal;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use flume::Receiver;
use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::shared::{Shared, Unsynced};
use crate::state::GroupState;
use crate::storage::Groups;
use crate::storage::wal_size::WalPresizer;
use command::Command;
use drain::{Limits, Refill, drain};
pub(crate) use inline::Committer;
use syncer::Syncer;
use wal::Wal;

/// The writer actor. Obtain it from [`LogStore::open`](crate::LogStore::open) and run it
/// with [`Writer::run`] (on a tokio runtime) or [`Writer::run_blocking`] (on a thread of
/// your own). Until it runs, writes wait in the channel; dropping it unrun closes the
/// engine, failing those writes with [`Error::Closed`].
#[must_use = "the writer does nothing unless run: `tokio::spawn(writer.run())`"]
pub struct Writer {
    rx: Receiver<Command>,
    shared: Arc<Shared>,
    /// The write side's state, shared with blocking callers that may commit while the
    /// writer is idle ([`Committer`]).
    committer: Arc<Committer>,
    limits: Limits,
}

/// The write side's state: whoever holds it (the writer thread, or a blocking caller
/// committing on its own thread) is the one committer.
pub(crate) struct Core {
    shared: Arc<Shared>,
    /// The committed state of every group; readers see the copy in `Shared`, updated
    /// after each commit.
    groups: Groups,
    wal: Wal,
    /// The fsync thread of pipelined commits, once one was needed.
    syncer: Option<Syncer>,
    /// Batches handed to the syncer and not answered yet; read without the lock by
    /// callers deciding whether to commit inline.
    syncing: Arc<AtomicUsize>,
    /// The writer is running and has not stopped: only then may a caller commit inline.
    active: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("path", &self.shared.config.path).finish_non_exhaustive()
    }
}

impl Writer {
    /// The writer, and the committer its handles share with it.
    pub(crate) fn new(rx: Receiver<Command>, shared: Arc<Shared>, groups: Groups) -> (Self, Arc<Committer>) {
        let config = &shared.config;
        let limits = Limits {
            max_entries: u64::try_from(config.max_batch_entries).unwrap_or(u64::MAX),
            max_bytes: config.max_batch_bytes.bytes(),
            linger: config.linger,
        };
        let presizer = config.wal_presize.then(|| WalPresizer::new(&config.path));
        let wal = Wal::new(config.durability, presizer);
        let inline = config.inline_commits && config.linger.is_zero();
        let core = Core {
            shared: Arc::clone(&shared),
            groups,
            wal,
            syncer: None,
            syncing: Arc::default(),
            active: false,
        };
        let committer = Arc::new(Committer::new(core, inline));
        (Writer { rx, shared, committer: Arc::clone(&committer), limits }, committer)
    }

    /// Runs the writer on a dedicated OS thread named `rocklog-writer`. The future
    /// completes when the writer stops: after
    /// [`LogStore::shutdown`](crate::LogStore::shutdown) returned, or once every handle is
    /// dropped and the queued commands are committed. Spawn it:
    /// `tokio::spawn(writer.run())`. Dropping this future does not stop the writer.
    ///
    /// Fails with [`Error::Closed`] if the writer thread could not be started or panicked,
    /// and as [`Writer::run_blocking`] does when it stops.
    pub async fn run(self) -> Result<()> {
        let (done_tx, done_rx) = oneshot::channel();
        // Running before the thread is scheduled (see `LogStore::start`). If the spawn
        // fails, dropping the closure drops the writer, which marks it stopped.
        self.shared.lifecycle.set_running();
        std::thread::Builder::new()
            .name("rocklog-writer".into())
            .spawn(move || {
                let _ = done_tx.send(self.run_blocking());
            })
            .map_err(|e| {
                tracing::error!(error = %e, "cannot start the rocklog writer thread");
                Error::Closed
            })?;
        done_rx.await.unwrap_or(Err(Error::Closed))
    }

    /// Runs the writer on the current thread until it stops (see [`Writer::run`]).
    ///
    /// Returns `Ok` on a clean stop; a failed commit is reported to its waiters and
    /// poisons the engine, but does not end the writer.
    ///
    /// # Errors
    ///
    /// As [`LogStore::shutdown`](crate::LogStore::shutdown): writes acknowledged under
    /// `Durability::Buffered` were left unsynced, because the final fsync failed
    /// ([`Error::WriteFailed`]) or the engine was poisoned ([`Error::Poisoned`]).
    pub fn run_blocking(self) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        shared.lifecycle.set_running();
        if let Some(mut core) = self.committer.lock() {
            core.active = true;
        }
        tracing::info!(path = %shared.config.path.display(), "rocklog writer started");
        let mut refill = Refill::default();
        while let Some(batch) = drain(&self.rx, &self.limits, &refill) {
            #[cfg(feature = "__testing")]
            suffer_faults(&shared);
            let shutdown = batch.shutdown;
            shared.metrics.queue_depth.set(f64_from(batch.queued));
            let waiters = batch.msgs.len();
            let started = Instant::now();
            // A caller that panicked while committing inline left the state unknown:
            // stop, failing what is queued (`Drop`).
            let Some(mut core) = self.committer.lock() else { break };
            let answers = core.commit(batch.msgs);
            if shutdown {
                core.active = false;
            }
            self.committer.committed(waiters);
            drop(core);
            // Answered only now, so that a caller woken by its answer finds the writer
            // idle and may commit its next write inline.
            answers.send();
            if shared.config.adaptive_batching {
                refill = Refill::after(waiters, started.elapsed());
            }
            if shutdown {
                break;
            }
        }
        if let Some(mut core) = self.committer.lock() {
            core.active = false;
            if let Some(mut syncer) = core.syncer.take() {
                syncer.stop();
            }
            // Buffered writes become durable before the writer stops. A poisoned engine
            // writes nothing more; either way `shutdown` reports writes left unsynced.
            let unsynced = match shared.check_poison() {
                Ok(()) => core.wal.flush_buffered(&shared).err().map(Unsynced::SyncFailed),
                Err(Error::Poisoned(reason)) if core.wal.has_unsynced() => Some(Unsynced::Poisoned(reason)),
                Err(_) => None,
            };
            if let Some(why) = unsynced {
                tracing::error!(?why, "rocklog writer stopped with buffered writes not fsynced");
                shared.lifecycle.set_unsynced(why);
            }
        }
        shared.lifecycle.stop_outcome()
    }
}

impl Core {
    /// Applies a committed batch's group changes to the committer's view and publishes
    /// them to readers.
    fn publish(&mut self, changes: &[(u64, Option<GroupState>)]) {
        #[cfg(feature = "__testing")]
        {
            let us = self.shared.faults.publish_delay_us.load(std::sync::atomic::Ordering::SeqCst);
            if us > 0 {
                std::thread::sleep(std::time::Duration::from_micros(us));
            }
        }
        for (id, state) in changes {
            match state {
                Some(s) => self.groups.insert(*id, *s),
                None => self.groups.remove(id),
            };
        }
        self.shared.publish(changes);
    }
}

impl Drop for Writer {
    /// Whether the writer stopped cleanly, panicked, or never ran: fail whatever is still
    /// queued, close the database (releasing its lock) and wake every waiter.
    fn drop(&mut self) {
        // No caller commits inline from now on, and the syncer answers what it holds
        // before the database closes under it.
        self.committer.deactivate();
        while let Ok(msg) = self.rx.try_recv() {
            drop(msg);
        }
        let shared = &self.shared;
        shared.close_db();
        shared.lifecycle.set_stopped();
        tracing::info!(path = %shared.config.path.display(), "rocklog writer stopped");
    }
}

/// The failures a test asked the writer thread to suffer before committing a batch: a
/// panic, or a hold with the batch drained but not committed.
#[cfg(feature = "__testing")]
fn suffer_faults(shared: &Shared) {
    use std::sync::atomic::Ordering;
    assert!(!shared.faults.panic_next_batch.swap(false, Ordering::SeqCst), "injected writer panic");
    let us = shared.faults.hold_drained_us.load(Ordering::SeqCst);
    if us > 0 {
        std::thread::sleep(std::time::Duration::from_micros(us));
    }
}

/// A count as a metric value (exact up to 2^53, far beyond any batch).
#[allow(clippy::cast_precision_loss)]
fn f64_from(n: usize) -> f64 {
    n as f64
}
