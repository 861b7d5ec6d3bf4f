//! The d-engine adapter: d-engine-core's own storage conformance suite, then what the
//! suite does not pin down (restarts, atomic replace, reset, overlap rules, error types).
//!
//! Run with `cargo test --all-features --test d_engine_suite` (feature `d-engine-suite`).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use d_engine_core::storage_engine_test::{StorageEngineBuilder, StorageEngineTestSuite};
use d_engine_core::{
    Error as DError, HardState as DHardState, LogStore as _, MetaStore as _, StorageEngine as _,
};
use d_engine_proto::common::{Entry as DEntry, EntryPayload, LogId as DLogId, entry_payload::Payload};
use d_engine_proto::server::election::VotedFor;
use rocklog::d_engine::{DEngineStorage, rocklog_error};
use rocklog::{Config, Durability, Error, LogStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const GROUP: u64 = 7;

/// Builds engines on one directory, as d-engine's own RocksDB builder does: the suite's
/// durability cases drop an engine and build the next one on the same data at once.
struct Builder {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Builder {
    fn new() -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("rocklog");
        Ok(Builder { _dir: dir, path })
    }
}

#[async_trait]
impl StorageEngineBuilder for Builder {
    type Engine = DEngineStorage;

    async fn build(&self) -> Result<Arc<DEngineStorage>, DError> {
        Ok(Arc::new(DEngineStorage::open(Config::new(&self.path), GROUP)?))
    }

    async fn cleanup(&self) -> Result<(), DError> {
        Ok(())
    }
}

#[tokio::test]
async fn conformance_suite_passes_on_a_current_thread_runtime() -> Result<(), DError> {
    StorageEngineTestSuite::run_all_tests(Builder::new()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_on_a_multi_thread_runtime() -> Result<(), DError> {
    StorageEngineTestSuite::run_all_tests(Builder::new()?).await
}

fn entry(index: u64, term: u64, command: &str) -> DEntry {
    let payload = Payload::Command(Bytes::copy_from_slice(command.as_bytes()));
    DEntry { index, term, payload: Some(EntryPayload { payload: Some(payload) }) }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<DEntry> {
    range.map(|i| entry(i, term, &format!("cmd {i}@{term}"))).collect()
}

#[allow(clippy::unnecessary_wraps)] // returns what the `voted_for` field holds
fn vote(id: u32, term: u64, committed: bool) -> Option<VotedFor> {
    Some(VotedFor { voted_for_id: id, voted_for_term: term, committed })
}

fn terms(storage: &DEngineStorage) -> Result<Vec<(u64, u64)>, DError> {
    let log = storage.log_store();
    Ok(log.get_entries(0..=u64::MAX)?.iter().map(|e| (e.index, e.term)).collect())
}

#[tokio::test]
async fn restart_keeps_log_purge_boundary_and_the_exact_hard_state() -> TestResult {
    let builder = Builder::new()?;
    let written = entries(1..=20, 2);
    let hard_state = DHardState { current_term: 5, voted_for: vote(3, 4, true) };
    {
        let storage = builder.build().await?;
        storage.log_store().persist_entries(written.clone()).await?;
        storage.log_store().purge(DLogId { term: 2, index: 5 }).await?;
        storage.meta_store().save_hard_state(&hard_state)?;
    } // dropped: the directory must be free again right away, with no sleep
    let storage = builder.build().await?;
    let (log, meta) = (storage.log_store(), storage.meta_store());
    assert_eq!(log.last_index(), 20);
    assert_eq!(log.load_purge_boundary()?, Some(DLogId { term: 2, index: 5 }));
    assert_eq!(log.get_entries(1..=20)?, written[5..].to_vec());
    assert_eq!(log.entry(5).await?, None);
    assert_eq!(log.entry(6).await?, Some(written[5].clone()));
    let loaded = meta.load_hard_state()?.ok_or("hard state lost")?;
    assert_eq!((loaded.current_term, loaded.voted_for), (5, vote(3, 4, true)));
    Ok(())
}

#[tokio::test]
async fn the_directory_can_be_reopened_right_after_each_drop() -> TestResult {
    let builder = Builder::new()?;
    for round in 1..=30u64 {
        let storage = builder.build().await?;
        assert_eq!(storage.log_store().last_index(), round - 1, "round {round}");
        storage.log_store().persist_entries(vec![entry(round, 1, "x")]).await?;
    }
    Ok(())
}

#[tokio::test]
async fn replace_range_is_one_atomic_commit() -> TestResult {
    let builder = Builder::new()?;
    let storage = builder.build().await?;
    let log = storage.log_store();
    log.persist_entries(entries(1..=10, 1)).await?;

    let commits = storage.store().stats().commits;
    log.replace_range(6, entries(6..=8, 2)).await?;
    assert_eq!(storage.store().stats().commits, commits + 1, "truncate and append in one WriteBatch");
    let expected: Vec<(u64, u64)> = (1..=5).map(|i| (i, 1)).chain((6..=8).map(|i| (i, 2))).collect();
    assert_eq!(terms(&storage)?, expected);
    assert_eq!(log.last_index(), 8);
    assert_eq!(log.entry(7).await?, Some(entry(7, 2, "cmd 7@2")));

    // Entries that do not start at `from` would leave a gap: refused, nothing written.
    let refused = log.replace_range(4, entries(5..=6, 3)).await.err().ok_or("gap accepted")?;
    assert!(matches!(rocklog_error(&refused), Some(Error::Gap { index: 5, expected: 4, .. })), "{refused}");
    assert_eq!(terms(&storage)?, expected);

    // No entries: a truncation.
    log.replace_range(7, Vec::new()).await?;
    assert_eq!(log.last_index(), 6);

    // The replaced log is what a restart sees.
    drop((log, storage));
    let storage = builder.build().await?;
    assert_eq!(terms(&storage)?, expected[..6].to_vec());
    Ok(())
}

#[tokio::test]
async fn reset_clears_the_log_and_boundary_but_keeps_the_hard_state() -> TestResult {
    let builder = Builder::new()?;
    let storage = builder.build().await?;
    let (log, meta) = (storage.log_store(), storage.meta_store());
    meta.save_hard_state(&DHardState { current_term: 3, voted_for: vote(1, 3, false) })?;
    log.persist_entries(entries(1..=10, 3)).await?;
    log.purge(DLogId { term: 3, index: 4 }).await?;

    log.reset().await?;
    assert_eq!(log.last_index(), 0);
    assert_eq!(log.load_purge_boundary()?, None);
    assert!(log.get_entries(0..=100)?.is_empty());
    let kept = meta.load_hard_state()?.ok_or("hard state lost")?;
    assert_eq!((kept.current_term, kept.voted_for), (3, vote(1, 3, false)));

    // The log starts afresh at index 1, and all of it survives a restart.
    log.persist_entries(entries(1..=2, 4)).await?;
    drop((log, meta, storage));
    let storage = builder.build().await?;
    assert_eq!(terms(&storage)?, vec![(1, 4), (2, 4)]);
    let kept = storage.meta_store().load_hard_state()?.ok_or("hard state lost")?;
    assert_eq!(kept.current_term, 3);
    Ok(())
}

#[tokio::test]
async fn persisting_entries_already_in_the_log_keeps_the_suffix_and_a_conflict_replaces_it() -> TestResult {
    let storage = Builder::new()?.build().await?;
    let log = storage.log_store();
    log.persist_entries(entries(1..=10, 1)).await?;

    // A re-persist of entries the log already has (same index and term) changes nothing.
    log.persist_entries(entries(3..=5, 1)).await?;
    assert_eq!(log.last_index(), 10);
    // An overlap that extends the log appends only the new tail.
    log.persist_entries(entries(9..=12, 1)).await?;
    assert_eq!(log.last_index(), 12);
    // A conflicting overlap (other term) replaces the log from its first entry.
    log.persist_entries(entries(8..=9, 2)).await?;
    let expected: Vec<(u64, u64)> = (1..=7).map(|i| (i, 1)).chain([(8, 2), (9, 2)]).collect();
    assert_eq!(terms(&storage)?, expected);

    // Bad input is refused with rocklog's typed error inside d-engine's.
    let gap = log.persist_entries(entries(11..=11, 2)).await.err().ok_or("gap accepted")?;
    assert!(matches!(rocklog_error(&gap), Some(Error::Gap { index: 11, expected: 10, .. })), "{gap}");
    let holes = vec![entry(10, 2, "a"), entry(12, 2, "b")];
    let broken = log.persist_entries(holes).await.err().ok_or("non-contiguous accepted")?;
    assert!(matches!(rocklog_error(&broken), Some(Error::NonContiguous { previous: 10, index: 12, .. })));
    let backwards = log.persist_entries(entries(10..=10, 1)).await.err().ok_or("term regression accepted")?;
    assert!(matches!(rocklog_error(&backwards), Some(Error::TermRegression { .. })), "{backwards}");
    assert_eq!(terms(&storage)?, expected);
    Ok(())
}

#[tokio::test]
async fn purge_rules() -> TestResult {
    let storage = Builder::new()?.build().await?;
    let log = storage.log_store();
    log.persist_entries(entries(1..=10, 1)).await?;

    log.purge(DLogId { term: 1, index: 4 }).await?;
    // An older cutoff is already done.
    log.purge(DLogId { term: 1, index: 2 }).await?;
    assert_eq!(log.load_purge_boundary()?, Some(DLogId { term: 1, index: 4 }));
    // Entries at or below the boundary are covered by the snapshot: skipped on persist.
    log.persist_entries(entries(3..=11, 1)).await?;
    assert_eq!((log.get_entries(0..=3)?.len(), log.last_index()), (0, 11));

    // A snapshot whose last entry conflicts with the log discards the whole log (Raft's
    // InstallSnapshot rule) and records the boundary.
    log.purge(DLogId { term: 3, index: 6 }).await?;
    assert_eq!(log.load_purge_boundary()?, Some(DLogId { term: 3, index: 6 }));
    assert!(log.get_entries(0..=100)?.is_empty());
    assert_eq!(log.last_index(), 6, "an empty log's last index is its boundary");
    log.persist_entries(entries(7..=8, 3)).await?;
    assert_eq!(terms(&storage)?, vec![(7, 3), (8, 3)]);

    // Past the end: an empty log whose next entry follows the boundary.
    log.purge(DLogId { term: 4, index: 20 }).await?;
    assert_eq!((log.last_index(), log.load_purge_boundary()?), (20, Some(DLogId { term: 4, index: 20 })));
    log.persist_entries(entries(21..=21, 4)).await?;
    assert_eq!(terms(&storage)?, vec![(21, 4)]);
    Ok(())
}

#[tokio::test]
async fn groups_of_one_engine_are_independent_and_share_its_writer() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = LogStore::start(Config::new(dir.path()))?;
    let (a, b) = (DEngineStorage::new(&store, 1), DEngineStorage::new(&store, 2));
    a.log_store().persist_entries(entries(1..=3, 1)).await?;
    b.log_store().persist_entries(entries(1..=5, 2)).await?;
    a.meta_store().save_hard_state(&DHardState { current_term: 1, voted_for: None })?;
    assert_eq!((a.log_store().last_index(), b.log_store().last_index()), (3, 5));
    assert!(b.meta_store().load_hard_state()?.is_none());
    assert_eq!(a.meta_store().load_hard_state()?.map(|h| h.current_term), Some(1));
    a.shutdown().await?;
    let closed =
        b.log_store().persist_entries(entries(6..=6, 2)).await.err().ok_or("write after shutdown")?;
    assert!(matches!(rocklog_error(&closed), Some(Error::Closed)), "{closed}");
    Ok(())
}

#[test]
fn synchronous_calls_work_outside_any_runtime() -> TestResult {
    let dir = tempfile::tempdir()?;
    let storage = DEngineStorage::open(Config::new(dir.path()), 1)?;
    let meta = storage.meta_store();
    meta.save_hard_state(&DHardState { current_term: 2, voted_for: vote(9, 2, false) })?;
    meta.flush()?;
    storage.log_store().flush()?;
    assert_eq!(meta.load_hard_state()?.and_then(|h| h.voted_for), vote(9, 2, false));
    Ok(())
}

#[tokio::test]
async fn buffered_durability_is_reported_and_flush_syncs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut config = Config::new(dir.path());
    config.durability = Durability::Buffered;
    let storage = DEngineStorage::open(config, 1)?;
    let log = storage.log_store();
    assert!(!log.is_write_durable(), "buffered writes need d-engine's flush");
    log.persist_entries(entries(1..=3, 1)).await?;
    let syncs = storage.store().stats().syncs;
    log.flush()?;
    storage.meta_store().flush_async().await?;
    assert!(storage.store().stats().syncs > syncs, "flush fsyncs the WAL");

    let sync_dir = tempfile::tempdir()?;
    let synced = DEngineStorage::open(Config::new(sync_dir.path()), 1)?;
    assert!(synced.log_store().is_write_durable());
    Ok(())
}
