//! The raft-rs adapter: the cases of raft-rs 0.7's own `MemStorage` unit tests
//! (`raft::storage::test`, raft-rs ships no reusable suite) ported to
//! `rocklog::raft_rs::RaftStorage` with their tables, plus restarts, interrupted snapshot
//! installs, errors where `MemStorage` panics, and a single-node `RawNode` that campaigns,
//! commits a proposal and restarts from its directory.
//!
//! `MemStorage`'s tests poke entries 3..=5 straight into its vector, with no snapshot
//! below them: a log whose index 2 has no term, which a real log cannot be. Here the same
//! log is built through the adapter: a snapshot at 2@2, then entries 3@3, 4@4, 5@5. Where
//! that changes an answer, the table says so at the row.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// Messages are built the way raft-rs's own tests build them (raft-proto allows this too).
#![allow(clippy::field_reassign_with_default)]

use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RawNode, StateRole, Storage, StorageError};
use rocklog::raft_rs::RaftStorage;
use rocklog::{Config, LogId, LogStore};
use tempfile::TempDir;

const G: u64 = 7;

fn new_entry(index: u64, term: u64) -> Entry {
    Entry { index, term, ..Default::default() }
}

fn size_of(e: &Entry) -> u32 {
    e.compute_size()
}

fn new_snapshot(index: u64, term: u64, voters: Vec<u64>) -> Snapshot {
    let mut s = Snapshot::default();
    s.mut_metadata().index = index;
    s.mut_metadata().term = term;
    s.mut_metadata().mut_conf_state().voters = voters;
    s
}

fn ctx() -> GetEntriesContext {
    GetEntriesContext::empty(false)
}

fn compacted<T>() -> raft::Result<T> {
    Err(raft::Error::Store(StorageError::Compacted))
}

fn unavailable<T>() -> raft::Result<T> {
    Err(raft::Error::Store(StorageError::Unavailable))
}

/// A fresh engine, and the adapter on group `G` of it.
async fn fresh() -> (TempDir, LogStore, RaftStorage) {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    let storage = RaftStorage::open(store.group(G)).await.unwrap();
    (dir, store, storage)
}

/// `MemStorage`'s fixture: `ents` (consecutive) after a snapshot at the index before the
/// first, with that index as its term.
async fn with_entries(ents: &[Entry]) -> (TempDir, LogStore, RaftStorage) {
    let (dir, store, mut storage) = fresh().await;
    let before = ents[0].index - 1;
    storage.apply_snapshot(new_snapshot(before, before, vec![])).await.unwrap();
    storage.append(ents).await.unwrap();
    (dir, store, storage)
}

fn all(storage: &RaftStorage) -> Vec<Entry> {
    let (first, last) = (storage.first_index().unwrap(), storage.last_index().unwrap());
    storage.entries(first, last + 1, None, ctx()).unwrap()
}

fn three() -> Vec<Entry> {
    vec![new_entry(3, 3), new_entry(4, 4), new_entry(5, 5)]
}

// ----- MemStorage's tests, ported -----

#[tokio::test]
async fn test_storage_term() {
    let tests = vec![
        // MemStorage: Compacted (its fixture has no term at 2). Here 2 is the snapshot
        // boundary, first_index() - 1, whose term the trait requires.
        (2, Ok(2)),
        (1, compacted()),
        (3, Ok(3)),
        (4, Ok(4)),
        (5, Ok(5)),
        (6, unavailable()),
    ];
    for (i, (idx, wterm)) in tests.into_iter().enumerate() {
        let (_dir, _store, storage) = with_entries(&three()).await;
        let t = storage.term(idx);
        assert_eq!(t, wterm, "#{i}: term({idx})");
    }
}

#[tokio::test]
async fn test_storage_entries() {
    let ents = vec![new_entry(3, 3), new_entry(4, 4), new_entry(5, 5), new_entry(6, 6)];
    let max_u64 = u64::MAX;
    let tests = vec![
        (2, 6, max_u64, compacted()),
        (3, 4, max_u64, Ok(vec![new_entry(3, 3)])),
        (4, 5, max_u64, Ok(vec![new_entry(4, 4)])),
        (4, 6, max_u64, Ok(vec![new_entry(4, 4), new_entry(5, 5)])),
        (4, 7, max_u64, Ok(vec![new_entry(4, 4), new_entry(5, 5), new_entry(6, 6)])),
        // even if maxsize is zero, the first entry should be returned
        (4, 7, 0, Ok(vec![new_entry(4, 4)])),
        // limit to 2
        (4, 7, u64::from(size_of(&ents[1]) + size_of(&ents[2])), Ok(vec![new_entry(4, 4), new_entry(5, 5)])),
        (
            4,
            7,
            u64::from(size_of(&ents[1]) + size_of(&ents[2]) + size_of(&ents[3]) / 2),
            Ok(vec![new_entry(4, 4), new_entry(5, 5)]),
        ),
        (
            4,
            7,
            u64::from(size_of(&ents[1]) + size_of(&ents[2]) + size_of(&ents[3]) - 1),
            Ok(vec![new_entry(4, 4), new_entry(5, 5)]),
        ),
        // all
        (
            4,
            7,
            u64::from(size_of(&ents[1]) + size_of(&ents[2]) + size_of(&ents[3])),
            Ok(vec![new_entry(4, 4), new_entry(5, 5), new_entry(6, 6)]),
        ),
        // MemStorage panics here (high past last_index() + 1).
        (4, 8, max_u64, unavailable()),
    ];
    for (i, (lo, hi, maxsize, wentries)) in tests.into_iter().enumerate() {
        let (_dir, _store, storage) = with_entries(&ents).await;
        let e = storage.entries(lo, hi, maxsize, ctx());
        assert_eq!(e, wentries, "#{i}: entries({lo}, {hi}, {maxsize})");
    }
}

#[tokio::test]
async fn test_storage_last_index() {
    let (_dir, _store, mut storage) = with_entries(&three()).await;
    assert_eq!(storage.last_index(), Ok(5));
    storage.append(&[new_entry(6, 5)]).await.unwrap();
    assert_eq!(storage.last_index(), Ok(6));
}

#[tokio::test]
async fn test_storage_first_index() {
    let (_dir, _store, mut storage) = with_entries(&three()).await;
    assert_eq!(storage.first_index(), Ok(3));
    storage.compact(4).await.unwrap();
    assert_eq!(storage.first_index(), Ok(4));
}

#[tokio::test]
async fn test_storage_compact() {
    let tests = vec![(2, 3, 3, 3), (3, 3, 3, 3), (4, 4, 4, 2), (5, 5, 5, 1)];
    for (i, (idx, windex, wterm, wlen)) in tests.into_iter().enumerate() {
        let (_dir, _store, mut storage) = with_entries(&three()).await;
        storage.compact(idx).await.unwrap();
        let index = storage.first_index().unwrap();
        assert_eq!(index, windex, "#{i}: first index");
        let term = storage.entries(index, index + 1, 1, ctx()).map_or(0, |v| v.first().map_or(0, |e| e.term));
        assert_eq!(term, wterm, "#{i}: term");
        let last = storage.last_index().unwrap();
        let len = storage.entries(index, last + 1, 100, ctx()).unwrap().len();
        assert_eq!(len, wlen, "#{i}: len");
        // Not in MemStorage's test: the compaction point keeps its term.
        assert_eq!(storage.term(index - 1), Ok(index - 1), "#{i}: boundary term");
    }
}

#[tokio::test]
async fn test_storage_compact_past_the_end() {
    let (_dir, _store, mut storage) = with_entries(&three()).await;
    // MemStorage panics: compacting entries it never received.
    assert_eq!(storage.compact(7).await, unavailable());
    assert_eq!(all(&storage), three());
    // Up to last + 1: every entry goes, the last one's term stays answerable.
    storage.compact(6).await.unwrap();
    assert_eq!((storage.first_index(), storage.last_index()), (Ok(6), Ok(5)));
    assert_eq!(storage.term(5), Ok(5));
    assert_eq!(storage.entries(6, 6, None, ctx()), Ok(vec![]));
}

#[tokio::test]
async fn test_storage_create_snapshot() {
    let ents = three();
    let nodes = vec![1, 2, 3];
    let mut conf_state = ConfState::default();
    conf_state.voters = nodes.clone();

    let unavailable = || Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
    let tests = vec![
        (4, Ok(new_snapshot(4, 4, nodes.clone())), 0),
        (5, Ok(new_snapshot(5, 5, nodes.clone())), 5),
        // MemStorage: Ok(new_snapshot(6, 5, nodes)), its index raised to the requested 6
        // with the term of 5. The trait wants a snapshot at or above the request; the
        // adapter has none, so it asks raft-rs to come back later.
        (5, unavailable(), 6),
        // MemStorage: the same answer, forced by `trigger_snap_unavailable`.
        (5, unavailable(), 6),
    ];
    for (i, (idx, wresult, windex)) in tests.into_iter().enumerate() {
        let (_dir, _store, mut storage) = with_entries(&ents).await;
        let mut hs = HardState::default();
        hs.commit = idx;
        hs.term = idx;
        storage.set_hard_state(&hs).await.unwrap();
        storage.set_conf_state(conf_state.clone()).await.unwrap();

        let result = storage.snapshot(windex, 0);
        assert_eq!(result, wresult, "#{i}: snapshot({windex}) at commit {idx}");
    }
}

#[tokio::test]
async fn test_storage_append() {
    let tests = vec![
        (three(), Some(three())),
        (
            vec![new_entry(3, 3), new_entry(4, 6), new_entry(5, 6)],
            Some(vec![new_entry(3, 3), new_entry(4, 6), new_entry(5, 6)]),
        ),
        (
            vec![new_entry(3, 3), new_entry(4, 4), new_entry(5, 5), new_entry(6, 5)],
            Some(vec![new_entry(3, 3), new_entry(4, 4), new_entry(5, 5), new_entry(6, 5)]),
        ),
        // overwrite compacted raft logs is not allowed (MemStorage panics; Compacted here)
        (vec![new_entry(2, 3), new_entry(3, 3), new_entry(4, 5)], None),
        // truncate the existing entries and append
        (vec![new_entry(4, 5)], Some(vec![new_entry(3, 3), new_entry(4, 5)])),
        // direct append
        (
            vec![new_entry(6, 6)],
            Some(vec![new_entry(3, 3), new_entry(4, 4), new_entry(5, 5), new_entry(6, 6)]),
        ),
    ];
    for (i, (entries, wentries)) in tests.into_iter().enumerate() {
        let (_dir, _store, mut storage) = with_entries(&three()).await;
        let res = storage.append(&entries).await;
        if let Some(wentries) = wentries {
            assert_eq!(res, Ok(()), "#{i}");
            assert_eq!(all(&storage), wentries, "#{i}");
        } else {
            assert_eq!(res, compacted(), "#{i}");
            assert_eq!(all(&storage), three(), "#{i}: a refused append changes nothing");
        }
    }
}

#[tokio::test]
async fn test_storage_apply_snapshot() {
    let nodes = vec![1, 2, 3];
    let (_dir, _store, mut storage) = fresh().await;

    // Apply snapshot successfully
    let snap = new_snapshot(4, 4, nodes.clone());
    storage.apply_snapshot(snap).await.unwrap();
    assert_eq!((storage.first_index(), storage.last_index(), storage.term(4)), (Ok(5), Ok(4), Ok(4)));
    let state = storage.initial_state().unwrap();
    assert_eq!(state.conf_state.voters, nodes);
    assert_eq!((state.hard_state.commit, state.hard_state.term), (4, 4));

    // Apply snapshot fails due to StorageError::SnapshotOutOfDate
    let snap = new_snapshot(3, 3, nodes);
    assert_eq!(storage.apply_snapshot(snap).await, Err(raft::Error::Store(StorageError::SnapshotOutOfDate)));
    assert_eq!(storage.first_index(), Ok(5));
}

// ----- beyond MemStorage's tests -----

#[tokio::test]
async fn fresh_storage_is_memstorage_new() {
    let (_dir, store, storage) = fresh().await;
    assert_eq!((storage.first_index(), storage.last_index(), storage.term(0)), (Ok(1), Ok(0), Ok(0)));
    assert_eq!(storage.term(1), unavailable());
    assert_eq!(storage.entries(1, 1, None, ctx()), Ok(vec![]));
    assert_eq!(storage.entries(0, 1, None, ctx()), compacted());
    let state = storage.initial_state().unwrap();
    assert!(!state.initialized());
    assert_eq!(state.hard_state, HardState::default());
    assert!(!store.group(G).exists(), "reads create nothing");
    let snap = storage.snapshot(0, 2).unwrap();
    assert_eq!((snap.get_metadata().index, snap.get_metadata().term), (0, 0));
}

#[tokio::test]
async fn apply_snapshot_inside_the_log_discards_every_entry() {
    let (_dir, _store, mut storage) = with_entries(&three()).await;
    storage.append(&[new_entry(6, 5), new_entry(7, 5)]).await.unwrap();
    // At an index the log holds, in another term: every entry goes, as in MemStorage.
    storage.apply_snapshot(new_snapshot(5, 6, vec![1])).await.unwrap();
    assert_eq!((storage.first_index(), storage.last_index(), storage.term(5)), (Ok(6), Ok(5), Ok(6)));
    assert_eq!(storage.term(6), unavailable());
    storage.append(&[new_entry(6, 6)]).await.unwrap();
    assert_eq!(all(&storage), vec![new_entry(6, 6)]);
}

#[tokio::test]
async fn entries_round_trip_every_field() {
    let (_dir, store, mut storage) = fresh().await;
    let mut e = new_entry(1, 1);
    e.set_entry_type(raft::eraftpb::EntryType::EntryConfChangeV2);
    e.data = b"change".to_vec().into();
    e.context = b"ctx".to_vec().into();
    e.sync_log = true;
    storage.append(std::slice::from_ref(&e)).await.unwrap();
    assert_eq!(storage.entries(1, 2, None, ctx()), Ok(vec![e.clone()]));
    // The rocklog entry's payload is the protobuf entry, index and term included.
    let stored = store.group(G).entry(1).unwrap().unwrap();
    assert_eq!((stored.index, stored.term), (1, 1));
    assert_eq!(stored.payload.to_vec(), e.write_to_bytes().unwrap());
}

#[tokio::test]
async fn refusals_are_typed_and_change_nothing() {
    let (_dir, _store, mut storage) = with_entries(&three()).await;
    // A gap: rocklog's refusal, inside StorageError::Other.
    let err = storage.append(&[new_entry(8, 5)]).await.unwrap_err();
    let raft::Error::Store(StorageError::Other(inner)) = err else { panic!("not Other: {err:?}") };
    let inner = inner.downcast_ref::<rocklog::Error>().expect("a rocklog error");
    assert!(matches!(inner, rocklog::Error::Gap { index: 8, expected: 6, .. }), "{inner:?}");
    // Terms going back.
    let err = storage.append(&[new_entry(6, 4)]).await.unwrap_err();
    assert!(matches!(err, raft::Error::Store(StorageError::Other(_))), "{err:?}");
    // Index 0 on a fresh log (rocklog alone would take it; raft-rs numbers from 1).
    let (_dir2, _store2, mut fresh) = fresh().await;
    assert_eq!(fresh.append(&[new_entry(0, 0)]).await, compacted());
    assert_eq!(all(&storage), three());
    assert_eq!(fresh.last_index(), Ok(0));
}

#[tokio::test]
async fn corrupt_payload_is_reported() {
    let (_dir, store, storage) = fresh().await;
    // An entry whose payload claims another index (written past the adapter).
    let payload = new_entry(9, 1).write_to_bytes().unwrap();
    store.group(G).append(&[rocklog::Entry::new(1, 1, payload)]).await.unwrap();
    let err = storage.entries(1, 2, None, ctx()).unwrap_err();
    let raft::Error::Store(StorageError::Other(inner)) = err else { panic!("not Other: {err:?}") };
    assert!(matches!(inner.downcast_ref::<rocklog::Error>(), Some(rocklog::Error::Corruption { .. })));
    // Garbage: a codec error, no panic.
    store.group(G).append(&[rocklog::Entry::new(2, 1, vec![0xff; 3])]).await.unwrap();
    assert!(matches!(storage.entries(2, 3, None, ctx()), Err(raft::Error::CodecError(_))));
}

#[tokio::test]
async fn snapshot_builder_supplies_the_data() {
    let (_dir, _store, mut storage) = with_entries(&three()).await;
    let mut hs = HardState::default();
    (hs.term, hs.commit) = (5, 4);
    storage.set_hard_state(&hs).await.unwrap();
    storage.set_conf_state(ConfState::from((vec![1, 2], vec![3]))).await.unwrap();
    let storage = storage.with_snapshot_builder(|meta: SnapshotMetadata, request, to| {
        if request > meta.index {
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        let mut snap = Snapshot::default();
        snap.data = format!("state at {} for {to}", meta.index).into_bytes().into();
        snap.set_metadata(meta);
        Ok(snap)
    });
    let snap = storage.snapshot(0, 2).unwrap();
    assert_eq!((snap.get_metadata().index, snap.get_metadata().term), (4, 4));
    assert_eq!(snap.get_metadata().get_conf_state().learners, vec![3]);
    assert_eq!(snap.data.to_vec(), b"state at 4 for 2".to_vec());
}

// ----- restarts -----

#[tokio::test]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    let mut storage = RaftStorage::open(store.group(G)).await.unwrap();
    storage.set_conf_state(ConfState::from((vec![1, 2, 3], vec![4]))).await.unwrap();
    storage.append(&(1..=10).map(|i| new_entry(i, 1 + i / 5)).collect::<Vec<_>>()).await.unwrap();
    let mut hs = HardState::default();
    (hs.term, hs.vote, hs.commit) = (3, 2, 7);
    storage.set_hard_state(&hs).await.unwrap();
    storage.set_commit(8).await.unwrap();
    storage.compact(5).await.unwrap();
    let raft_state = |s: &RaftStorage| {
        let state = s.initial_state().unwrap();
        (state.hard_state, state.conf_state)
    };
    let before = (all(&storage), storage.term(4), raft_state(&storage));
    drop(storage);
    store.shutdown().await.unwrap();

    let store = LogStore::start(Config::new(dir.path())).unwrap();
    let storage = RaftStorage::open(store.group(G)).await.unwrap();
    let after = (all(&storage), storage.term(4), raft_state(&storage));
    assert_eq!(after, before);
    assert_eq!((storage.first_index(), storage.last_index()), (Ok(5), Ok(10)));
    assert_eq!(after.2.0.vote, 2);
    assert_eq!(after.2.0.commit, 8);
    assert_eq!(after.2.1.learners, vec![4]);
    // Vote 0 is raft-rs's "none", rocklog's `None`.
    let mut storage = storage;
    hs.vote = 0;
    storage.set_hard_state(&hs).await.unwrap();
    assert_eq!(store.group(G).hard_state().unwrap().unwrap().vote, None);
    store.shutdown().await.unwrap();
}

/// The states a crash can leave inside `apply_snapshot` (after the metadata record; before
/// it nothing changed), built with rocklog's own calls; `open` must finish each.
#[tokio::test]
async fn open_finishes_an_interrupted_apply_snapshot() {
    for cut in ["after metadata", "after hard state", "after reset"] {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::start(Config::new(dir.path())).unwrap();
        let mut storage = RaftStorage::open(store.group(G)).await.unwrap();
        storage.append(&(1..=6).map(|i| new_entry(i, 1)).collect::<Vec<_>>()).await.unwrap();
        let mut hs = HardState::default();
        (hs.term, hs.vote, hs.commit) = (1, 1, 2);
        storage.set_hard_state(&hs).await.unwrap();
        drop(storage);

        // The snapshot 4@2 with voters [1, 2], cut short.
        let group = store.group(G);
        let meta = new_snapshot(4, 2, vec![1, 2]).take_metadata();
        group.save_metadata(meta.write_to_bytes().unwrap()).await.unwrap();
        if cut != "after metadata" {
            group.save_hard_state(rocklog::HardState { term: 2, vote: Some(1), commit: 4 }).await.unwrap();
        }
        if cut == "after reset" {
            group.reset().await.unwrap();
        }
        store.shutdown().await.unwrap();

        let store = LogStore::start(Config::new(dir.path())).unwrap();
        let storage = RaftStorage::open(store.group(G)).await.unwrap();
        assert_eq!((storage.first_index(), storage.last_index()), (Ok(5), Ok(4)), "{cut}");
        assert_eq!(storage.term(4), Ok(2), "{cut}");
        assert_eq!(store.group(G).purged().unwrap(), Some(LogId::new(2, 4)), "{cut}");
        let state = storage.initial_state().unwrap();
        assert_eq!(
            (state.hard_state.term, state.hard_state.vote, state.hard_state.commit),
            (2, 1, 4),
            "{cut}"
        );
        assert_eq!(state.conf_state.voters, vec![1, 2], "{cut}");
        // Opening again changes nothing more.
        let again = RaftStorage::open(store.group(G)).await.unwrap();
        let again = again.initial_state().unwrap();
        assert_eq!((again.hard_state, again.conf_state), (state.hard_state, state.conf_state), "{cut}");
        store.shutdown().await.unwrap();
    }
}

// ----- a RawNode on the adapter -----

/// Handles every `Ready` of a single-node group: persists through the adapter and
/// collects the data of committed normal entries.
async fn drive(node: &mut RawNode<RaftStorage>, applied: &mut Vec<Vec<u8>>) {
    let mut apply = |entries: Vec<Entry>| {
        applied.extend(entries.into_iter().filter(|e| !e.data.is_empty()).map(|e| e.data.to_vec()));
    };
    while node.has_ready() {
        let mut ready = node.ready();
        assert!(ready.messages().is_empty(), "a single node sends nothing");
        if !ready.snapshot().is_empty() {
            node.mut_store().apply_snapshot(ready.snapshot().clone()).await.unwrap();
        }
        apply(ready.take_committed_entries());
        node.mut_store().append(ready.entries()).await.unwrap();
        if let Some(hs) = ready.hs() {
            node.mut_store().set_hard_state(hs).await.unwrap();
        }
        let mut light = node.advance(ready);
        if let Some(commit) = light.commit_index() {
            node.mut_store().set_commit(commit).await.unwrap();
        }
        apply(light.take_committed_entries());
        node.advance_apply();
    }
}

#[tokio::test]
async fn raw_node_campaigns_commits_and_restarts() {
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let config = raft::Config { id: 1, election_tick: 10, heartbeat_tick: 3, ..Default::default() };
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    let mut storage = RaftStorage::open(store.group(G)).await.unwrap();
    storage.set_conf_state(ConfState::from((vec![1], vec![]))).await.unwrap();

    let mut node = RawNode::new(&config, storage, &logger).unwrap();
    let mut applied = Vec::new();
    node.campaign().unwrap();
    drive(&mut node, &mut applied).await;
    assert_eq!(node.raft.state, StateRole::Leader);
    node.propose(vec![], b"x = 1".to_vec()).unwrap();
    node.propose(vec![], b"y = 2".to_vec()).unwrap();
    drive(&mut node, &mut applied).await;
    assert_eq!(applied, vec![b"x = 1".to_vec(), b"y = 2".to_vec()]);

    // The leader's empty entry at 1, then the two proposals, all in term 1 and committed.
    let storage = node.store();
    assert_eq!((storage.first_index(), storage.last_index()), (Ok(1), Ok(3)));
    let hs = storage.initial_state().unwrap().hard_state;
    assert_eq!((hs.term, hs.vote, hs.commit), (1, 1, 3));
    let committed = node.raft.raft_log.committed;
    drop(node);
    store.shutdown().await.unwrap();

    // Restart from the directory: the node comes back with its log, term and commit.
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    let storage = RaftStorage::open(store.group(G)).await.unwrap();
    let config = raft::Config { applied: committed, ..config };
    let mut node = RawNode::new(&config, storage, &logger).unwrap();
    assert_eq!((node.raft.term, node.raft.raft_log.committed, node.raft.raft_log.last_index()), (1, 3, 3));
    node.campaign().unwrap();
    drive(&mut node, &mut applied).await;
    assert_eq!((node.raft.state, node.raft.term), (StateRole::Leader, 2));
    node.propose(vec![], b"z = 3".to_vec()).unwrap();
    drive(&mut node, &mut applied).await;
    assert_eq!(applied.last(), Some(&b"z = 3".to_vec()));
    let entries = node.store().entries(1, 6, None, ctx()).unwrap();
    let ids: Vec<_> = entries.iter().map(|e| (e.index, e.term)).collect();
    assert_eq!(ids, vec![(1, 1), (2, 1), (3, 1), (4, 2), (5, 2)]);
    drop(node);
    store.shutdown().await.unwrap();
}
