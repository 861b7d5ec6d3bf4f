//! Blob garbage collection tied to purges (`Config::blob_gc_garbage_percent`): RocksDB's
//! blob GC stays off while the blob files hold little garbage (what it buys is measured
//! by `rocklog bench`, tuning guide in `docs/benchmarks.md`), and turns on once purges
//! have left enough of it, which reclaims the space and keeps every live entry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use rocklog::{ByteSize, Config, Entry, LogId, LogStore, StorageState};
use rocklog_testkit::noise;

/// 1 MiB memtables (each flush writes a blob file of about 1 MiB) and a compaction
/// after every second flush, so purged entries' indexes are soon dropped and counted
/// as garbage. Entries of 8 KiB and more go to blob files: the 16 KiB ones, not the
/// 4 KiB filler, which stays in SST files.
fn config(dir: &Path, percent: u32) -> Config {
    let mut config = Config::new(dir);
    config.write_buffer_size = ByteSize::mib(1);
    config.blob_min_size = ByteSize::kib(8);
    config.l0_compaction_trigger = 2;
    config.level_base_size = ByteSize::mib(1);
    config.blob_gc_garbage_percent = percent;
    config
}

/// A 16 KiB entry whose payload does not compress (LZ4 would make a repeated byte a
/// few dozen bytes, too small for a blob file).
fn large(index: u64, group: u64) -> Entry {
    Entry::new(index, 1, noise((group << 32 | index).wrapping_mul(0x9E37_79B9_7F4A_7C15), 16 << 10))
}

/// 8 MiB of 16 KiB entries, a quarter in group 1 and three quarters in group 2, written
/// side by side so that every blob file holds both; then group 2 is purged whole and
/// 2.5 MiB of 4 KiB entries (below `blob_min_size`: they stay in SST files) to group 3
/// fill the memtable twice, so a compaction drops group 2's indexes. Every
/// blob file is then about three quarters garbage, kept alive by group 1. Checks that
/// the blob files held the 8 MiB before the purge.
async fn fill_and_purge(store: &LogStore) {
    let (one, two) = (store.group(1), store.group(2));
    for round in 0..128u64 {
        one.append(&[large(round + 1, 1)]).await.unwrap();
        let first = round * 3 + 1;
        two.append(&(first..first + 3).map(|i| large(i, 2)).collect::<Vec<_>>()).await.unwrap();
    }
    let filled = store.storage_state().unwrap();
    assert!(filled.blob_bytes >= 7 << 20, "{filled:?}");
    two.purge(LogId::new(1, 384)).await.unwrap();
    for i in 0..64u64 {
        let first = i * 10 + 1;
        let entries: Vec<Entry> =
            (first..first + 10).map(|j| Entry::new(j, 1, vec![j.to_le_bytes()[0]; 4 << 10])).collect();
        store.group(3).append(&entries).await.unwrap();
    }
}

/// Polls the engine's state every 200 ms until `done` holds or `within` passes; returns
/// the last state and whether `done` held.
async fn wait_for(
    store: &LogStore,
    within: Duration,
    done: impl Fn(&StorageState) -> bool,
) -> (StorageState, bool) {
    let deadline = Instant::now() + within;
    loop {
        let state = store.storage_state().unwrap();
        if done(&state) {
            return (state, true);
        }
        if Instant::now() > deadline {
            return (state, false);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Group 1's whole log, as written.
fn check_group_one(store: &LogStore) {
    let entries = store.group(1).entries(.., None).unwrap();
    assert_eq!(entries.len(), 128);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(*e, large(i as u64 + 1, 1), "entry {}", i + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purged_blob_files_are_collected_once_garbage_passes_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(config(dir.path(), 25)).unwrap();
    fill_and_purge(&store).await;
    // Garbage first shows up (compaction counts it), then the sampler turns collection
    // on and RocksDB rewrites group 1's entries out of the oldest files until the
    // garbage is below half the threshold, where collection turns off again.
    // Group 1's 2 MiB is what should be left.
    let (state, collected) = wait_for(&store, Duration::from_secs(60), |s| {
        s.blob_bytes >= 2 << 20 && s.blob_bytes < 3 << 20 && s.blob_garbage_bytes * 8 < s.blob_bytes
    })
    .await;
    assert!(collected, "blob garbage not collected within 60 s: {state:?}");
    assert_eq!(store.group(2).first_index().unwrap(), None);
    check_group_one(&store);
    store.shutdown().await.unwrap();

    // The rewritten entries are durable where they now are.
    let store = LogStore::start(config(dir.path(), 25)).unwrap();
    check_group_one(&store);
    store.shutdown().await.unwrap();
}

/// The control: the same garbage (about three quarters of the blob bytes) under a
/// threshold of 90 % is left alone, so what reclaims it above is rocklog turning
/// collection on, not RocksDB deleting dead files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_threshold_blob_garbage_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(config(dir.path(), 90)).unwrap();
    fill_and_purge(&store).await;
    let (state, counted) =
        wait_for(&store, Duration::from_secs(30), |s| s.blob_garbage_bytes * 2 > s.blob_bytes).await;
    assert!(counted, "compaction never counted group 2's entries as garbage: {state:?}");
    // Several sampler rounds later, nothing has been collected.
    tokio::time::sleep(rocklog::metrics::STORAGE_SAMPLE_INTERVAL * 4).await;
    let later = store.storage_state().unwrap();
    assert!(later.blob_bytes >= 6 << 20, "{later:?}");
    assert!(later.blob_garbage_bytes * 2 > later.blob_bytes, "{later:?}");
    check_group_one(&store);
    store.shutdown().await.unwrap();
}
