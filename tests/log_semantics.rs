//! The log operations Raft libraries rely on: append, overwrite, truncate, purge, hard
//! state, reset and removal, each checked through every read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ents, ids, open};
use rocklog::{Entry, Error, HardState, LogId, LogState};

#[tokio::test]
async fn appended_entries_read_back_by_index_range_and_term() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(1);
    g.append(&ents(1..6, 1)).await.unwrap();
    g.append(&ents(6..11, 2)).await.unwrap();

    assert_eq!(g.first_index().unwrap(), Some(1));
    assert_eq!(g.last_index().unwrap(), Some(10));
    assert_eq!(g.last_log_id().unwrap(), Some(LogId::new(2, 10)));
    assert_eq!(g.entry(3).unwrap(), Some(Entry::new(3, 1, "entry 3 of term 1")));
    assert_eq!(g.entry(11).unwrap(), None);
    assert_eq!(g.term(5).unwrap(), Some(1));
    assert_eq!(g.term(6).unwrap(), Some(2));
    assert_eq!(g.term(11).unwrap(), None);
    let mid: Vec<u64> = g.entries(4..8, None).unwrap().iter().map(|e| e.index).collect();
    assert_eq!(mid, vec![4, 5, 6, 7]);
    // A range past the end is cut at the last entry.
    assert_eq!(g.entries(9..100, None).unwrap().len(), 2);
    assert_eq!(g.entries(11..20, None).unwrap().len(), 0);
    assert_eq!(g.entries(..=3, None).unwrap().len(), 3);
}

#[tokio::test]
async fn byte_limit_stops_early_but_always_returns_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(1);
    let big: Vec<Entry> = (1..=10).map(|i| Entry::new(i, 1, vec![b'x'; 100])).collect();
    g.append(&big).await.unwrap();
    assert_eq!(g.entries(1..11, Some(250)).unwrap().len(), 2);
    assert_eq!(g.entries(1..11, Some(300)).unwrap().len(), 3);
    assert_eq!(g.entries(1..11, Some(10)).unwrap().len(), 1, "the first entry always comes back");
    assert_eq!(g.entries(1..11, Some(0)).unwrap().len(), 1);
}

#[tokio::test]
async fn append_inside_the_log_replaces_the_conflicting_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(7);
    g.append(&ents(1..11, 1)).await.unwrap();
    g.append(&ents(6..8, 3)).await.unwrap();
    let expected: Vec<(u64, u64)> = (1..6).map(|i| (i, 1)).chain([(6, 3), (7, 3)]).collect();
    assert_eq!(ids(&store, 7), expected);
    assert_eq!(g.last_log_id().unwrap(), Some(LogId::new(3, 7)));
    assert_eq!(g.entry(8).unwrap(), None, "the old suffix past the new end is gone");
    // Overwrite from the very first entry.
    g.append(&ents(1..3, 4)).await.unwrap();
    assert_eq!(ids(&store, 7), vec![(1, 4), (2, 4)]);
}

#[tokio::test]
async fn truncate_deletes_from_an_index_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(1);
    g.append(&ents(1..4, 1)).await.unwrap();
    g.append(&ents(4..11, 2)).await.unwrap();
    g.truncate(5).await.unwrap();
    assert_eq!(g.last_log_id().unwrap(), Some(LogId::new(2, 4)));
    assert_eq!(g.entry(5).unwrap(), None);
    g.truncate(4).await.unwrap();
    assert_eq!(g.last_log_id().unwrap(), Some(LogId::new(1, 3)), "the new last term is read back");
    g.truncate(100).await.unwrap();
    assert_eq!(g.last_index().unwrap(), Some(3), "truncating past the end is a no-op");
    g.truncate(1).await.unwrap();
    assert_eq!(g.log_state().unwrap(), LogState::default());
    // The log continues from where a fresh one would.
    g.append(&ents(1..3, 5)).await.unwrap();
    assert_eq!(ids(&store, 1), vec![(1, 5), (2, 5)]);
}

#[tokio::test]
async fn purge_within_the_log_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(1);
    g.append(&ents(1..11, 1)).await.unwrap();
    g.purge(LogId::new(1, 4)).await.unwrap();
    assert_eq!(g.first_index().unwrap(), Some(5));
    assert_eq!(g.purged().unwrap(), Some(LogId::new(1, 4)));
    assert_eq!(g.last_log_id().unwrap(), Some(LogId::new(1, 10)));
    assert_eq!(g.entry(4).unwrap(), None);
    assert_eq!(g.term(4).unwrap(), Some(1), "the boundary's term stays known");
    assert!(matches!(g.entries(3..6, None), Err(Error::Compacted { index: 3, first: 5, .. })));
    assert_eq!(g.entries(.., None).unwrap().len(), 6);
    // Purging at the boundary again is a no-op.
    g.purge(LogId::new(1, 4)).await.unwrap();
    assert_eq!(g.first_index().unwrap(), Some(5));
    // Appends continue after the last entry.
    g.append(&ents(11..12, 2)).await.unwrap();
    assert_eq!(g.last_log_id().unwrap(), Some(LogId::new(2, 11)));
}

#[tokio::test]
async fn purge_beyond_the_end_leaves_an_empty_log_ending_at_the_purged_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(1);
    g.append(&ents(1..6, 1)).await.unwrap();
    g.purge(LogId::new(3, 20)).await.unwrap();
    let state = g.log_state().unwrap();
    assert!(state.is_empty());
    assert_eq!(state.last_log_id, Some(LogId::new(3, 20)));
    assert_eq!(state.purged, Some(LogId::new(3, 20)));
    assert_eq!(g.entries(.., None).unwrap(), vec![]);
    assert!(matches!(g.append(&ents(20..21, 3)).await, Err(Error::BelowPurgeBoundary { .. })));
    assert!(matches!(g.append(&ents(22..23, 3)).await, Err(Error::Gap { expected: 21, .. })));
    g.append(&ents(21..23, 3)).await.unwrap();
    assert_eq!(g.first_index().unwrap(), Some(21));
    assert_eq!(ids(&store, 1), vec![(21, 3), (22, 3)]);
}

#[tokio::test]
async fn purge_creates_a_group_as_a_snapshot_install_would() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(3);
    assert!(!g.exists());
    g.purge(LogId::new(2, 100)).await.unwrap();
    assert!(g.exists());
    assert_eq!(g.last_log_id().unwrap(), Some(LogId::new(2, 100)));
    g.append(&ents(101..103, 2)).await.unwrap();
    assert_eq!(g.first_index().unwrap(), Some(101));
}

#[tokio::test]
async fn a_fresh_log_may_start_at_zero_or_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.group(1).append(&ents(0..3, 0)).await.unwrap();
    store.group(2).append(&ents(1..3, 1)).await.unwrap();
    assert_eq!(store.group(1).first_index().unwrap(), Some(0));
    assert_eq!(store.group(2).first_index().unwrap(), Some(1));
    assert!(matches!(store.group(3).append(&ents(2..3, 1)).await, Err(Error::Gap { expected: 1, .. })));
}

#[tokio::test]
async fn hard_state_is_saved_replaced_and_kept_by_reset() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let g = store.group(4);
    g.save_hard_state(HardState { term: 1, vote: Some(2), commit: 0 }).await.unwrap();
    assert_eq!(g.hard_state().unwrap(), Some(HardState { term: 1, vote: Some(2), commit: 0 }));
    g.save_hard_state(HardState { term: 2, vote: None, commit: 5 }).await.unwrap();
    assert_eq!(g.hard_state().unwrap(), Some(HardState { term: 2, vote: None, commit: 5 }));
    g.append(&ents(1..6, 2)).await.unwrap();
    g.purge(LogId::new(2, 2)).await.unwrap();

    g.reset().await.unwrap();
    assert_eq!(g.log_state().unwrap(), LogState::default());
    assert_eq!(g.hard_state().unwrap(), Some(HardState { term: 2, vote: None, commit: 5 }));
    g.append(&ents(1..2, 3)).await.unwrap();
    assert_eq!(ids(&store, 4), vec![(1, 3)]);
}

#[tokio::test]
async fn removing_a_group_deletes_everything_of_it_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for id in [1, 2, 3] {
        store.group(id).append(&ents(1..4, 1)).await.unwrap();
        store.group(id).save_hard_state(HardState { term: 1, vote: Some(id), commit: 1 }).await.unwrap();
    }
    store.group(2).remove().await.unwrap();
    assert_eq!(store.groups(), vec![1, 3]);
    assert!(matches!(store.group(2).entry(1), Err(Error::GroupNotFound(2))));
    assert!(matches!(store.group(2).hard_state(), Err(Error::GroupNotFound(2))));
    assert!(matches!(store.group(2).remove().await, Err(Error::GroupNotFound(2))));
    assert_eq!(ids(&store, 1).len(), 3);
    assert_eq!(ids(&store, 3).len(), 3);
    // A removed id can be used again, starting afresh.
    store.group(2).append(&ents(1..2, 9)).await.unwrap();
    assert_eq!(ids(&store, 2), vec![(1, 9)]);
    assert_eq!(store.group(2).hard_state().unwrap(), None);
}

#[tokio::test]
async fn groups_are_independent_logs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.group(1).append(&ents(1..4, 1)).await.unwrap();
    store.group(2).append(&ents(1..9, 2)).await.unwrap();
    store.group(u64::MAX).append(&ents(1..2, 1)).await.unwrap();
    store.group(1).truncate(2).await.unwrap();
    store.group(2).purge(LogId::new(2, 5)).await.unwrap();
    assert_eq!(ids(&store, 1), vec![(1, 1)]);
    assert_eq!(ids(&store, 2), (6..9).map(|i| (i, 2)).collect::<Vec<_>>());
    assert_eq!(ids(&store, u64::MAX), vec![(1, 1)]);
    assert_eq!(store.groups(), vec![1, 2, u64::MAX]);
    store.group(5).create().await.unwrap();
    assert_eq!(store.group(5).log_state().unwrap(), LogState::default());
}

#[tokio::test]
async fn flush_is_a_barrier_under_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.group(1).append(&ents(1..3, 1)).await.unwrap();
    store.flush().await.unwrap();
    store.sync().await.unwrap();
    assert_eq!(ids(&store, 1).len(), 2);
}

/// Readers racing purges and truncates see entries, `Compacted`, or a shorter log — never
/// a hole reported as corruption. (The soak run found this: a purge reached RocksDB before
/// its new first index was published, and a reader in between took the gap for damage.)
#[test]
fn readers_racing_purges_and_truncates_never_see_a_phantom_hole() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = open(dir.path());
    // The test seam widens the window between a batch reaching RocksDB and its bounds
    // being published, which a loaded machine opens by preempting the writer. Without the
    // seam the race is still run, only less often hit.
    #[cfg(feature = "__testing")]
    store.inject_publish_delay(std::time::Duration::from_millis(1));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (store, stop) = (store.clone(), std::sync::Arc::clone(&stop));
            std::thread::spawn(move || {
                let group = store.group(1);
                let mut reads = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(Some(first)) = group.first_index() else { continue };
                    for lo in [first, first + 3] {
                        match group.entries(lo..lo + 20, None) {
                            Ok(_) | Err(Error::Compacted { .. }) => reads += 1,
                            Err(e) => panic!("read of {lo}..{} failed: {e}", lo + 20),
                        }
                        match group.entry(lo + 1) {
                            Ok(_) => reads += 1,
                            Err(e) => panic!("read of {} failed: {e}", lo + 1),
                        }
                    }
                }
                reads
            })
        })
        .collect();
    rt.block_on(async {
        let group = store.group(1);
        let mut next = 1u64;
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(2) {
            group.append(&ents(next..next + 10, 1)).await.unwrap();
            next += 10;
            // Keep a few entries: purge right at the readers' first index, and cut the
            // tail now and then so ranges shrink under them too.
            group.purge(LogId::new(1, next - 6)).await.unwrap();
            if next % 30 == 1 {
                group.truncate(next - 2).await.unwrap();
                next -= 2;
            }
        }
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().expect("a reader saw a phantom hole")).sum();
    assert!(reads > 200, "the readers ran ({reads} reads)");
    rt.block_on(store.shutdown()).unwrap();
}
