//! Every bad command is refused with a typed error, writes nothing, fails alone, and leaves
//! the engine usable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ents, snapshot};
use rocklog::{ByteSize, Config, Entry, Error, HardState, LogId, LogStore};

/// A store with group 1 holding 1..=10 in terms 1 (1..=5) and 2 (6..=10), purged to 3.
async fn seeded(dir: &std::path::Path) -> LogStore {
    let mut config = Config::new(dir);
    config.max_entry_bytes = ByteSize::kib(4);
    let store = LogStore::start(config).unwrap();
    let g = store.group(1);
    g.append(&ents(1..6, 1)).await.unwrap();
    g.append(&ents(6..11, 2)).await.unwrap();
    g.purge(LogId::new(1, 3)).await.unwrap();
    store
}

#[tokio::test]
async fn each_bad_command_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = seeded(dir.path()).await;
    let g = store.group(1);
    let before = snapshot(&store);

    macro_rules! refused {
        ($call:expr, $pat:pat) => {{
            let result = $call;
            assert!(matches!(result, Err($pat)), "{}: got {:?}", stringify!($call), result);
            assert_eq!(snapshot(&store), before, "{} changed the store", stringify!($call));
        }};
    }
    refused!(g.append(&ents(12..13, 2)).await, Error::Gap { index: 12, expected: 11, .. });
    refused!(
        g.append(&[Entry::new(11, 2, "a"), Entry::new(13, 2, "b")]).await,
        Error::NonContiguous { previous: 11, index: 13, .. }
    );
    refused!(g.append(&ents(3..5, 2)).await, Error::BelowPurgeBoundary { index: 3, boundary: 3, .. });
    refused!(g.append(&ents(0..1, 2)).await, Error::BelowPurgeBoundary { index: 0, .. });
    refused!(
        g.append(&[Entry::new(11, 2, vec![0u8; 4097])]).await,
        Error::EntryTooLarge { index: 11, size: 4097, limit: 4096, .. }
    );
    refused!(
        g.append(&[Entry::new(11, 3, "a"), Entry::new(12, 2, "b")]).await,
        Error::TermRegression { index: 12, .. }
    );
    refused!(g.append(&ents(11..12, 1)).await, Error::TermRegression { index: 11, term: 1, previous: 2, .. });
    refused!(g.append(&ents(8..9, 1)).await, Error::TermRegression { index: 8, previous: 2, .. });
    refused!(g.truncate(3).await, Error::BelowPurgeBoundary { index: 3, .. });
    refused!(g.purge(LogId::new(1, 2)).await, Error::BelowPurgeBoundary { index: 2, boundary: 3, .. });
    refused!(g.purge(LogId::new(9, 7)).await, Error::TermMismatch { index: 7, expected: 9, found: 2, .. });
    refused!(g.purge(LogId::new(2, 3)).await, Error::TermMismatch { index: 3, .. });
    refused!(store.group(2).truncate(1).await, Error::GroupNotFound(2));
    refused!(store.group(2).reset().await, Error::GroupNotFound(2));
    refused!(store.group(2).remove().await, Error::GroupNotFound(2));
    refused!(store.group(2).append(&ents(5..6, 1)).await, Error::Gap { expected: 1, .. });
    refused!(store.group(2).entry(1), Error::GroupNotFound(2));
    refused!(store.group(2).entries(.., None), Error::GroupNotFound(2));
    refused!(store.group(2).log_state(), Error::GroupNotFound(2));
    refused!(g.entries(2..8, None), Error::Compacted { index: 2, first: 4, .. });

    // Still usable, and the refusals were counted.
    g.append(&ents(11..12, 2)).await.unwrap();
    assert_eq!(g.last_index().unwrap(), Some(11));
    assert_eq!(store.stats().rejected, 16);
    assert!(!store.is_poisoned());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_fails_alone_in_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (store, writer) = LogStore::open(Config::new(dir.path())).unwrap();
    // Queue everything before the writer runs, so it all lands in one batch.
    let mut queued = Vec::new();
    for (group, start) in [(1u64, 1u64), (2, 7), (3, 1), (1, 5), (4, 1)] {
        let g = store.group(group);
        let mut task = tokio_test::task::spawn(async move { g.append(&ents(start..start + 3, 1)).await });
        assert!(task.poll().is_pending(), "queued, waiting for the writer");
        queued.push(task);
    }
    let writer = std::thread::spawn(move || writer.run_blocking());
    let mut results = Vec::new();
    for task in queued {
        results.push(task.await);
    }
    assert!(results[0].is_ok() && results[2].is_ok() && results[4].is_ok(), "{results:?}");
    assert!(matches!(results[1], Err(Error::Gap { group: 2, .. })));
    assert!(matches!(results[3], Err(Error::Gap { group: 1, expected: 4, .. })));
    assert_eq!(store.stats().commits, 1, "one batch carried the valid commands");
    assert_eq!(store.groups(), vec![1, 3, 4], "the refused append did not create group 2");
    store.shutdown().await.unwrap();
    writer.join().unwrap().unwrap();
}

#[test]
fn bad_configs_are_refused_before_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never-created");
    for broken in [
        Config { max_batch_entries: 0, ..Config::new(&path) },
        Config { channel_capacity: 0, ..Config::new(&path) },
        Config { max_batch_bytes: ByteSize(10), ..Config::new(&path) },
        Config { max_entry_bytes: ByteSize(0), ..Config::new(&path) },
        Config { linger: std::time::Duration::from_secs(60), ..Config::new(&path) },
        Config { max_batch_entries: 10_000_000, ..Config::new(&path) },
        Config { max_batch_bytes: ByteSize::gib(2), ..Config::new(&path) },
        Config { channel_capacity: 2_000_000, ..Config::new(&path) },
        Config { write_buffer_size: ByteSize::kib(1), ..Config::new(&path) },
        Config { max_entry_bytes: ByteSize::gib(2), ..Config::new(&path) },
    ] {
        assert!(matches!(LogStore::open(broken), Err(Error::InvalidConfig(_))));
    }
    assert!(!path.exists());
}

#[test]
fn bad_config_files_are_refused_with_a_message_naming_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    match Config::from_toml_file(&missing) {
        Err(Error::Io { path, source }) => {
            assert_eq!((path, source.kind()), (missing, std::io::ErrorKind::NotFound));
        }
        other => panic!("expected Io, got {other:?}"),
    }
    for (text, field) in [
        ("max_batch_entries = = 3", "max_batch_entries"),
        ("[path]\nx = 1", "path"),
        ("max_batch_entries = \"many\"", "max_batch_entries"),
        ("max_batch_entries = -1", "max_batch_entries"),
        ("max_batch_entries = 10000000", "max_batch_entries"),
        ("max_batch_bytes = \"2GiB\"", "max_batch_bytes"),
        ("max_batch_bytes = \"4 parsecs\"", "max_batch_bytes"),
        ("channel_capacity = 2000000", "channel_capacity"),
        ("block_cache_size = \"2TiB\"", "block_cache_size"),
        ("compression = \"snappy\"", "compression"),
        ("blob_compression = \"lz5\"", "blob_compression"),
        ("adaptive_batching = \"yes\"", "adaptive_batching"),
        ("linger = \"-1ms\"", "linger"),
    ] {
        let file = dir.path().join("rocklog.toml");
        std::fs::write(&file, text).unwrap();
        match Config::from_toml_file(&file) {
            Err(Error::InvalidConfig(msg)) => {
                assert!(msg.contains("rocklog.toml") && msg.contains(field), "{text}: {msg}");
            }
            other => panic!("{text}: expected InvalidConfig, got {other:?}"),
        }
    }
}

/// A group of raft-rs style (first index 1, never purged) cannot take an append at 0: it
/// would leave entries 1.. on disk behind a log that claims to end at 0.
#[tokio::test]
async fn index_zero_after_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    let g = store.group(1);
    g.append(&ents(1..4, 1)).await.unwrap();
    let before = snapshot(&store);
    for entries in [ents(0..1, 1), ents(0..5, 1), ents(0..1, 2)] {
        let result = g.append(&entries).await;
        assert!(matches!(result, Err(Error::BelowFirstIndex { group: 1, index: 0, first: 1 })), "{result:?}");
        assert_eq!(snapshot(&store), before);
    }
    // An openraft-style group, numbered from 0, takes 0 and overwrites from it.
    let h = store.group(2);
    h.append(&ents(0..3, 1)).await.unwrap();
    h.append(&ents(0..1, 2)).await.unwrap();
    assert_eq!(common::ids(&store, 2), vec![(0, 2)]);
    store.shutdown().await.unwrap();
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    assert_eq!(snapshot(&store)[0], before[0], "nothing of the refused appends reached the disk");
}

/// Indexes at the very end of the u64 range are odd but must never panic the writer or a
/// reader: each is answered, and the engine stays usable.
#[tokio::test]
async fn indexes_at_the_end_of_the_range_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    let max = u64::MAX;
    let g = store.group(1);
    g.purge(LogId::new(1, max)).await.unwrap();
    assert_eq!(g.last_log_id().unwrap(), Some(LogId::new(1, max)));
    assert!(matches!(g.append(&ents(max..max, 1)).await, Ok(())));
    let result = g.append(&[Entry::new(max, 1, "x")]).await;
    assert!(matches!(result, Err(Error::BelowPurgeBoundary { .. })), "{result:?}");
    assert!(matches!(g.entries(5..10, None), Err(Error::Compacted { .. })));
    assert_eq!(g.entries(.., None).unwrap(), vec![]);
    assert_eq!(g.term(max).unwrap(), Some(1));

    let h = store.group(2);
    h.purge(LogId::new(1, max - 2)).await.unwrap();
    h.append(&[Entry::new(max - 1, 1, "a"), Entry::new(max, 1, "b")]).await.unwrap();
    h.append(&[Entry::new(max, 2, "c")]).await.unwrap();
    assert_eq!(h.entries(.., None).unwrap().len(), 2);
    assert_eq!(h.entries(max.., None).unwrap()[0].payload, "c");
    assert_eq!(h.entries(max - 1..=max, Some(1)).unwrap().len(), 1);
    assert_eq!(h.entry(max).unwrap().map(|e| e.term), Some(2));
    let result = h.append(&[Entry::new(max, 2, "d"), Entry::new(0, 2, "wrapped")]).await;
    assert!(matches!(result, Err(Error::NonContiguous { .. })), "{result:?}");
    h.truncate(max).await.unwrap();
    assert_eq!(h.last_log_id().unwrap(), Some(LogId::new(1, max - 1)));

    // Still healthy, and all of it reopens.
    store.group(3).append(&ents(1..3, 1)).await.unwrap();
    assert!(!store.is_poisoned());
    let before = snapshot(&store);
    store.shutdown().await.unwrap();
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    assert_eq!(snapshot(&store), before);
}

/// An append larger than a whole batch may carry is neither split nor refused: it commits
/// alone, whole, and the writes queued around it commit too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_larger_than_a_batch_commits_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        Config { max_batch_entries: 2, max_batch_bytes: ByteSize::kib(1), ..Config::new(dir.path()) };
    let store = LogStore::start(config).unwrap();
    let big: Vec<Entry> = (1..=200).map(|i| Entry::new(i, 1, vec![7u8; 100])).collect();
    let mut tasks = vec![{
        let g = store.group(1);
        tokio::spawn(async move { g.append(&big).await })
    }];
    for group in 2..10 {
        let g = store.group(group);
        tasks.push(tokio::spawn(async move { g.append(&ents(1..2, 1)).await }));
    }
    for t in tasks {
        tokio::time::timeout(std::time::Duration::from_secs(30), t).await.expect("no hang").unwrap().unwrap();
    }
    assert_eq!(store.group(1).entries(.., None).unwrap().len(), 200);
    assert_eq!(store.groups().len(), 9);
    assert!(store.stats().commits >= 2);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_read_of_an_unknown_group_is_group_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = seeded(dir.path()).await;
    let g = store.group(77);
    assert!(matches!(g.term(1), Err(Error::GroupNotFound(77))));
    assert!(matches!(g.first_index(), Err(Error::GroupNotFound(77))));
    assert!(matches!(g.last_index(), Err(Error::GroupNotFound(77))));
    assert!(matches!(g.last_log_id(), Err(Error::GroupNotFound(77))));
    assert!(matches!(g.purged(), Err(Error::GroupNotFound(77))));
    assert!(matches!(g.hard_state(), Err(Error::GroupNotFound(77))));
    assert!(!g.exists());
    assert_eq!(store.groups(), vec![1], "reads create nothing");
}

/// After shutdown every call fails with `Closed` at once, and none of them reaches the disk.
#[tokio::test]
async fn every_call_after_shutdown_is_closed_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = seeded(dir.path()).await;
    let before = snapshot(&store);
    store.shutdown().await.unwrap();
    let (g, new) = (store.group(1), store.group(5));
    let bound = std::time::Duration::from_secs(10);
    macro_rules! closed {
        ($call:expr) => {{
            let result = tokio::time::timeout(bound, $call).await.expect("no hang");
            assert!(matches!(result, Err(Error::Closed)), "{}: {result:?}", stringify!($call));
        }};
    }
    closed!(g.append(&ents(11..12, 2)));
    closed!(g.truncate(8));
    closed!(g.purge(LogId::new(2, 8)));
    closed!(g.save_hard_state(HardState { term: 9, vote: None, commit: 0 }));
    closed!(g.reset());
    closed!(g.remove());
    closed!(new.create());
    closed!(store.flush());
    closed!(store.sync());
    assert!(matches!(g.entry(5), Err(Error::Closed)));
    assert!(matches!(g.entries(.., None), Err(Error::Closed)));
    assert!(matches!(g.term(6), Err(Error::Closed)));
    // Also where memory alone knows the term (the last entry, in the last term run).
    let last = before.iter().find(|(id, ..)| *id == 1).and_then(|(_, log, ..)| log.last_index()).unwrap();
    assert!(matches!(g.term(last), Err(Error::Closed)));
    store.shutdown().await.unwrap();
    drop((g, new, store));
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    assert_eq!(snapshot(&store), before);
}
