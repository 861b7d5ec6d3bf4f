//! The openraft 0.10 adapter: openraft 0.10's own storage suite (`Suite::test_all`) over
//! `rocklog::openraft10::LogStorage`, plus the adapter's own behaviour across restarts,
//! purges past the end, interrupted purges, pipelined appends and failed commits (with
//! the rocklog error recovered from the `io::Error`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/shared/kv.rs"]
mod kv;
#[path = "../examples/shared/kv10.rs"]
mod kv10;

use openraft10::entry::RaftEntry;
use openraft10::impls::leader_id_adv::LeaderId;
use openraft10::storage::{IOFlushed, LogState, RaftLogStorage, RaftLogStorageExt};
use openraft10::testing::log::{StoreBuilder, Suite};
use openraft10::type_config::TypeConfigExt;
use openraft10::type_config::alias::{EntryOf, LogIdOf};
use openraft10::{ErrorSubject, ErrorVerb, LogId, Membership, RaftLogReader, StorageError, Vote};
use rocklog::openraft10::LogStorage;
use rocklog::{Config, LogStore};
use tempfile::TempDir;

use self::kv::{Request, SnapshotFile};
use self::kv10::{KvStateMachine, TypeConfig};

type Tc = TypeConfig;

// ----- openraft's suite -----

fn build_error(e: impl Into<kv::BoxError>) -> StorageError<Tc> {
    StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Write, std::io::Error::other(e))
}

/// A fresh engine in its own temporary directory for every case; the directory (the
/// guard) outlives the engine, which closes when the case drops its log store. The state
/// machine keeps its snapshots in the same directory.
struct Builder;

impl StoreBuilder<Tc, LogStorage<Tc>, KvStateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStorage<Tc>, KvStateMachine), StorageError<Tc>> {
        let dir = tempfile::tempdir().map_err(build_error)?;
        let store = LogStore::start(Config::new(dir.path().join("log"))).map_err(build_error)?;
        let log = LogStorage::open(store.group(1)).await.map_err(build_error)?;
        let sm =
            KvStateMachine::open(SnapshotFile(Some(dir.path().join("snapshot")))).map_err(build_error)?;
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openraft10_storage_suite_passes() {
    Suite::test_all(Builder).await.unwrap();
}

// ----- the adapter's own tests -----

fn log_id(term: u64, node: u64, index: u64) -> LogIdOf<Tc> {
    LogId { leader_id: LeaderId { term, node_id: node }, index }
}

fn normal(term: u64, node: u64, index: u64) -> EntryOf<Tc> {
    EntryOf::<Tc>::new_normal(log_id(term, node, index), Request::numbered(index))
}

fn blank(term: u64, node: u64, index: u64) -> EntryOf<Tc> {
    EntryOf::<Tc>::new_blank(log_id(term, node, index))
}

async fn open(dir: &TempDir, group: u64) -> (LogStore, LogStorage<Tc>) {
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    let log = LogStorage::open(store.group(group)).await.unwrap();
    (store, log)
}

async fn ids(log: &mut LogStorage<Tc>) -> Vec<LogIdOf<Tc>> {
    let mut reader = log.get_log_reader().await;
    reader.try_get_log_entries(..).await.unwrap().into_iter().map(|e| e.log_id).collect()
}

async fn state(log: &mut LogStorage<Tc>) -> LogState<Tc> {
    log.get_log_state().await.unwrap()
}

#[tokio::test]
async fn entries_vote_committed_and_purge_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut log) = open(&dir, 9).await;
    let membership = Membership::new_with_defaults(vec![[1, 2, 3].into()], []);
    log.blocking_append([blank(0, 0, 0), EntryOf::<Tc>::new_membership(log_id(1, 2, 1), membership)])
        .await
        .unwrap();
    log.blocking_append((2..20).map(|i| normal(1, 2, i))).await.unwrap();
    log.save_vote(&Vote::new_committed(1, 2)).await.unwrap();
    log.save_committed(Some(log_id(1, 2, 15))).await.unwrap();
    log.purge(log_id(1, 2, 4)).await.unwrap();
    let before = ids(&mut log).await;
    store.shutdown().await.unwrap();
    drop(log);

    let (store, mut log) = open(&dir, 9).await;
    assert_eq!(ids(&mut log).await, before);
    assert_eq!(before.first(), Some(&log_id(1, 2, 5)));
    let mut reader = log.get_log_reader().await;
    assert_eq!(reader.read_vote().await.unwrap(), Some(Vote::new_committed(1, 2)));
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(1, 2, 15)));
    assert_eq!(
        state(&mut log).await,
        LogState { last_purged_log_id: Some(log_id(1, 2, 4)), last_log_id: Some(log_id(1, 2, 19)) }
    );
    // The entries come back whole: payloads included.
    let e = reader.try_get_log_entries(7..8).await.unwrap();
    assert_eq!(format!("{}", e[0].payload), format!("{}", normal(1, 2, 7).payload));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn truncate_after_keeps_the_given_log_id_and_every_leader_id() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut log) = open(&dir, 1).await;
    log.blocking_append([blank(1, 7, 1), blank(1, 7, 2), blank(2, 5, 3), blank(2, 5, 4)]).await.unwrap();
    assert_eq!(ids(&mut log).await, vec![log_id(1, 7, 1), log_id(1, 7, 2), log_id(2, 5, 3), log_id(2, 5, 4)]);
    // A follower's conflict resolution: keep up to 2, then the new leader's entries.
    log.truncate_after(Some(log_id(1, 7, 2))).await.unwrap();
    assert_eq!(state(&mut log).await.last_log_id, Some(log_id(1, 7, 2)));
    log.blocking_append([blank(3, 4, 3)]).await.unwrap();
    assert_eq!(ids(&mut log).await, vec![log_id(1, 7, 1), log_id(1, 7, 2), log_id(3, 4, 3)]);
    log.truncate_after(None).await.unwrap();
    assert_eq!(state(&mut log).await, LogState::default());
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn purge_past_the_end_leaves_an_empty_log_that_continues_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut log) = open(&dir, 1).await;
    log.blocking_append((0..5).map(|i| blank(1, 3, i))).await.unwrap();
    // As when a follower installs a snapshot ahead of its log.
    log.purge(log_id(4, 2, 100)).await.unwrap();
    let empty_at_100 =
        LogState { last_purged_log_id: Some(log_id(4, 2, 100)), last_log_id: Some(log_id(4, 2, 100)) };
    assert_eq!(state(&mut log).await, empty_at_100);
    assert!(ids(&mut log).await.is_empty());
    // Entries at or below the purged index are covered by the snapshot: left out.
    log.blocking_append([blank(4, 2, 99), blank(4, 2, 100)]).await.unwrap();
    assert_eq!(state(&mut log).await, empty_at_100);
    // Truncating into the purged part is refused, with nothing changed.
    let refused = log.truncate_after(Some(log_id(4, 2, 50))).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
    store.shutdown().await.unwrap();
    drop(log);

    let (store, mut log) = open(&dir, 1).await;
    assert_eq!(state(&mut log).await, empty_at_100);
    log.blocking_append([blank(5, 1, 101), blank(5, 1, 102)]).await.unwrap();
    assert_eq!(ids(&mut log).await, vec![log_id(5, 1, 101), log_id(5, 1, 102)]);
    assert_eq!(store.group(1).first_index().unwrap(), Some(101));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_interrupted_purge_is_finished_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut a) = open(&dir, 1).await;
    let mut b = LogStorage::<Tc>::open(store.group(2)).await.unwrap();
    a.blocking_append((0..10).map(|i| blank(1, 1, i))).await.unwrap();
    b.blocking_append((0..10).map(|i| blank(1, 1, i))).await.unwrap();
    a.purge(log_id(1, 1, 5)).await.unwrap();
    // Group 2 now looks like a crash between saving the purged log id (first) and
    // deleting the entries (second).
    let metadata = store.group(1).metadata().unwrap().unwrap();
    store.group(2).save_metadata(metadata).await.unwrap();
    assert_eq!(store.group(2).first_index().unwrap(), Some(0));
    drop(b);

    let mut b = LogStorage::<Tc>::open(store.group(2)).await.unwrap();
    assert_eq!(store.group(2).first_index().unwrap(), Some(6), "open finished the purge");
    assert_eq!(state(&mut b).await, state(&mut a).await);
    assert_eq!(ids(&mut b).await, ids(&mut a).await);
    store.shutdown().await.unwrap();
}

/// openraft 0.10 submits the next append without waiting for the previous flush: each
/// append must return with its entries readable, and every callback must hear `Ok`
/// once the fsync holding its entries is done.
#[tokio::test]
async fn pipelined_appends_are_readable_at_once_and_each_callback_hears_its_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut log) = open(&dir, 1).await;
    let mut reader = log.get_log_reader().await;
    let before = store.stats();
    let mut flushed = Vec::new();
    for i in 1..=50 {
        let (tx, rx) = Tc::oneshot();
        log.append([normal(1, 1, i)], IOFlushed::signal(tx)).await.unwrap();
        assert_eq!(reader.try_get_log_entries(i..=i).await.unwrap().len(), 1, "entry {i} readable on return");
        flushed.push(rx);
    }
    for rx in flushed {
        rx.await.unwrap().unwrap();
    }
    let after = store.stats();
    assert_eq!(after.appended_entries - before.appended_entries, 50);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_commit_fails_the_append_and_keeps_the_rocklog_error_inside() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut log) = open(&dir, 1).await;
    log.blocking_append([blank(1, 1, 1)]).await.unwrap();
    store.inject_commit_failure();
    let (tx, rx) = Tc::oneshot();
    // The failed write fails the append itself, or (had it been written) its callback.
    let flush_error = match log.append([blank(1, 1, 2)], IOFlushed::signal(tx)).await {
        Err(e) => e,
        Ok(()) => rx.await.unwrap().unwrap_err(),
    };
    let inner = flush_error.get_ref().and_then(|e| e.downcast_ref::<rocklog::Error>());
    assert!(matches!(inner, Some(rocklog::Error::WriteFailed(_))), "{flush_error:?}");

    let vote_error = log.save_vote(&Vote::new(2, 1)).await.unwrap_err();
    let inner = vote_error.into_inner().and_then(|e| e.downcast::<rocklog::Error>().ok());
    assert!(matches!(inner.as_deref(), Some(rocklog::Error::Poisoned(_))), "the engine is poisoned");
    let mut reader = log.get_log_reader().await;
    assert_eq!(reader.read_vote().await.unwrap(), None, "a failed save is not adopted");
}

#[tokio::test]
async fn replication_reads_are_bounded_but_never_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    let mut log = LogStorage::<Tc>::open(store.group(1)).await.unwrap().with_max_read_bytes(1);
    log.blocking_append((1..50).map(|i| normal(1, 1, i))).await.unwrap();
    let mut reader = log.get_log_reader().await;
    let got = reader.limited_get_log_entries(10, 40).await.unwrap();
    assert_eq!(got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(), vec![10]);
    assert_eq!(reader.try_get_log_entries(10..40).await.unwrap().len(), 30);
    assert_eq!(reader.try_get_log_entries(45..).await.unwrap().len(), 5);
    assert!(reader.try_get_log_entries(60..70).await.unwrap().is_empty());
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn metadata_that_is_not_the_adapters_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    store.group(1).save_metadata(&[0xC1u8][..]).await.unwrap();
    let error = LogStorage::<Tc>::open(store.group(1)).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    store.shutdown().await.unwrap();
}
