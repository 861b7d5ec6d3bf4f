//! `BlockingGroup`: a group's writes for callers on their own OS threads, with no async
//! runtime anywhere. They obey the same log rules, join the same group commits, are
//! durable when they return, and never hang when the writer fails or stops.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use common::{ents, ids, open};
use rocklog::{Config, Durability, Error, HardState, LogId, LogStore};

const BOUND: Duration = Duration::from_secs(10);

/// Runs `f` on a new thread and returns its result, failing the test if it takes longer
/// than `BOUND` (a hang).
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(BOUND).expect("a blocking call hung")
}

#[test]
fn blocking_writes_follow_the_log_rules_and_are_there_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path());
        let g = store.group(1).blocking();
        g.create().unwrap();
        g.append(&ents(1..11, 1)).unwrap();
        g.truncate(9).unwrap();
        g.append(&ents(9..12, 2)).unwrap();
        g.purge(LogId::new(1, 3)).unwrap();
        g.save_hard_state(HardState { term: 2, vote: Some(7), commit: 8 }).unwrap();
        g.save_metadata(&b"meta"[..]).unwrap();
        assert_eq!(g.group().first_index().unwrap(), Some(4));
        assert_eq!(g.group().last_log_id().unwrap(), Some(LogId::new(2, 11)));

        // Refused calls write nothing.
        let snapshot = common::snapshot(&store);
        assert!(matches!(g.append(&ents(13..14, 2)), Err(Error::Gap { .. })));
        assert!(matches!(g.append(&ents(12..13, 1)), Err(Error::TermRegression { .. })));
        assert!(matches!(g.purge(LogId::new(1, 2)), Err(Error::BelowPurgeBoundary { .. })));
        assert!(matches!(g.truncate(2), Err(Error::BelowPurgeBoundary { .. })));
        assert!(matches!(store.group(2).blocking().truncate(1), Err(Error::GroupNotFound(2))));
        assert!(matches!(store.group(2).blocking().reset(), Err(Error::GroupNotFound(2))));
        assert_eq!(common::snapshot(&store), snapshot);

        let other = store.group(3).blocking();
        other.append(&ents(1..4, 1)).unwrap();
        other.reset().unwrap();
        assert_eq!(other.group().last_index().unwrap(), None);
        other.remove().unwrap();
        assert!(!other.group().exists());
        common::snapshot(&store)
    };
    let store = open(dir.path());
    assert_eq!(common::snapshot(&store), before);
    assert_eq!(store.group(1).metadata().unwrap().as_deref(), Some(&b"meta"[..]));
}

/// Blocking callers on many threads share fsyncs. The control, one caller at a time,
/// shows the counter counts every fsync when there is nothing to share.
#[test]
fn blocking_appends_from_many_threads_share_group_commits() {
    const THREADS: u64 = 32;
    const APPENDS: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());

    let serial = store.group(1000).blocking();
    let syncs = store.stats().syncs;
    for i in 1..=APPENDS {
        serial.append(&ents(i..i + 1, 1)).unwrap();
    }
    assert_eq!(store.stats().syncs - syncs, APPENDS, "control: one fsync per lone append");

    let barrier = Arc::new(Barrier::new(usize::try_from(THREADS).unwrap()));
    let syncs = store.stats().syncs;
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (g, barrier) = (store.group(t).blocking(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                for i in 1..=APPENDS {
                    g.append(&ents(i..i + 1, 1)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let shared = store.stats().syncs - syncs;
    assert!(shared < THREADS * APPENDS / 2, "{shared} fsyncs for {} appends", THREADS * APPENDS);
    for t in 0..THREADS {
        assert_eq!(ids(&store, t), (1..=APPENDS).map(|i| (i, 1)).collect::<Vec<_>>());
    }
}

#[test]
fn a_failed_commit_fails_a_blocking_append_and_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(1).blocking();
    g.append(&ents(1..2, 1)).unwrap();
    store.inject_commit_failure();
    let failed = bounded({
        let g = g.clone();
        move || g.append(&ents(2..3, 1))
    });
    assert!(matches!(failed, Err(Error::WriteFailed(_))), "{failed:?}");
    assert!(matches!(g.append(&ents(2..3, 1)), Err(Error::Poisoned(_))));
    assert!(store.is_poisoned());
}

/// Blocking calls queued in the channel, or blocked on a full one, when the writer
/// panics come back `Closed` in bounded time, and so does every later one.
#[test]
fn a_writer_panic_fails_every_blocking_caller_closed() {
    let dir = tempfile::tempdir().unwrap();
    // Two slots: two calls wait in the channel, the rest wait to get in.
    let config = Config { channel_capacity: 2, ..Config::new(dir.path()) };
    let (store, writer) = LogStore::open(config).unwrap();
    let (tx, rx) = mpsc::channel();
    for g in 1..=6u64 {
        let (group, tx) = (store.group(g).blocking(), tx.clone());
        std::thread::spawn(move || {
            let _ = tx.send(group.append(&ents(1..2, 1)));
        });
    }
    drop(tx);
    // Let the callers reach the channel before the writer runs.
    std::thread::sleep(Duration::from_millis(100));
    store.inject_writer_panic();
    let run = std::thread::spawn(move || writer.run_blocking());
    assert!(run.join().is_err(), "the writer was made to panic");
    for _ in 0..6 {
        let result = rx.recv_timeout(BOUND).expect("a blocking caller hung");
        assert!(matches!(result, Err(Error::Closed)), "{result:?}");
    }
    let later = bounded({
        let g = store.group(1).blocking();
        move || g.append(&ents(1..2, 1))
    });
    assert!(matches!(later, Err(Error::Closed)), "{later:?}");
}

#[test]
fn blocking_writes_after_a_shutdown_or_for_a_writer_that_never_runs_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = LogStore::open(Config::new(dir.path())).unwrap();
    let pending = std::thread::spawn({
        let g = store.group(1).blocking();
        move || g.append(&ents(1..2, 1))
    });
    std::thread::sleep(Duration::from_millis(50));
    drop(writer);
    let result = bounded(move || pending.join().unwrap());
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
    drop(store);

    let store = open(dir.path());
    let g = store.group(1).blocking();
    g.append(&ents(1..2, 1)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(store.shutdown()).unwrap();
    assert!(matches!(g.append(&ents(2..3, 1)), Err(Error::Closed)));
    drop((g, store));
    assert_eq!(ids(&open(dir.path()), 1), vec![(1, 1)]);
}

/// A thread appending as fast as it can while another shuts the engine down: every call
/// comes back, `Ok` until the shutdown and `Closed` from then on, and a reopen finds
/// exactly the acknowledged entries. Calls that reach the channel after the stopping
/// writer emptied it stay there unanswered; without watching the writer's phase they
/// would wait forever (checked: most rounds hang then).
#[test]
fn blocking_appends_racing_a_shutdown_all_come_back_and_lose_nothing_acknowledged() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let g = store.group(1).blocking();
        let appender = std::thread::spawn(move || {
            let mut acked = 0;
            loop {
                match g.append(&ents(acked + 1..acked + 2, 1)) {
                    Ok(()) => acked += 1,
                    Err(e) => return (acked, e),
                }
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        runtime.block_on(store.shutdown()).unwrap();
        let (acked, error) = bounded(move || appender.join().unwrap());
        assert!(matches!(error, Error::Closed), "round {round}: {error:?}");
        drop(store);
        let store = open(dir.path());
        assert_eq!(ids(&store, 1), (1..=acked).map(|i| (i, 1)).collect::<Vec<_>>(), "round {round}");
    }
}

/// Under `Durability::Buffered` blocking appends return before their fsync, and
/// `flush_blocking` fsyncs them once; with nothing new written, it fsyncs nothing (the
/// control that its count is the flush's own).
#[test]
fn flush_blocking_fsyncs_buffered_appends_once() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        LogStore::start(Config { durability: Durability::Buffered, ..Config::new(dir.path()) }).unwrap();
    let g = store.group(1).blocking();
    let syncs = store.stats().syncs;
    for i in 1..=20 {
        g.append(&ents(i..i + 1, 1)).unwrap();
    }
    assert_eq!(store.stats().syncs, syncs, "buffered appends fsync nothing");
    store.flush_blocking().unwrap();
    assert_eq!(store.stats().syncs, syncs + 1);
    store.flush_blocking().unwrap();
    assert_eq!(store.stats().syncs, syncs + 1, "nothing new to fsync");
    drop((g, store));
    assert_eq!(ids(&open(dir.path()), 1).len(), 20);
    let closed = LogStore::start(Config::new(dir.path())).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(closed.shutdown()).unwrap();
    assert!(matches!(closed.flush_blocking(), Err(Error::Closed)));
}
