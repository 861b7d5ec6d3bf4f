//! The openraft 0.10 adapter: openraft 0.10's own storage suite (`Suite::test_all`) over
//! `rocklog::openraft10::LogStorage`, plus the adapter's own behaviour across restarts,
//! purges past the end, interrupted purges, pipelined appends and failed commits (with
//! the rocklog error recovered from the `io::Error`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
#[path = "common/openraft_cases.rs"]
mod openraft_cases;
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

async fn read_vote(log: &mut LogStorage<Tc>) -> Option<Vote<LeaderId<u64, u64>>> {
    log.get_log_reader().await.read_vote().await.unwrap()
}

fn membership(term: u64, node: u64, index: u64) -> EntryOf<Tc> {
    let m = Membership::new_with_defaults(vec![[1, 2, 3].into()], []);
    EntryOf::<Tc>::new_membership(log_id(term, node, index), m)
}

fn committed_vote(term: u64, node: u64) -> Vote<LeaderId<u64, u64>> {
    Vote::new_committed(term, node)
}

openraft_cases!();

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
async fn foreign_metadata_is_invalid_data_and_a_truncate_into_the_purged_part_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut log) = open(&dir, 1).await;
    log.blocking_append((0..5).map(|i| blank(1, 3, i))).await.unwrap();
    log.purge(log_id(1, 3, 3)).await.unwrap();
    let refused = log.truncate_after(Some(log_id(1, 3, 1))).await.unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::InvalidInput);
    assert_eq!(ids(&mut log).await, vec![log_id(1, 3, 4)], "nothing changed");
    store.group(2).save_metadata(&[0xC1u8][..]).await.unwrap();
    let foreign = LogStorage::<Tc>::open(store.group(2)).await.unwrap_err();
    assert_eq!(foreign.kind(), std::io::ErrorKind::InvalidData);
    store.shutdown().await.unwrap();
}
