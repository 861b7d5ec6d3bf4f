//! The writer actor: the one owner of the database's write side.
//!
//! It runs on a dedicated OS thread (never on an async worker: every batch ends in a
//! blocking write + fsync). The loop:
//!
//! 1. block until one message arrives;
//! 2. take whatever else is already queued, up to `max_batch_entries` /
//!    `max_batch_bytes`; wait for more only up to a non-zero `linger`, or (with
//!    `adaptive_batching`) briefly while the callers the previous commit just answered
//!    are still coming back;
//! 3. validate each command against the state the earlier ones leave and stage it into
//!    one `WriteBatch` (a refused command fails alone);
//! 4. write the batch and fsync once (per [`Durability`]);
//! 5. publish the groups' new state, then reply to every waiter.
//!
//! While a batch is being written and synced, new commands queue in the bounded channel:
//! they form the next batch. That is the whole of group commit — no timer is involved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flume::{Receiver, TryRecvError};
use rocksdb::WriteOptions;
use tokio::sync::oneshot;

use crate::batch::Staging;
use crate::command::{Msg, Op};
use crate::config::Durability;
use crate::db::Groups;
use crate::error::{Error, Result};
use crate::shared::Shared;
use crate::syncer::{Job, Outcome, Syncer};

/// Limits on one batch.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub max_entries: u64,
    pub max_bytes: u64,
    pub linger: Duration,
}

/// One drained batch of messages.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    pub msgs: Vec<Msg>,
    pub entries: u64,
    pub bytes: u64,
    /// A shutdown was requested: commit this batch, then stop.
    pub shutdown: bool,
    /// Messages that were waiting behind the first one when the batch started.
    pub queued: usize,
}

impl Drained {
    fn push(&mut self, msg: Msg) {
        match &msg {
            Msg::Write { op, .. } => {
                let (entries, bytes) = op.size();
                self.entries += entries;
                self.bytes += bytes;
            }
            Msg::Shutdown => self.shutdown = true,
            Msg::Flush { .. } => {}
        }
        self.msgs.push(msg);
    }

    fn full(&self, limits: &Limits) -> bool {
        self.entries >= limits.max_entries || self.bytes >= limits.max_bytes
    }
}

/// What the previous commit tells the next batch: how many waiters it just answered
/// (who are likely to send again at once) and until when it is worth waiting for them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Refill {
    pub expect: usize,
    pub until: Option<Instant>,
}

impl Refill {
    /// The longest a batch waits for the previous batch's waiters to come back.
    const MAX_WAIT: Duration = Duration::from_millis(1);

    /// After a commit that answered `waiters` callers and took `took`: wait up to half the
    /// commit's duration (at most 1 ms) for that many commands. Without this, the writer
    /// drains the channel the instant it has replied, catches only the fastest callers,
    /// and batches alternate between a few commands and all the rest.
    pub fn after(waiters: usize, took: Duration) -> Self {
        let wait = (took / 2).min(Self::MAX_WAIT);
        Refill { expect: waiters, until: (waiters > 1).then(|| Instant::now() + wait) }
    }
}

/// Blocks for the first message, then takes what is queued within `limits`; waits for
/// more only up to `linger`, or while fewer than `refill.expect` messages came back before
/// `refill.until`. After a shutdown request it takes everything queued without waiting,
/// so nothing sent before it is lost. Returns `None` when every sender is gone and the
/// channel is empty.
pub(crate) fn drain(rx: &Receiver<Msg>, limits: &Limits, refill: &Refill) -> Option<Drained> {
    let mut batch = Drained::default();
    batch.push(rx.recv().ok()?);
    batch.queued = rx.len();
    let linger = (!limits.linger.is_zero()).then(|| Instant::now() + limits.linger);
    while batch.shutdown || !batch.full(limits) {
        let deadline = match (linger, refill.until) {
            _ if batch.shutdown => None,
            (Some(l), _) => Some(l),
            (None, Some(r)) if batch.msgs.len() < refill.expect => Some(r),
            _ => None,
        };
        let next = match rx.try_recv() {
            Ok(msg) => Some(msg),
            Err(TryRecvError::Disconnected) => None,
            Err(TryRecvError::Empty) => deadline.and_then(|d| rx.recv_deadline(d).ok()),
        };
        match next {
            Some(msg) => batch.push(msg),
            None => break,
        }
    }
    Some(batch)
}

/// The writer actor. Obtain it from [`LogStore::open`](crate::LogStore::open) and run it
/// with [`Writer::run`] (on a tokio runtime) or [`Writer::run_blocking`] (on a thread of
/// your own). Until it runs, writes wait in the channel; dropping it unrun closes the
/// engine, failing those writes with [`Error::Closed`].
pub struct Writer {
    rx: Receiver<Msg>,
    shared: Arc<Shared>,
    /// The committed state of every group, owned by the writer; readers see the copy in
    /// `Shared`, updated after each commit.
    groups: Groups,
    limits: Limits,
    write_options: WriteOptions,
    /// Buffered writes not yet fsynced (only under `Durability::Buffered`).
    unsynced: bool,
    /// The fsync thread of pipelined commits, once one was needed.
    syncer: Option<Syncer>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("path", &self.shared.config.path).finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn new(rx: Receiver<Msg>, shared: Arc<Shared>, groups: Groups) -> Self {
        let config = &shared.config;
        let limits = Limits {
            max_entries: config.max_batch_entries as u64,
            max_bytes: config.max_batch_bytes.bytes(),
            linger: config.linger,
        };
        let mut write_options = WriteOptions::default();
        write_options.set_sync(config.durability == Durability::Sync);
        Writer { rx, shared, groups, limits, write_options, unsynced: false, syncer: None }
    }

    /// Runs the writer on a dedicated OS thread named `rocklog-writer` and completes when
    /// it stops: after [`LogStore::shutdown`](crate::LogStore::shutdown), or once every
    /// handle is dropped. Spawn it: `tokio::spawn(writer.run())`. Dropping this future
    /// does not stop the writer.
    ///
    /// Fails with [`Error::Closed`] if the writer thread could not be started or panicked.
    pub async fn run(self) -> Result<()> {
        let (done_tx, done_rx) = oneshot::channel();
        // Running before the thread is scheduled (see `LogStore::start`). If the spawn
        // fails, dropping the closure drops the writer, which marks it stopped.
        self.shared.set_running();
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
    pub fn run_blocking(mut self) -> Result<()> {
        self.shared.set_running();
        tracing::info!(path = %self.shared.config.path.display(), "rocklog writer started");
        let mut refill = Refill::default();
        while let Some(batch) = drain(&self.rx, &self.limits, &refill) {
            let shutdown = batch.shutdown;
            self.shared.metrics.queue_depth.set(batch.queued as f64);
            let waiters = batch.msgs.len();
            let started = Instant::now();
            self.commit(batch.msgs);
            if self.shared.config.adaptive_batching {
                refill = Refill::after(waiters, started.elapsed());
            }
            if shutdown {
                break;
            }
        }
        if let Some(mut syncer) = self.syncer.take() {
            syncer.stop();
        }
        self.sync_on_stop();
        Ok(())
    }

    /// Makes buffered writes durable before the writer stops.
    fn sync_on_stop(&mut self) {
        if self.unsynced && self.shared.check_poison().is_ok() {
            let synced = self.shared.db().and_then(|db| db.flush_wal(true).map_err(Error::from));
            if let Err(e) = synced {
                self.shared.poison(format!("final WAL sync failed: {e}"));
            }
        }
    }

    /// Stages, writes, syncs and publishes one batch, then replies to its waiters.
    fn commit(&mut self, msgs: Vec<Msg>) {
        #[cfg(debug_assertions)]
        if self.shared.faults.panic_next_batch.swap(false, std::sync::atomic::Ordering::SeqCst) {
            panic!("injected writer panic");
        }
        let shared = Arc::clone(&self.shared);
        let metrics = &shared.metrics;
        let db = match shared.db() {
            Ok(db) => db,
            Err(_) => return reply_all(msgs, || Err(Error::Closed)),
        };
        let staging = Staging::new(&db, &self.groups, shared.config.max_entry_bytes.bytes());
        let mut staging = match staging {
            Ok(s) => s,
            Err(e) => return reply_all(msgs, || Err(Error::WriteFailed(e.to_string()))),
        };

        let poisoned = shared.check_poison().err().map(|e| e.to_string());
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(msgs.len());
        let (mut entries, mut bytes, mut truncates, mut purges, mut flush) = (0u64, 0u64, 0u64, 0u64, false);
        let commands = msgs.len() as u64;
        for msg in msgs {
            match msg {
                Msg::Write { group, op, reply, visible, enqueued } => {
                    let result = match &poisoned {
                        Some(reason) => Err(Error::Poisoned(reason.clone())),
                        None => staging.stage(group, &op),
                    };
                    match &result {
                        Ok(()) => match &op {
                            Op::Append(_) => {
                                let (n, b) = op.size();
                                entries += n;
                                bytes += b;
                            }
                            Op::Truncate(_) => truncates += 1,
                            Op::Purge(_) => purges += 1,
                            _ => {}
                        },
                        Err(e) if e.is_bad_input() => {
                            tracing::debug!(group, op = op.name(), error = %e, "command refused");
                            metrics.rejected.increment(1);
                            shared.counters.rejected.fetch_add(1, relaxed());
                        }
                        Err(_) => {}
                    }
                    outcomes.push(Outcome { reply, visible, result, enqueued: Some(enqueued) });
                }
                Msg::Flush { reply } => {
                    flush = true;
                    let result = poisoned.clone().map_or(Ok(()), |r| Err(Error::Poisoned(r)));
                    outcomes.push(Outcome { reply, visible: None, result, enqueued: None });
                }
                Msg::Shutdown => {}
            }
        }
        let (batch, changes) = staging.into_changes();

        let started = Instant::now();
        let mut written = Ok(());
        let wrote = !batch.is_empty();
        let sync_mode = shared.config.durability == Durability::Sync;
        // Pipelined (see `syncer`): a batch with an append_then caller, or any batch while
        // earlier pipelined ones still wait for their fsync.
        let pipelined = sync_mode
            && (self.syncer.as_ref().is_some_and(Syncer::busy)
                || (wrote && outcomes.iter().any(|o| o.visible.is_some() && o.result.is_ok())));
        if wrote {
            shared.write_started();
            written = self.write(&db, batch, pipelined);
        }
        if pipelined && written.is_ok() {
            drop(db);
            if wrote {
                self.publish(&changes);
                shared.write_done();
                self.record_commit(commands, entries, bytes, truncates, purges);
            }
            for o in outcomes.iter_mut() {
                o.tell_visible();
            }
            shared.counters.commands.fetch_add(commands, relaxed());
            let job = Job { outcomes, written_at: wrote.then_some(started) };
            let job = match self.syncer() {
                Some(syncer) => match syncer.submit(job) {
                    Ok(()) => return,
                    Err(job) => job,
                },
                None => job,
            };
            // No syncer thread: fsync here.
            crate::syncer::sync_and_finish(&shared, vec![job]);
            return;
        }
        let mut synced = wrote && sync_mode;
        if written.is_ok() && flush && self.unsynced {
            written = db.flush_wal(true).map_err(|e| e.to_string());
            shared.counters.syncs.fetch_add(1, relaxed());
            self.unsynced = false;
            synced = true;
        }
        drop(db);
        let elapsed = started.elapsed();

        match written {
            Ok(()) => {
                self.publish(&changes);
                if wrote || synced {
                    metrics.commit_duration.record(elapsed);
                }
                if synced {
                    metrics.syncs.increment(1);
                }
                if wrote {
                    self.record_commit(commands, entries, bytes, truncates, purges);
                }
            }
            Err(reason) => {
                metrics.write_errors.increment(1);
                shared.poison(reason.clone());
                for o in outcomes.iter_mut() {
                    if o.result.is_ok() {
                        o.result = Err(Error::WriteFailed(reason.clone()));
                    }
                }
            }
        }
        if wrote {
            shared.write_done();
        }
        shared.counters.commands.fetch_add(commands, relaxed());
        let now = Instant::now();
        for o in outcomes {
            o.finish(metrics, now);
        }
    }

    /// The syncer thread, started on first use; `None` if the OS cannot start a thread.
    fn syncer(&mut self) -> Option<&Syncer> {
        if self.syncer.is_none() {
            match Syncer::start(Arc::clone(&self.shared)) {
                Ok(s) => self.syncer = Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the rocklog syncer thread; syncing inline")
                }
            }
        }
        self.syncer.as_ref()
    }

    /// Counts a written batch in the metrics and stats.
    fn record_commit(&self, commands: u64, entries: u64, bytes: u64, truncates: u64, purges: u64) {
        let metrics = &self.shared.metrics;
        metrics.commits.increment(1);
        metrics.batch_commands.record(commands as f64);
        metrics.batch_entries.record(entries as f64);
        metrics.batch_bytes.record(bytes as f64);
        metrics.appended_entries.increment(entries);
        metrics.appended_bytes.increment(bytes);
        metrics.truncates.increment(truncates);
        metrics.purges.increment(purges);
        let c = &self.shared.counters;
        c.commits.fetch_add(1, relaxed());
        c.appended_entries.fetch_add(entries, relaxed());
        c.appended_bytes.fetch_add(bytes, relaxed());
    }

    /// Applies a committed batch's group changes to the writer's view and publishes them
    /// to readers.
    fn publish(&mut self, changes: &[(u64, Option<crate::state::GroupState>)]) {
        #[cfg(debug_assertions)]
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

    /// Writes one batch with the configured durability, or, for a pipelined batch, to the
    /// WAL and memtable without an fsync (the syncer syncs).
    fn write(&mut self, db: &rocksdb::DB, batch: rocksdb::WriteBatch, pipelined: bool) -> Result<(), String> {
        #[cfg(debug_assertions)]
        if self.shared.faults.fail_next_commit.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err("injected write failure".into());
        }
        if pipelined {
            let mut options = WriteOptions::default();
            options.set_sync(false);
            return db.write_opt(batch, &options).map_err(|e| e.to_string());
        }
        db.write_opt(batch, &self.write_options).map_err(|e| e.to_string())?;
        if self.shared.config.durability == Durability::Sync {
            self.shared.counters.syncs.fetch_add(1, relaxed());
        } else {
            self.unsynced = true;
        }
        Ok(())
    }
}

impl Drop for Writer {
    /// Whether the writer stopped cleanly, panicked, or never ran: fail whatever is still
    /// queued, close the database (releasing its lock) and wake every waiter.
    fn drop(&mut self) {
        // The syncer answers what it holds before the database closes under it.
        if let Some(mut syncer) = self.syncer.take() {
            syncer.stop();
        }
        while let Ok(msg) = self.rx.try_recv() {
            drop(msg);
        }
        self.shared.close_db();
        self.shared.set_stopped();
        tracing::info!(path = %self.shared.config.path.display(), "rocklog writer stopped");
    }
}

fn relaxed() -> std::sync::atomic::Ordering {
    std::sync::atomic::Ordering::Relaxed
}

fn reply_all(msgs: Vec<Msg>, result: impl Fn() -> Result<()>) {
    for msg in msgs {
        match msg {
            // A pipelined caller hears the failure on its visible reply; its callback,
            // not armed yet, is dropped uncalled.
            Msg::Write { visible: Some(visible), .. } => {
                let _ = visible.send(result());
            }
            Msg::Write { reply, .. } | Msg::Flush { reply } => reply.send(result()),
            Msg::Shutdown => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::command::{EncodedEntry, Reply};
    use crate::records::Entry;
    use crate::{Config, LogStore};

    fn append(group: u64, n: usize) -> Msg {
        let entries = (1..=n as u64).map(|i| EncodedEntry::new(&Entry::new(i, 1, vec![0u8; 10]))).collect();
        let (reply, _) = oneshot::channel();
        Msg::Write {
            group,
            op: Op::Append(entries),
            reply: Reply::Channel(reply),
            visible: None,
            enqueued: Instant::now(),
        }
    }

    const NO_LIMITS: Limits = Limits { max_entries: u64::MAX, max_bytes: u64::MAX, linger: Duration::ZERO };
    const NONE: Refill = Refill { expect: 0, until: None };

    #[test]
    fn everything_queued_forms_one_batch() {
        let (tx, rx) = flume::bounded(16);
        for g in 0..5 {
            tx.send(append(g, 2)).unwrap();
        }
        let batch = drain(&rx, &NO_LIMITS, &NONE).unwrap();
        assert_eq!((batch.msgs.len(), batch.entries), (5, 10));
        assert!(rx.is_empty());
    }

    #[test]
    fn a_batch_stops_at_the_entry_limit_and_the_rest_forms_the_next() {
        let (tx, rx) = flume::bounded(16);
        for g in 0..5 {
            tx.send(append(g, 2)).unwrap();
        }
        let limits = Limits { max_entries: 4, ..NO_LIMITS };
        assert_eq!(drain(&rx, &limits, &NONE).unwrap().msgs.len(), 2);
        assert_eq!(drain(&rx, &limits, &NONE).unwrap().msgs.len(), 2);
        assert_eq!(drain(&rx, &limits, &NONE).unwrap().msgs.len(), 1);
    }

    #[test]
    fn a_command_larger_than_the_byte_limit_commits_alone() {
        let (tx, rx) = flume::bounded(16);
        tx.send(append(1, 100)).unwrap();
        tx.send(append(2, 1)).unwrap();
        let limits = Limits { max_bytes: 50, ..NO_LIMITS };
        assert_eq!(drain(&rx, &limits, &NONE).unwrap().msgs.len(), 1);
        assert_eq!(drain(&rx, &limits, &NONE).unwrap().msgs.len(), 1);
    }

    #[test]
    fn shutdown_takes_everything_queued_whatever_the_limits() {
        let (tx, rx) = flume::bounded(16);
        tx.send(Msg::Shutdown).unwrap();
        for g in 0..5 {
            tx.send(append(g, 2)).unwrap();
        }
        let limits = Limits { max_entries: 1, ..NO_LIMITS };
        let batch = drain(&rx, &limits, &NONE).unwrap();
        assert!(batch.shutdown);
        assert_eq!(batch.msgs.len(), 6);
    }

    #[test]
    fn drain_ends_when_every_sender_is_gone() {
        let (tx, rx) = flume::bounded::<Msg>(4);
        tx.send(append(1, 1)).unwrap();
        drop(tx);
        assert!(drain(&rx, &NO_LIMITS, &NONE).is_some());
        assert!(drain(&rx, &NO_LIMITS, &NONE).is_none());
    }

    #[test]
    fn linger_waits_for_more_only_when_asked() {
        let (tx, rx) = flume::bounded(16);
        tx.send(append(1, 1)).unwrap();
        let started = Instant::now();
        assert_eq!(drain(&rx, &NO_LIMITS, &NONE).unwrap().msgs.len(), 1);
        assert!(started.elapsed() < Duration::from_millis(5), "zero linger never waits");

        let sender = std::thread::spawn(move || {
            tx.send(append(1, 1)).unwrap();
            std::thread::sleep(Duration::from_millis(5));
            tx.send(append(2, 1)).unwrap();
        });
        let limits = Limits { linger: Duration::from_millis(500), max_entries: 2, ..NO_LIMITS };
        let batch = drain(&rx, &limits, &NONE).unwrap();
        assert_eq!(batch.msgs.len(), 2, "the lingering batch picked up the late command");
        sender.join().unwrap();
    }

    #[test]
    fn a_batch_waits_briefly_for_the_previous_batchs_waiters() {
        let (tx, rx) = flume::bounded(16);
        tx.send(append(1, 1)).unwrap();
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            tx.send(append(2, 1)).unwrap();
            tx.send(append(3, 1)).unwrap();
        });
        let refill = Refill { expect: 3, until: Some(Instant::now() + Duration::from_secs(5)) };
        let batch = drain(&rx, &NO_LIMITS, &refill).unwrap();
        assert_eq!(batch.msgs.len(), 3, "waited until the expected commands were back");
        sender.join().unwrap();
    }

    #[test]
    fn the_refill_wait_ends_at_its_deadline() {
        let (tx, rx) = flume::bounded(16);
        tx.send(append(1, 1)).unwrap();
        let refill = Refill { expect: 10, until: Some(Instant::now() + Duration::from_millis(3)) };
        let started = Instant::now();
        assert_eq!(drain(&rx, &NO_LIMITS, &refill).unwrap().msgs.len(), 1);
        assert!(started.elapsed() >= Duration::from_millis(2));
        drop(tx);
    }

    #[test]
    fn a_lone_writer_never_waits_for_company() {
        assert!(Refill::after(1, Duration::from_secs(1)).until.is_none());
        let r = Refill::after(8, Duration::from_secs(1));
        assert!(r.until.is_some_and(|u| u <= Instant::now() + Refill::MAX_WAIT));
    }

    #[test]
    fn a_full_channel_makes_writers_wait() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::new(dir.path());
        config.channel_capacity = 2;
        let (store, writer) = LogStore::open(config).unwrap();
        let mut tasks: Vec<_> = (0..3)
            .map(|g| {
                let group = store.group(g);
                tokio_test::task::spawn(async move { group.append(&[Entry::new(1, 1, "x")]).await })
            })
            .collect();
        for t in tasks.iter_mut() {
            tokio_test::assert_pending!(t.poll());
        }
        assert_eq!(writer.rx.len(), 2, "two commands queued, the third waits to enqueue");

        // Taking the queued commands lets the waiting one in, and wakes its task.
        let first = drain(&writer.rx, &writer.limits, &NONE).unwrap();
        assert_eq!(first.msgs.len(), 3);
        assert!(tasks[2].is_woken(), "freeing a slot wakes the waiting writer");
        tokio_test::assert_pending!(tasks[2].poll(), "now it waits for its reply");
        assert!(writer.rx.is_empty());
        drop(first);
        // The drained commands' replies were dropped with the batch: their callers see Closed.
        assert!(matches!(tokio_test::assert_ready!(tasks[0].poll()), Err(Error::Closed)));
    }
}
