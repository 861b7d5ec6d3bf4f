//! Every bad command is refused with a typed error, writes nothing, fails alone, and leaves
//! the engine usable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ents, snapshot};
use rocklog::{ByteSize, Config, Entry, Error, LogId, LogStore};

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
    ] {
        assert!(matches!(LogStore::open(broken), Err(Error::InvalidConfig(_))));
    }
    assert!(!path.exists());
}
