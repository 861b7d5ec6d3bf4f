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

use super::reply::Outcome;
use super::wal::Wal;
use crate::error::Error;
use crate::shared::Shared;

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
    /// Starts the thread, which counts the batches handed over and not yet answered in
    /// `in_flight`. Fails when the OS cannot start one.
    pub fn start(shared: Arc<Shared>, in_flight: Arc<AtomicUsize>) -> std::io::Result<Syncer> {
        let (tx, rx) = flume::unbounded();
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
    let failure = match shared.check_poison() {
        Err(Error::Poisoned(reason)) => Some(reason),
        Err(other) => Some(other.to_string()),
        Ok(()) => Wal::fsync(shared).err(),
    };
    let now = Instant::now();
    for job in jobs {
        if let Some(t) = job.written_at {
            shared.metrics.commit_duration.record(now.duration_since(t));
        }
        for mut outcome in job.outcomes {
            if let (Some(reason), Ok(())) = (&failure, &outcome.result) {
                outcome.result = Err(Error::WriteFailed(reason.clone()));
            }
            outcome.finish(&shared.metrics, now);
        }
    }
}
