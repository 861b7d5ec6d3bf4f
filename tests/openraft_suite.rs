//! The openraft adapter: openraft 0.9's own storage suite (`Suite::test_all`) over
//! `rocklog::openraft::LogStorage`, plus the adapter's own behaviour across restarts,
//! purges past the end, interrupted purges and failed commits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
#[path = "common/openraft_cases.rs"]
mod openraft_cases;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, LogState, Membership,
    RaftLogReader, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership, Vote,
};
use rocklog::openraft::LogStorage;
use rocklog::{Config, LogStore};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

openraft::declare_raft_types!(
    /// The types of the suite's Raft.
    pub TypeConfig:
        D = Request,
        R = Response,
);

/// A client request: set `key` to `value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    key: String,
    value: String,
}

/// The value `key` held before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response(Option<String>);

type Nid = u64;

type Tc = TypeConfig;

// ----- a small in-memory state machine -----

/// What the state machine holds and a snapshot carries.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SmData {
    applied: Option<LogId<Nid>>,
    membership: StoredMembership<Nid, BasicNode>,
    kv: BTreeMap<String, String>,
}

#[derive(Default)]
struct SmInner {
    data: SmData,
    snapshot: Option<(SnapshotMeta<Nid, BasicNode>, Vec<u8>)>,
    built: u64,
}

/// An in-memory `RaftStateMachine`: applies entries to a map, tracks the applied log id
/// and the last membership, builds and installs snapshots. Clones share the state.
#[derive(Clone, Default)]
struct MemStateMachine(Arc<Mutex<SmInner>>);

fn sm_error(e: &(impl std::error::Error + 'static)) -> StorageError<Nid> {
    StorageIOError::write_state_machine(openraft::AnyError::new(e)).into()
}

impl RaftSnapshotBuilder<TypeConfig> for MemStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<Nid>> {
        let mut inner = self.0.lock().unwrap();
        let bytes = rmp_serde::to_vec_named(&inner.data).map_err(|e| sm_error(&e))?;
        inner.built += 1;
        let meta = SnapshotMeta {
            last_log_id: inner.data.applied,
            last_membership: inner.data.membership.clone(),
            snapshot_id: format!("{:?}-{}", inner.data.applied.map(|l| l.index), inner.built),
        };
        inner.snapshot = Some((meta.clone(), bytes.clone()));
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(bytes)) })
    }
}

impl RaftStateMachine<TypeConfig> for MemStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<Nid>>, StoredMembership<Nid, BasicNode>), StorageError<Nid>> {
        let inner = self.0.lock().unwrap();
        Ok((inner.data.applied, inner.data.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError<Nid>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.0.lock().unwrap();
        let mut replies = Vec::new();
        for entry in entries {
            inner.data.applied = Some(entry.log_id);
            replies.push(match entry.payload {
                EntryPayload::Blank => Response(None),
                EntryPayload::Normal(req) => Response(inner.data.kv.insert(req.key, req.value)),
                EntryPayload::Membership(m) => {
                    inner.data.membership = StoredMembership::new(Some(entry.log_id), m);
                    Response(None)
                }
            });
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<Nid>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<Nid, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<Nid>> {
        let bytes = snapshot.into_inner();
        let data: SmData = rmp_serde::from_slice(&bytes).map_err(|e| sm_error(&e))?;
        let mut inner = self.0.lock().unwrap();
        inner.data = data;
        inner.snapshot = Some((meta.clone(), bytes));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<Nid>> {
        let inner = self.0.lock().unwrap();
        Ok(inner.snapshot.as_ref().map(|(meta, bytes)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(bytes.clone())),
        }))
    }
}

// ----- openraft's suite -----

fn store_error(e: &(impl std::error::Error + 'static)) -> StorageError<Nid> {
    StorageIOError::new(ErrorSubject::Store, ErrorVerb::Write, openraft::AnyError::new(e)).into()
}

/// A fresh engine in its own temporary directory for every case; the directory (the
/// guard) outlives the engine, which closes when the case drops its log store.
struct Builder;

impl StoreBuilder<TypeConfig, LogStorage<TypeConfig>, MemStateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStorage<TypeConfig>, MemStateMachine), StorageError<Nid>> {
        let dir = tempfile::tempdir().map_err(|e| store_error(&e))?;
        let store = LogStore::start(Config::new(dir.path())).map_err(|e| store_error(&e))?;
        let log = LogStorage::open(store.group(1)).await?;
        Ok((dir, log, MemStateMachine::default()))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    Suite::test_all(Builder).unwrap();
}

// ----- the adapter's own tests -----

fn log_id(term: u64, node: Nid, index: u64) -> LogId<Nid> {
    LogId::new(CommittedLeaderId::new(term, node), index)
}

fn normal(term: u64, node: Nid, index: u64) -> Entry<TypeConfig> {
    let req = Request { key: format!("k{index}"), value: format!("v{index}") };
    Entry { log_id: log_id(term, node, index), payload: EntryPayload::Normal(req) }
}

fn blank(term: u64, node: Nid, index: u64) -> Entry<TypeConfig> {
    Entry { log_id: log_id(term, node, index), payload: EntryPayload::Blank }
}

async fn open(dir: &TempDir, group: u64) -> (LogStore, LogStorage<TypeConfig>) {
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    let log = LogStorage::open(store.group(group)).await.unwrap();
    (store, log)
}

async fn ids(log: &mut LogStorage<TypeConfig>) -> Vec<LogId<Nid>> {
    log.try_get_log_entries(..).await.unwrap().into_iter().map(|e| e.log_id).collect()
}

async fn state(log: &mut LogStorage<TypeConfig>) -> LogState<TypeConfig> {
    log.get_log_state().await.unwrap()
}

async fn read_vote(log: &mut LogStorage<TypeConfig>) -> Option<Vote<Nid>> {
    log.read_vote().await.unwrap()
}

fn membership(term: u64, node: Nid, index: u64) -> Entry<TypeConfig> {
    let m = Membership::new(vec![[1, 2, 3].into()], ());
    Entry { log_id: log_id(term, node, index), payload: EntryPayload::Membership(m) }
}

fn committed_vote(term: u64, node: Nid) -> Vote<Nid> {
    Vote::new_committed(term, node)
}

openraft_cases!();

#[tokio::test]
async fn the_leader_id_of_every_log_id_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut log) = open(&dir, 1).await;
    log.blocking_append([blank(1, 7, 1), blank(1, 7, 2), blank(2, 5, 3)]).await.unwrap();
    assert_eq!(ids(&mut log).await, vec![log_id(1, 7, 1), log_id(1, 7, 2), log_id(2, 5, 3)]);
    assert_eq!(log.get_log_state().await.unwrap().last_log_id, Some(log_id(2, 5, 3)));
    // A follower's conflict resolution: truncate from 3, then the new leader's entries.
    log.truncate(log_id(2, 5, 3)).await.unwrap();
    assert_eq!(log.get_log_state().await.unwrap().last_log_id, Some(log_id(1, 7, 2)));
    log.blocking_append([blank(3, 4, 3)]).await.unwrap();
    log.purge(log_id(1, 7, 2)).await.unwrap();
    assert_eq!(log.get_log_state().await.unwrap().last_purged_log_id, Some(log_id(1, 7, 2)));
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_log_may_start_anywhere_and_be_truncated_back_to_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut log) = open(&dir, 1).await;
    // rocklog's own rule is a first index of 0 or 1; openraft's suite starts at 2.
    log.blocking_append([blank(1, 1, 5), blank(1, 1, 6)]).await.unwrap();
    assert_eq!(
        log.get_log_state().await.unwrap(),
        LogState { last_purged_log_id: None, last_log_id: Some(log_id(1, 1, 6)) }
    );
    assert_eq!(ids(&mut log).await, vec![log_id(1, 1, 5), log_id(1, 1, 6)]);
    log.truncate(log_id(0, 0, 2)).await.unwrap();
    assert_eq!(log.get_log_state().await.unwrap(), LogState::default());
    log.blocking_append([blank(2, 1, 0), blank(2, 1, 1)]).await.unwrap();
    assert_eq!(ids(&mut log).await, vec![log_id(2, 1, 0), log_id(2, 1, 1)]);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_commit_fails_the_append_and_its_callback() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut log) = open(&dir, 1).await;
    log.blocking_append([blank(1, 1, 1)]).await.unwrap();
    store.inject_commit_failure();
    assert!(log.blocking_append([blank(1, 1, 2)]).await.is_err());
    assert!(log.save_vote(&Vote::new(2, 1)).await.is_err(), "the engine is poisoned");
    assert_eq!(log.read_vote().await.unwrap(), None, "a failed save is not adopted");
    assert_eq!(log.get_log_state().await.unwrap().last_log_id, Some(log_id(1, 1, 1)));
}
