//! One group commit, as a pipeline: **stage → write → publish → answer** (or hand the
//! answers to the syncer).
//!
//! - *stage*: every command is validated against the state the earlier commands of the
//!   batch leave and added to one `WriteBatch`; a refused command fails alone;
//! - *write*: the batch goes to RocksDB through [`Wal`](super::wal::Wal) — synced, or
//!   unsynced when the syncer thread will fsync it (a pipelined batch: one with an
//!   `append_then` caller, or, under [`Config::pipelined_sync`](crate::Config), one of
//!   several writers, so that its fsync overlaps the next batch's staging and writing);
//! - *publish*: the groups' new state becomes visible to readers, only after the write;
//! - *answer*: every waiter hears its outcome, or, for a pipelined batch, its callers hear
//!   "visible" and the syncer answers after the fsync. A synced batch's answers come back
//!   as [`Answers`], delivered by the committer once it has let go of the write side's
//!   lock: a caller woken by its answer then finds the writer idle and may commit its next
//!   write inline.
//!
//! The accounting of a commit (metrics and stats) is [`Tally`], in one place.

use std::sync::Arc;
use std::time::Instant;

use super::Core;
use super::command::{Command, Op};
use super::reply::{Outcome, refuse};
use super::staging::Staging;
use super::syncer::{Job, Syncer, sync_and_finish};
use super::wal::WriteMode;
use crate::error::Error;
use crate::shared::{Counters, Shared};

/// What a batch did, for the metrics and the stats.
#[derive(Debug, Default)]
struct Tally {
    commands: u64,
    entries: u64,
    bytes: u64,
    truncates: u64,
    purges: u64,
}

impl Tally {
    /// Counts one accepted write.
    fn accepted(&mut self, op: &Op) {
        match op {
            Op::Append(_) => {
                let (n, b) = op.size();
                self.entries += n;
                self.bytes += b;
            }
            Op::Truncate(_) => self.truncates += 1,
            Op::Purge(_) => self.purges += 1,
            _ => {}
        }
    }

    /// Records a batch that reached RocksDB.
    #[allow(clippy::cast_precision_loss)] // histogram samples: exact up to 2^53
    fn record_written(&self, shared: &Shared) {
        let m = &shared.metrics;
        m.commits.increment(1);
        m.batch_commands.record(self.commands as f64);
        m.batch_entries.record(self.entries as f64);
        m.batch_bytes.record(self.bytes as f64);
        m.appended_entries.increment(self.entries);
        m.appended_bytes.increment(self.bytes);
        m.truncates.increment(self.truncates);
        m.purges.increment(self.purges);
        let s = &shared.stats;
        Counters::add(&s.commits, 1);
        Counters::add(&s.appended_entries, self.entries);
        Counters::add(&s.appended_bytes, self.bytes);
    }
}

/// A batch after staging: the outcome of each command so far, what it did, and whether a
/// `flush()` asks for an fsync.
struct Staged {
    outcomes: Vec<Outcome>,
    tally: Tally,
    flush: bool,
}

/// Stages every command of `msgs` (see the module docs). A poisoned engine stages
/// nothing: every write and flush hears `Poisoned`.
fn stage_all(staging: &mut Staging<'_>, shared: &Shared, msgs: Vec<Command>) -> Staged {
    let poisoned = shared.check_poison().err().map(|e| e.to_string());
    let mut staged =
        Staged { outcomes: Vec::with_capacity(msgs.len()), tally: Tally::default(), flush: false };
    staged.tally.commands = u64::try_from(msgs.len()).unwrap_or(u64::MAX);
    for msg in msgs {
        match msg {
            Command::Write { group, op, reply, visible, enqueued } => {
                let result = match &poisoned {
                    Some(reason) => Err(Error::Poisoned(reason.clone())),
                    None => staging.stage(group, &op),
                };
                match &result {
                    Ok(()) => staged.tally.accepted(&op),
                    Err(e) if e.is_bad_input() => {
                        tracing::debug!(group, op = op.name(), error = %e, "command refused");
                        shared.metrics.rejected.increment(1);
                        Counters::add(&shared.stats.rejected, 1);
                    }
                    Err(_) => {}
                }
                staged.outcomes.push(Outcome { reply, visible, result, enqueued: Some(enqueued) });
            }
            Command::Flush { reply } => {
                staged.flush = true;
                let result = poisoned.clone().map_or(Ok(()), |r| Err(Error::Poisoned(r)));
                staged.outcomes.push(Outcome { reply, visible: None, result, enqueued: None });
            }
            Command::Shutdown => {}
        }
    }
    staged
}

/// The outcomes of a committed batch, to deliver with [`Answers::send`] once the committer
/// has released the write side's lock. Dropping them unsent drops the replies (callers
/// see [`Error::Closed`]).
#[must_use = "the callers wait for these answers"]
pub(crate) struct Answers {
    shared: Arc<Shared>,
    outcomes: Vec<Outcome>,
}

impl Answers {
    /// Nothing to answer: the batch was answered already, or its answers went to the
    /// syncer.
    fn none(shared: &Arc<Shared>) -> Self {
        Answers { shared: Arc::clone(shared), outcomes: Vec::new() }
    }

    /// Answers every caller of the batch.
    pub fn send(self) {
        let now = Instant::now();
        for o in self.outcomes {
            o.finish(&self.shared.metrics, now);
        }
    }
}

impl Core {
    /// Commits one batch (see the module docs), on the writer thread or, for an inline
    /// commit, on a caller's; returns the answers still to send.
    pub(super) fn commit(&mut self, msgs: Vec<Command>) -> Answers {
        let shared = Arc::clone(&self.shared);
        let Ok(db) = shared.db() else {
            reply_all(msgs, || Err(Error::Closed));
            return Answers::none(&shared);
        };

        // Stage.
        let mut staging = match Staging::new(&db, &self.groups, shared.config.max_entry_bytes.bytes()) {
            Ok(s) => s,
            Err(e) => {
                reply_all(msgs, || Err(Error::WriteFailed(e.to_string())));
                return Answers::none(&shared);
            }
        };
        let Staged { mut outcomes, tally, flush } = stage_all(&mut staging, &shared, msgs);
        let (batch, changes) = staging.into_changes();

        // Write. A batch with an `append_then` caller, a batch of several writers under
        // `pipelined_sync`, or any batch while earlier pipelined ones still wait for their
        // fsync, is pipelined: the syncer fsyncs it while the writer goes on.
        let wrote = !batch.is_empty();
        let accepted = || outcomes.iter().filter(|o| o.result.is_ok() && o.enqueued.is_some());
        let pipelined = self.wal.syncs_each_batch()
            && (self.syncer.as_ref().is_some_and(Syncer::busy)
                || (wrote
                    && (accepted().any(|o| o.visible.is_some())
                        || (shared.config.pipelined_sync && accepted().nth(1).is_some()))));
        let started = Instant::now();
        // Ok(whether this batch was fsynced here), or why it failed.
        let mut written: Result<bool, String> = Ok(false);
        if wrote {
            shared.epoch.write_started();
            let mode = self.wal.mode(pipelined);
            written = self.wal.write(&shared, &db, batch, mode).map(|()| mode == WriteMode::Synced);
        }
        if flush && !pipelined && matches!(written, Ok(false)) {
            written = self.wal.flush_buffered(&shared);
        }
        drop(db);

        // Publish.
        match &written {
            Ok(_) => {
                self.publish(&changes);
                if wrote {
                    tally.record_written(&shared);
                }
            }
            Err(reason) => fail(&mut outcomes, reason),
        }
        if wrote {
            shared.epoch.write_done();
        }
        Counters::add(&shared.stats.commands, tally.commands);

        // Answer, or hand the answers to the syncer.
        if pipelined && written.is_ok() {
            for o in &mut outcomes {
                o.tell_visible();
            }
            self.hand_to_syncer(Job { outcomes, written_at: wrote.then_some(started) });
            return Answers::none(&shared);
        }
        if matches!(written, Ok(fsynced) if wrote || fsynced) {
            shared.metrics.commit_duration.record(started.elapsed());
        }
        Answers { shared, outcomes }
    }

    /// Gives a written batch's waiters to the syncer thread (started on first use), or
    /// fsyncs and answers here if the OS cannot start that thread.
    fn hand_to_syncer(&mut self, job: Job) {
        if self.syncer.is_none() {
            match Syncer::start(Arc::clone(&self.shared), Arc::clone(&self.syncing)) {
                Ok(s) => self.syncer = Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the rocklog syncer thread; syncing inline");
                }
            }
        }
        let job = match &self.syncer {
            Some(syncer) => match syncer.submit(job) {
                Ok(()) => return,
                Err(job) => job,
            },
            None => job,
        };
        sync_and_finish(&self.shared, vec![job]);
    }
}

/// The batch did not reach the disk: every command that was going to succeed fails.
fn fail(outcomes: &mut [Outcome], reason: &str) {
    for o in outcomes {
        if o.result.is_ok() {
            o.result = Err(Error::WriteFailed(reason.to_owned()));
        }
    }
}

/// Answers every command of a batch that never reached RocksDB with `result`.
fn reply_all(commands: Vec<Command>, result: impl Fn() -> Result<(), Error>) {
    for command in commands {
        match command {
            Command::Write { reply, visible, .. } => refuse(reply, visible, result()),
            Command::Flush { reply } => refuse(reply, None, result()),
            Command::Shutdown => {}
        }
    }
}
