//! [`LogStore`]: the cloneable handle to one engine.

use std::sync::Arc;
use std::time::Instant;

use flume::Sender;
use tokio::sync::oneshot;

use super::Group;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::shared::{Shared, Stats};
use crate::state::LogState;
use crate::storage::{StorageState, StorageStats};
use crate::writer::command::{Command, Op};
use crate::writer::reply::{OnDurable, Reply};
use crate::writer::{Committer, Writer};

/// How often a blocking write waiting for its reply looks whether the writer stopped
/// without sending one (only that race ever needs it).
const STOPPED_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// A handle to one rocklog engine: one data directory holding the logs of many Raft
/// groups, written by one [`Writer`].
///
/// Cheap to clone (`Arc` inside), `Send + Sync`. Writes go through the writer and resolve
/// after the group commit holding them is durable (see [`Durability`](crate::Durability));
/// reads go straight to RocksDB. Per-group operations live on [`Group`], from
/// [`LogStore::group`].
///
/// When the last handle is dropped, the writer commits what is queued, stops and closes
/// the database; the drop waits for that, so the directory can be reopened right after.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` only while dropping, to disconnect the channel before waiting for the writer.
    tx: Option<Sender<Command>>,
    shared: Arc<Shared>,
    /// The writer's state, which a blocking call may commit with while the writer idles.
    committer: Arc<Committer>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        drop(self.tx.take());
        self.shared.lifecycle.wait_while_running();
    }
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").field("path", &self.inner.shared.config.path).finish_non_exhaustive()
    }
}

impl LogStore {
    /// Opens (or creates) the engine at `config.path` and recovers every group, in time
    /// proportional to the number of groups. Returns the handle and the [`Writer`], which
    /// the caller must run (`tokio::spawn(writer.run())`); until then writes wait.
    ///
    /// Metric handles are resolved in the recorder current during this call.
    ///
    /// Fails with [`Error::InvalidConfig`] for a config [`Config::validate`] refuses,
    /// [`Error::NotRocklog`] for a directory holding something else,
    /// [`Error::UnsupportedVersion`] for a newer format, [`Error::Locked`] when another
    /// engine has it open, [`Error::Corruption`] when its metadata does not decode,
    /// [`Error::Io`] for a directory it may not create or write to, and [`Error::Storage`]
    /// when the disk fails.
    pub fn open(config: Config) -> Result<(LogStore, Writer)> {
        config.validate()?;
        let span = tracing::info_span!("rocklog_open", path = %config.path.display());
        let _enter = span.enter();
        let started = Instant::now();
        let (db, groups, statistics, seeked) = crate::storage::open(&config)?;
        tracing::info!(groups = groups.len(), elapsed = ?started.elapsed(), "rocklog opened");
        let (tx, rx) = flume::bounded(config.channel_capacity);
        let shared = Arc::new(Shared::new(config, db, statistics, groups.clone(), Metrics::new()));
        crate::shared::Counters::add(&shared.stats.open_group_seeks, seeked);
        crate::shared::sampler::start(&shared);
        crate::shared::trimmer::start(&shared);
        let (writer, committer) = Writer::new(rx, Arc::clone(&shared), groups);
        Ok((LogStore { inner: Arc::new(Inner { tx: Some(tx), shared, committer }) }, writer))
    }

    /// Opens the engine and starts its writer on a dedicated thread: the one-call way in.
    /// Needs no async runtime.
    ///
    /// Fails as [`LogStore::open`] does, or with [`Error::Closed`] if the thread cannot be
    /// started.
    pub fn start(config: Config) -> Result<LogStore> {
        let (store, writer) = Self::open(config)?;
        // Running from now on, not from when the thread gets scheduled: a store dropped
        // right away must wait for the writer to close the database (and release its
        // lock), not see a writer "not started" and return while the lock is held.
        store.shared().lifecycle.set_running();
        std::thread::Builder::new()
            .name("rocklog-writer".into())
            .spawn(move || writer.run_blocking())
            .map_err(|e| {
                tracing::error!(error = %e, "cannot start the rocklog writer thread");
                Error::Closed
            })?;
        Ok(store)
    }

    /// The view of group `id`. Costs nothing: the group need not exist yet (appending,
    /// purging or saving a hard state creates it).
    pub fn group(&self, id: u64) -> Group {
        Group::new(self.clone(), id)
    }

    /// The ids of every existing group, in ascending order.
    pub fn groups(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self.shared().groups().keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The log state of every existing group, by ascending id.
    pub fn group_states(&self) -> Vec<(u64, LogState)> {
        let mut all: Vec<(u64, LogState)> =
            self.shared().groups().iter().map(|(id, s)| (*id, s.log)).collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &Config {
        &self.shared().config
    }

    /// Counters of the engine's work since it opened.
    pub fn stats(&self) -> Stats {
        self.shared().stats.snapshot()
    }

    /// RocksDB's own counters of the database since it opened: bytes written to the WAL,
    /// flushed and compacted into SST files and into blob files, and time writers were
    /// stalled.
    pub fn storage_stats(&self) -> StorageStats {
        self.shared().storage_stats()
    }

    /// RocksDB's state now: whether writes are stalled, the compaction backlog, memory in
    /// memtables and the block cache, the size of the SST, WAL and blob files, and the
    /// room left on the disk. The engine also records it as the `rocklog_storage_*`
    /// metrics once a second.
    ///
    /// Fails with [`Error::Closed`] after shutdown, [`Error::Storage`] when RocksDB cannot
    /// answer, and [`Error::Io`] when the data directory cannot be listed or its
    /// filesystem queried.
    pub fn storage_state(&self) -> Result<StorageState> {
        self.shared().storage_state()
    }

    /// True once a write has failed; see [`Error::Poisoned`].
    pub fn is_poisoned(&self) -> bool {
        self.shared().check_poison().is_err()
    }

    /// Makes every write acknowledged before this call durable: under
    /// [`Durability::Buffered`](crate::Durability::Buffered) it fsyncs the WAL; under
    /// `Sync` every acknowledged write already is, and this is a cheap barrier.
    ///
    /// Fails with [`Error::Poisoned`] or [`Error::Closed`], or [`Error::WriteFailed`]
    /// when the fsync fails.
    pub async fn flush(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Flush { reply: Reply::Channel(reply) }).await?;
        self.reply(rx).await
    }

    /// Alias of [`LogStore::flush`].
    ///
    /// Fails as [`LogStore::flush`] does.
    pub async fn sync(&self) -> Result<()> {
        self.flush().await
    }

    /// Commits everything queued before this call, syncs, stops the writer and closes the
    /// database, releasing its lock: the directory can be reopened as soon as this
    /// returns. Later writes and reads through any handle fail with [`Error::Closed`]
    /// (writes to a poisoned engine with [`Error::Poisoned`]).
    /// Calling it again, or concurrently, is harmless.
    ///
    /// Waits for the writer to run if it has not started yet.
    ///
    /// Under [`Durability::Sync`](crate::Durability::Sync) every acknowledged write is
    /// fsynced already and this never fails. Under
    /// [`Durability::Buffered`](crate::Durability::Buffered) it fsyncs what was written
    /// since the last [`LogStore::flush`], and fails when that could not happen: with
    /// [`Error::WriteFailed`] when the final fsync failed, and [`Error::Poisoned`] when
    /// the engine was poisoned with buffered writes not yet fsynced. Those writes are in
    /// the WAL file (a reopen reads them) but may not survive a power loss. The engine is
    /// closed either way, and every call, again or concurrent, returns the same outcome.
    pub async fn shutdown(&self) -> Result<()> {
        let shared = self.shared();
        let stopped = shared.lifecycle.stopped();
        tokio::pin!(stopped);
        stopped.as_mut().enable();
        if !shared.lifecycle.is_stopped() && self.send(Command::Shutdown).await.is_ok() {
            stopped.await;
        }
        shared.lifecycle.stop_outcome()
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    async fn send(&self, msg: Command) -> Result<()> {
        let tx = self.inner.tx.as_ref().ok_or(Error::Closed)?;
        let sending = self.inner.committer.sending();
        tx.send_async(msg).await.map_err(|_| Error::Closed)?;
        sending.sent();
        Ok(())
    }

    /// Commits one write on this thread if the writer is idle (see
    /// [`Committer::try_commit_in_task`]), or sends it; waits for its durable outcome.
    pub(crate) async fn write(&self, group: u64, op: Op) -> Result<()> {
        self.shared().check_poison()?;
        let (reply, rx) = oneshot::channel();
        let reply = Reply::Channel(reply);
        let command = Command::Write { group, op, reply, visible: None, enqueued: Instant::now() };
        if let Err(command) = self.inner.committer.try_commit_in_task(command) {
            self.send(command).await?;
        }
        self.reply(rx).await
    }

    /// The blocking form of [`LogStore::flush`], for callers on their own OS threads (see
    /// [`BlockingGroup`](crate::BlockingGroup)): parks the thread until every write
    /// acknowledged before this call is durable. Do not call it from an async task: it
    /// holds the task's worker thread for an fsync.
    ///
    /// Fails as [`LogStore::flush`] does.
    pub fn flush_blocking(&self) -> Result<()> {
        self.command_blocking(|reply| Command::Flush { reply })
    }

    /// Sends one write and blocks the calling thread until its durable outcome: the
    /// blocking twin of [`LogStore::write`], for callers on their own OS threads.
    pub(crate) fn write_blocking(&self, group: u64, op: Op) -> Result<()> {
        self.shared().check_poison()?;
        self.command_blocking(|reply| Command::Write {
            group,
            op,
            reply,
            visible: None,
            enqueued: Instant::now(),
        })
    }

    /// Commits the command `make` builds around its reply on this thread if the writer
    /// is idle (see [`Committer`]), or sends it to the writer; blocks until the reply.
    /// The reply comes through a callback, so no async runtime is involved.
    fn command_blocking(&self, make: impl FnOnce(Reply) -> Command) -> Result<()> {
        let tx = self.inner.tx.as_ref().ok_or(Error::Closed)?;
        let (done, rx) = flume::bounded(1);
        let reply = Reply::Callback(OnDurable::new(move |result| {
            let _ = done.send(result);
        }));
        if let Err(command) = self.inner.committer.try_commit(make(reply)) {
            let sending = self.inner.committer.sending();
            tx.send(command).map_err(|_| Error::Closed)?;
            sending.sent();
        }
        // A command that reached the channel just as the writer stopped stays queued
        // (flume keeps it while handles hold senders) and its callback is never dropped:
        // look at the writer's phase while waiting, as `reply` does.
        loop {
            if self.shared().lifecycle.is_stopped() {
                // The writer replies before it marks itself stopped.
                return rx.try_recv().unwrap_or(Err(Error::Closed));
            }
            match rx.recv_timeout(STOPPED_POLL) {
                Ok(result) => return result,
                Err(flume::RecvTimeoutError::Disconnected) => return Err(Error::Closed),
                Err(flume::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Sends one write and waits until it is visible; `on_durable` hears the durable
    /// outcome later, on the writer thread (never when this returns an error).
    pub(crate) async fn write_then(
        &self,
        group: u64,
        op: Op,
        on_durable: impl FnOnce(Result<()>) + Send + 'static,
    ) -> Result<()> {
        self.shared().check_poison()?;
        let (visible, rx) = oneshot::channel();
        let reply = Reply::Callback(OnDurable::new(on_durable));
        self.send(Command::Write { group, op, reply, visible: Some(visible), enqueued: Instant::now() })
            .await?;
        self.reply(rx).await
    }

    /// Waits for a reply, or for the writer to stop without sending one.
    async fn reply(&self, mut rx: oneshot::Receiver<Result<()>>) -> Result<()> {
        let stopped = self.shared().lifecycle.stopped();
        tokio::pin!(stopped);
        stopped.as_mut().enable();
        if !self.shared().lifecycle.is_stopped() {
            tokio::select! {
                biased;
                reply = &mut rx => return reply.unwrap_or(Err(Error::Closed)),
                () = &mut stopped => {}
            }
        }
        // The writer replies before it marks itself stopped: any reply is here by now.
        rx.try_recv().unwrap_or(Err(Error::Closed))
    }

    /// Makes the writer's next commit fail as if the disk had failed. Only with the hidden `__testing` feature.
    #[cfg(feature = "__testing")]
    #[doc(hidden)]
    pub fn inject_commit_failure(&self) {
        self.shared().faults.fail_next_commit.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes the next WAL fsync fail as if the disk had failed (a `flush()`, the syncer's,
    /// or the final one at shutdown). Only with the hidden `__testing` feature.
    #[cfg(feature = "__testing")]
    #[doc(hidden)]
    pub fn inject_fsync_failure(&self) {
        self.shared().faults.fail_next_fsync.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes the writer sleep this long between writing each batch to RocksDB and
    /// publishing its effect (widening a window readers must handle). Only with the hidden `__testing` feature.
    #[cfg(feature = "__testing")]
    #[doc(hidden)]
    pub fn inject_publish_delay(&self, delay: std::time::Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.shared().faults.publish_delay_us.store(us, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes the writer panic at its next batch. Only with the hidden `__testing` feature.
    #[cfg(feature = "__testing")]
    #[doc(hidden)]
    pub fn inject_writer_panic(&self) {
        self.shared().faults.panic_next_batch.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Makes the writer thread wait this long between draining each batch and committing
    /// it (the batch's commands are then out of the channel but not committed). Only with
    /// the hidden `__testing` feature.
    #[cfg(feature = "__testing")]
    #[doc(hidden)]
    pub fn inject_drained_hold(&self, hold: std::time::Duration) {
        let us = u64::try_from(hold.as_micros()).unwrap_or(u64::MAX);
        self.shared().faults.hold_drained_us.store(us, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dropping the only handle right after `start` (before the writer thread ran) must
    /// still close the database before the drop returns: the next `start` at the same path
    /// succeeds at once. d-engine's storage suite reopens a directory exactly like this.
    #[test]
    fn a_store_dropped_right_after_start_releases_the_directory() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|source| Error::Io { path: "tempdir".into(), source })?;
        for _ in 0..50 {
            drop(LogStore::start(Config::new(dir.path()))?);
        }
        Ok(())
    }
}
