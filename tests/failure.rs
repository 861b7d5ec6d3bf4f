//! When writing fails the engine says so and never hangs: a failed commit poisons it, a
//! dead writer closes it, and shutdown is orderly and idempotent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Outcomes, ents, ids, open};
use rocklog::{Config, Error, LogStore};
use tokio::time::timeout;

const BOUND: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_failed_commit_fails_its_waiters_and_poisons_writes_but_not_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(1);
    g.append(&ents(1..4, 1)).await.unwrap();

    store.inject_commit_failure();
    assert!(matches!(g.append(&ents(4..5, 1)).await, Err(Error::WriteFailed(_))));
    assert!(store.is_poisoned());
    assert!(matches!(g.append(&ents(4..5, 1)).await, Err(Error::Poisoned(_))));
    assert!(matches!(
        store.group(2).save_hard_state(rocklog::HardState::default()).await,
        Err(Error::Poisoned(_))
    ));
    assert!(matches!(store.flush().await, Err(Error::Poisoned(_))));
    // No checkpoint of a suspect engine: nothing is written at its destination.
    let copy = tempfile::tempdir().unwrap();
    assert!(matches!(store.checkpoint(copy.path().join("c")), Err(Error::Poisoned(_))));
    assert!(!copy.path().join("c").exists());
    // Reads still work and show only what was acknowledged.
    assert_eq!(ids(&store, 1), vec![(1, 1), (2, 1), (3, 1)]);

    // Reopening clears the poison; the acknowledged entries are there.
    store.shutdown().await.unwrap();
    let store = open(dir.path());
    assert_eq!(ids(&store, 1), vec![(1, 1), (2, 1), (3, 1)]);
    store.group(1).append(&ents(4..5, 1)).await.unwrap();
}

#[tokio::test]
async fn a_panicking_writer_closes_the_engine_and_nobody_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(1);
    g.append(&ents(1..2, 1)).await.unwrap();
    store.inject_writer_panic();
    let result = timeout(BOUND, g.append(&ents(2..3, 1))).await.expect("no hang");
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
    let later = timeout(BOUND, g.append(&ents(2..3, 1))).await.expect("no hang");
    assert!(matches!(later, Err(Error::Closed)));
    // Once the dying writer has closed the database (shutdown waits for that), reads
    // fail too.
    timeout(BOUND, store.shutdown()).await.expect("no hang").unwrap();
    assert!(matches!(g.entry(1), Err(Error::Closed)));
    drop((store, g));
    // The directory was released by the dying writer.
    let store = open(dir.path());
    assert_eq!(ids(&store, 1), vec![(1, 1)]);
}

/// Every kind of call, queued in the channel or blocked on it when the writer panics,
/// comes back `Closed` in bounded time; so does every later call, reads included once the
/// dying writer has closed the database; `Writer::run` reports the death; and the
/// directory reopens with exactly what was acknowledged before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_panic_closes_every_pending_and_later_call() {
    use rocklog::{HardState, LogId};
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path());
        store.group(1).append(&ents(1..6, 1)).await.unwrap();
        let before = common::snapshot(&store);
        store.shutdown().await.unwrap();
        before
    };
    // Two slots: two calls wait in the channel, the rest wait to get in.
    let config = Config { channel_capacity: 2, ..Config::new(dir.path()) };
    let (store, writer) = LogStore::open(config).unwrap();
    let mut pending = Vec::new();
    for i in 0..12u64 {
        let (g, s) = (store.group(1 + i % 3), store.clone());
        let mut task = tokio_test::task::spawn(async move {
            match i % 6 {
                0 => g.append(&ents(6..7, 1)).await,
                1 => g.truncate(3).await,
                2 => g.purge(LogId::new(1, 2)).await,
                3 => g.save_hard_state(HardState { term: 2, vote: Some(1), commit: 1 }).await,
                4 => s.flush().await,
                _ => g.create().await,
            }
        });
        assert!(task.poll().is_pending());
        pending.push(task);
    }
    store.inject_writer_panic();
    let run = timeout(BOUND, writer.run()).await.expect("the dying writer's run() hung");
    assert!(matches!(run, Err(Error::Closed)), "{run:?}");
    for (i, task) in pending.into_iter().enumerate() {
        let result = timeout(BOUND, task).await.expect("a pending call hung");
        assert!(matches!(result, Err(Error::Closed)), "call {i}: {result:?}");
    }
    let g = store.group(1);
    for (name, result) in [
        ("append", timeout(BOUND, g.append(&ents(6..7, 1))).await),
        ("purge", timeout(BOUND, g.purge(LogId::new(1, 1))).await),
        ("remove", timeout(BOUND, g.remove()).await),
        ("flush", timeout(BOUND, store.flush()).await),
    ] {
        assert!(matches!(result.expect("no hang"), Err(Error::Closed)), "{name}");
    }
    assert!(matches!(g.entries(.., None), Err(Error::Closed)));
    let (a, b) = (store.clone(), store.clone());
    let (ra, rb) = tokio::join!(timeout(BOUND, a.shutdown()), timeout(BOUND, b.shutdown()));
    ra.expect("no hang").unwrap();
    rb.expect("no hang").unwrap();
    drop((g, store));
    let store = open(dir.path());
    assert_eq!(common::snapshot(&store), before, "nothing of the dead batch reached the disk");
}

#[tokio::test]
async fn writes_queued_for_a_writer_that_never_runs_fail_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = LogStore::open(Config::new(dir.path())).unwrap();
    let g = store.group(1);
    let pending = tokio::spawn(async move { g.append(&ents(1..2, 1)).await });
    tokio::task::yield_now().await;
    drop(writer);
    let result = timeout(BOUND, pending).await.expect("no hang").unwrap();
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
    assert!(matches!(store.group(1).append(&ents(1..2, 1)).await, Err(Error::Closed)));
    assert!(matches!(store.flush().await, Err(Error::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_commits_what_was_queued_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = LogStore::open(Config::new(dir.path())).unwrap();
    let mut queued = Vec::new();
    for group in 0..20u64 {
        let g = store.group(group);
        let mut task = tokio_test::task::spawn(async move { g.append(&ents(1..3, 1)).await });
        assert!(task.poll().is_pending());
        queued.push(task);
    }
    let s = store.clone();
    let mut shutdown = tokio_test::task::spawn(async move { s.shutdown().await });
    assert!(shutdown.poll().is_pending());
    let run = tokio::spawn(writer.run());
    for task in queued {
        timeout(BOUND, task).await.expect("no hang").unwrap();
    }
    timeout(BOUND, shutdown).await.expect("no hang").unwrap();
    timeout(BOUND, run).await.expect("no hang").unwrap().unwrap();
    assert!(matches!(store.group(0).append(&ents(3..4, 1)).await, Err(Error::Closed)));
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.groups().len(), 20);
    assert!(store.groups().iter().all(|&g| ids(&store, g) == vec![(1, 1), (2, 1)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_and_repeated_shutdowns_are_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.group(1).append(&ents(1..2, 1)).await.unwrap();
    let (a, b) = (store.clone(), store.clone());
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { a.shutdown().await }),
        tokio::spawn(async move { b.shutdown().await })
    );
    ra.unwrap().unwrap();
    rb.unwrap().unwrap();
    timeout(BOUND, store.shutdown()).await.expect("no hang").unwrap();
    assert!(matches!(store.group(1).append(&ents(2..3, 1)).await, Err(Error::Closed)));
}

#[tokio::test]
async fn a_failed_commit_fails_the_pipelined_append_and_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let seen = Outcomes::default();
    let group = store.group(1);
    group.append_then(&ents(1..3, 1), seen.callback(1)).await.unwrap();
    store.inject_commit_failure();
    let failed = group.append_then(&ents(3..4, 1), seen.callback(2)).await;
    assert!(matches!(failed, Err(Error::WriteFailed(_))), "{failed:?}");
    let later = group.append_then(&ents(3..4, 1), seen.callback(3)).await;
    assert!(matches!(later, Err(Error::Poisoned(_))), "{later:?}");
    // The append accepted before the failure was reported, the failed ones never.
    let flushed = store.flush().await;
    assert!(matches!(flushed, Err(Error::Poisoned(_))), "{flushed:?}");
    let got = seen.get();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, 1);
    assert_eq!(group.last_index().unwrap(), Some(2), "reads still work");
}

#[tokio::test]
async fn a_dead_writer_fails_pipelined_appends_with_closed_and_none_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let seen = Outcomes::default();
    let group = store.group(1);
    group.append_then(&ents(1..2, 1), seen.callback(1)).await.unwrap();
    store.inject_writer_panic();
    for i in 2..5u64 {
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            group.append_then(&ents(i..i + 1, 1), seen.callback(i)),
        )
        .await
        .expect("a dead writer must not leave a pipelined append hanging");
        assert!(matches!(r, Err(Error::Closed)), "{r:?}");
    }
    // Whatever was accepted before the panic was reported one way or the other.
    let got = seen.get();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, 1);
}

/// A data directory removed under a running engine (an operator's `rm -rf`, a volume
/// gone): the engine carries on until RocksDB next needs a new file, and then that write
/// fails with `WriteFailed`, the engine poisons itself, later writes fail with
/// `Poisoned`, reads of what was acknowledged still answer, and shutdown returns. Nothing
/// panics or hangs. (2026-12-05: a test that panicked with its writer still running did
/// this by accident, through its temporary directory; docs/reliability.md.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_removed_under_the_engine_fails_writes_and_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { write_buffer_size: rocklog::ByteSize::mib(1), ..Config::new(dir.path()) };
    let store = LogStore::start(config).unwrap();
    let g = store.group(1);
    g.append(&ents(1..4, 1)).await.unwrap();
    std::fs::remove_dir_all(dir.path()).unwrap();

    // 1 MiB memtables: within 64 entries of 64 KiB RocksDB needs a new WAL file.
    let mut failed = None;
    for i in 4..68 {
        match timeout(BOUND, g.append(&common::large(i..i + 1, 1))).await.expect("an append hung") {
            Ok(()) => {}
            Err(e) => {
                failed = Some((i, e));
                break;
            }
        }
    }
    let (at, error) = failed.expect("4 MiB of appends into a removed directory all succeeded");
    assert!(matches!(error, Error::WriteFailed(_)), "entry {at}: {error:?}");
    assert!(store.is_poisoned());
    assert!(matches!(g.append(&ents(at..at + 1, 1)).await, Err(Error::Poisoned(_))));
    // The acknowledged entries are still read.
    let read = g.entries(..at, None).unwrap();
    assert_eq!(read.len() as u64, at - 1, "entries 1..{at}");
    // Shutdown never fails (its contract), and does not hang on the missing directory.
    timeout(BOUND, store.shutdown()).await.expect("shutdown hung").unwrap();
    assert!(matches!(g.entries(.., None), Err(Error::Closed)));
}

/// An engine under `Durability::Buffered`.
fn buffered(dir: &std::path::Path) -> LogStore {
    LogStore::start(Config { durability: rocklog::Durability::Buffered, ..Config::new(dir) }).unwrap()
}

/// Under `Durability::Buffered`, shutdown's final fsync failing is reported, to every
/// caller, and not as a clean close: the writes it should have made durable are still in
/// the WAL file (a reopen reads them) but would not survive a power loss.
#[tokio::test]
async fn a_failed_final_fsync_of_buffered_writes_fails_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let store = buffered(dir.path());
    store.group(1).append(&ents(1..4, 1)).await.unwrap();
    store.inject_fsync_failure();
    let outcome = timeout(BOUND, store.shutdown()).await.expect("shutdown hung");
    assert!(matches!(&outcome, Err(Error::WriteFailed(r)) if r.contains("fsync")), "{outcome:?}");
    assert!(store.is_poisoned());
    let again = timeout(BOUND, store.shutdown()).await.expect("second shutdown hung");
    assert!(matches!(again, Err(Error::WriteFailed(_))), "{again:?}");
    assert!(matches!(store.group(1).entries(.., None), Err(Error::Closed)));
    assert!(matches!(store.group(1).append(&ents(4..5, 1)).await, Err(Error::Poisoned(_))));

    // The control: the same writes, and a final fsync that works.
    let store = open(dir.path());
    assert_eq!(ids(&store, 1), vec![(1, 1), (2, 1), (3, 1)]);
    store.shutdown().await.unwrap();
    let store = buffered(dir.path());
    store.group(1).append(&ents(4..5, 1)).await.unwrap();
    store.shutdown().await.unwrap();
}

/// Under `Durability::Buffered`, an engine poisoned with buffered writes not yet fsynced
/// reports them at shutdown (`Poisoned`); once a `flush()` made them durable before the
/// poison, shutdown has nothing to report. Under `Durability::Sync` it never fails (the
/// first test above).
#[tokio::test]
async fn shutdown_reports_buffered_writes_a_poison_left_unsynced() {
    let dir = tempfile::tempdir().unwrap();
    let store = buffered(dir.path());
    let g = store.group(1);
    g.append(&ents(1..4, 1)).await.unwrap();
    store.inject_commit_failure();
    assert!(matches!(g.append(&ents(4..5, 1)).await, Err(Error::WriteFailed(_))));
    let outcome = timeout(BOUND, store.shutdown()).await.expect("shutdown hung");
    assert!(matches!(outcome, Err(Error::Poisoned(_))), "{outcome:?}");

    let store = buffered(dir.path());
    let g = store.group(1);
    assert_eq!(ids(&store, 1), vec![(1, 1), (2, 1), (3, 1)]);
    g.append(&ents(4..5, 1)).await.unwrap();
    store.flush().await.unwrap();
    store.inject_commit_failure();
    assert!(matches!(g.append(&ents(5..6, 1)).await, Err(Error::WriteFailed(_))));
    timeout(BOUND, store.shutdown()).await.expect("shutdown hung").unwrap();
}
