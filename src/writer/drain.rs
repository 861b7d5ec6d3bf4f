//! Draining the channel into one batch: block for the first command, take what is already
//! queued up to the batch limits, and wait for more only when asked to (a non-zero
//! `linger`, or the callers the previous commit just answered coming back).

use std::time::{Duration, Instant};

use flume::{Receiver, TryRecvError};

use super::command::Command;

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
    pub msgs: Vec<Command>,
    pub entries: u64,
    pub bytes: u64,
    /// A shutdown was requested: commit this batch, then stop.
    pub shutdown: bool,
    /// Messages that were waiting behind the first one when the batch started.
    pub queued: usize,
}

impl Drained {
    fn push(&mut self, msg: Command) {
        match &msg {
            Command::Write { op, .. } => {
                let (entries, bytes) = op.size();
                self.entries += entries;
                self.bytes += bytes;
            }
            Command::Shutdown => self.shutdown = true,
            Command::Flush { .. } => {}
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
pub(crate) fn drain(rx: &Receiver<Command>, limits: &Limits, refill: &Refill) -> Option<Drained> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use tokio::sync::oneshot;

    use super::*;
    use crate::records::Entry;
    use crate::writer::command::{EncodedEntry, Op};
    use crate::writer::reply::Reply;
    use crate::{Config, Error, LogStore};

    fn append(group: u64, n: usize) -> Command {
        let entries = (1..=n as u64).map(|i| EncodedEntry::new(&Entry::new(i, 1, vec![0u8; 10]))).collect();
        let (reply, _) = oneshot::channel();
        Command::Write {
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
        tx.send(Command::Shutdown).unwrap();
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
        let (tx, rx) = flume::bounded::<Command>(4);
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
        for t in &mut tasks {
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
