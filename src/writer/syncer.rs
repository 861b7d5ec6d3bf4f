//! The fsync half of a pipelined commit.
//!
//! Under [`Durability::Sync`](crate::Durability::Sync) the writer normally writes each
//! batch with `sync = true` and replies after it. When a batch carries a pipelined append
//! ([`Group::append_then`](crate::Group::append_then)), the writer instead writes it
//! without syncing, publishes it (the entries become readable), tells the pipelined
//! callers so, and hands the batch's waiters to this thread. The writer then goes on to
//! the next batch while this thread fsyncs the WAL once for every batch handed over since
//! its last fsync, and answers their waiters in order.
//!
//! So one Raft leader that appends, replicates and appends again — openraft's pattern —
//! still gets many appends per fsync, and its followers receive entries while the
//! leader's fsync runs. While batches are in flight here, every later batch (even one
//! without pipelined appends, even a bare flush) goes through this thread too, so replies
//! stay in order and a flush still waits for everything before it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::command::Reply;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::shared::Shared;

/// One command's outcome on its way back to its caller.
pub(crate) struct Outcome {
    pub reply: Reply,
    pub visible: Option<oneshot::Sender<Result<()>>>,
    pub result: Result<()>,
    pub enqueued: Option<Instant>,
}

impl Outcome {
    /// Tells a pipelined caller its accepted command is visible, and arms its durable
    /// callback.
    pub fn tell_visible(&mut self) {
        if self.result.is_ok()
            && let Some(v) = self.visible.take()
        {
            self.reply.arm();
            let _ = v.send(Ok(()));
        }
    }

    /// Delivers the final outcome. A pipelined caller not told "visible" yet hears it now
    /// (or hears the error: a refused command's callback is never called).
    pub fn finish(mut self, metrics: &Metrics, now: Instant) {
        if let Some(t) = self.enqueued {
            metrics.write_latency.record(now.duration_since(t));
        }
        if self.visible.is_some() {
            match self.result {
                Ok(()) => self.tell_visible(),
                Err(e) => {
                    if let Some(v) = self.visible.take() {
                        let _ = v.send(Err(e));
                    }
                    return;
                }
            }
        }
        self.reply.send(self.result);
    }
}

/// A written batch whose waiters hear once the WAL holding it is fsynced.
pub(crate) struct Job {
    pub outcomes: Vec<Outcome>,
    /// When the writer started writing the batch (for the commit-latency histogram);
    /// `None` for a batch that wrote nothing.
    pub written_at: Option<Instant>,
}

/// The fsync thread, started on the first pipelined batch.
pub(crate) struct Syncer {
    tx: Option<flume::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    in_flight: Arc<AtomicUsize>,
}

impl Syncer {
    /// Starts the thread. Fails when the OS cannot start one.
    pub fn start(shared: Arc<Shared>) -> std::io::Result<Syncer> {
        let (tx, rx) = flume::unbounded();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&in_flight);
        let thread = std::thread::Builder::new()
            .name("rocklog-syncer".into())
            .spawn(move || run(&rx, &shared, &counter))?;
        Ok(Syncer { tx: Some(tx), thread: Some(thread), in_flight })
    }

    /// Whether batches handed over are still waiting for their fsync.
    pub fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// Hands a written batch over; gives it back if the thread is gone.
    pub fn submit(&self, job: Job) -> std::result::Result<(), Job> {
        let Some(tx) = &self.tx else { return Err(job) };
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        tx.send(job).map_err(|e| {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            e.into_inner()
        })
    }

    /// Lets the thread answer everything handed over, then joins it. If it panicked,
    /// the waiters it held were dropped: channel waiters see `Closed`, armed callbacks
    /// are called with `Closed`.
    pub fn stop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("rocklog syncer thread panicked");
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(rx: &flume::Receiver<Job>, shared: &Shared, in_flight: &AtomicUsize) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        jobs.extend(rx.try_iter());
        let n = jobs.len();
        sync_and_finish(shared, jobs);
        in_flight.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Fsyncs the WAL once for `jobs` (unless the engine is poisoned or closed) and answers
/// their waiters in order: `Ok` after a good fsync, `WriteFailed` otherwise.
pub(crate) fn sync_and_finish(shared: &Shared, jobs: Vec<Job>) {
    {
        let synced = match shared.check_poison() {
            Err(e) => Err(e),
            Ok(()) => match shared.db() {
                Ok(db) => match db.flush_wal(true) {
                    Ok(()) => {
                        shared.counters.syncs.fetch_add(1, Ordering::Relaxed);
                        shared.metrics.syncs.increment(1);
                        Ok(())
                    }
                    Err(e) => {
                        let reason = format!("WAL fsync failed: {e}");
                        shared.metrics.write_errors.increment(1);
                        shared.poison(reason.clone());
                        Err(Error::WriteFailed(reason))
                    }
                },
                Err(e) => Err(e),
            },
        };
        let reason = synced.err().map(|e| match e {
            Error::Poisoned(r) | Error::WriteFailed(r) => r,
            other => other.to_string(),
        });
        let now = Instant::now();
        for job in jobs {
            if let Some(t) = job.written_at {
                shared.metrics.commit_duration.record(now.duration_since(t));
            }
            for mut outcome in job.outcomes {
                if let (Some(r), Ok(())) = (&reason, &outcome.result) {
                    outcome.result = Err(Error::WriteFailed(r.clone()));
                }
                outcome.finish(&shared.metrics, now);
            }
        }
    }
}
