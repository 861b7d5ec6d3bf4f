//! Removing obsolete SST and blob files a chunk at a time (`Config::sst_delete_chunk`):
//! the engine's trimmer links each table file into `trash/` and removes it from there
//! once RocksDB has deleted it. With the setting off, RocksDB deletes them itself and
//! there is no `trash/`. Either way nothing acknowledged is lost, and checkpoints taken
//! meanwhile stay whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use rocklog::{ByteSize, Config, Entry, LogStore};

/// Table files (`NNNNNN.sst`, `NNNNNN.blob`) directly in `dir`.
fn table_files(dir: &Path) -> BTreeSet<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| {
                let stem = n.strip_suffix(".sst").or_else(|| n.strip_suffix(".blob"));
                stem.is_some_and(|s| s.parse::<u64>().is_ok())
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
        Err(e) => panic!("{}: {e}", dir.display()),
    }
}

/// 1 MiB memtables and a compaction of level 0 after every second flush, so that a few
/// MiB of appends make SST files obsolete; `chunk` is `sst_delete_chunk`.
fn config(dir: &Path, chunk: ByteSize) -> Config {
    Config {
        write_buffer_size: ByteSize::mib(1),
        l0_compaction_trigger: 2,
        level_base_size: ByteSize::mib(1),
        sst_delete_chunk: chunk,
        ..Config::new(dir)
    }
}

/// Entries `range` of group `group`, 512 bytes each that do not compress (below
/// `blob_min_size`, so they stay in SST files).
fn entries(group: u64, range: std::ops::Range<u64>) -> Vec<Entry> {
    range
        .map(|i| {
            let mut x = (group << 40 | i).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let payload: Vec<u8> = (0..512)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()[0]
                })
                .collect();
            Entry::new(i, 1, payload)
        })
        .collect()
}

/// Appends rounds `rounds` of 32 KiB to groups 1 and 2 each. Both groups are in every
/// flushed file, so the files overlap and a compaction rewrites them (one group alone
/// would give files RocksDB merely moves down a level, which makes nothing obsolete).
async fn append_rounds(store: &LogStore, rounds: std::ops::Range<u64>) {
    for round in rounds {
        for group in [1, 2] {
            store.group(group).append(&entries(group, round * 64 + 1..round * 64 + 65)).await.unwrap();
        }
    }
}

/// Obsolete SST files go through `trash/` and are removed by the engine (counted in
/// `sst_files_trimmed`): once flushes and compactions are done, the trash holds exactly
/// the files RocksDB still has. Then every entry is still there after a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obsolete_table_files_go_through_the_trash() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(config(dir.path(), ByteSize::kib(64))).unwrap();
    append_rounds(&store, 0..128).await;
    let trash = dir.path().join("trash");
    let deadline = Instant::now() + Duration::from_secs(10);
    let settled = |store: &LogStore| {
        store.stats().sst_files_trimmed >= 3 && table_files(&trash) == table_files(dir.path())
    };
    while !settled(&store) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        settled(&store),
        "{} trimmed; trash {:?}, live {:?}",
        store.stats().sst_files_trimmed,
        table_files(&trash),
        table_files(dir.path())
    );
    let expected = common::snapshot(&store);
    store.shutdown().await.unwrap();
    let store = LogStore::start(config(dir.path(), ByteSize::kib(64))).unwrap();
    assert_eq!(common::snapshot(&store), expected);
    assert_eq!(store.group(2).last_index().unwrap(), Some(128 * 64));
    store.shutdown().await.unwrap();
}

/// The control: with `sst_delete_chunk = 0B` the same appends make files obsolete too
/// (RocksDB deletes them itself: some file seen during the fill is gone), but nothing
/// goes through a trash, so the test above sees the trimmer's work. A trash an earlier
/// open left is removed at open, without touching the live files it named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_chunks_off_there_is_no_trash() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(config(dir.path(), ByteSize::kib(64))).unwrap();
    append_rounds(&store, 0..32).await;
    // The trimmer links new table files every 50 ms: wait for it before closing, or a
    // close that comes first leaves nothing linked (once in a fresh-clone CI run).
    let trash = dir.path().join("trash");
    let deadline = Instant::now() + Duration::from_secs(10);
    while table_files(&trash).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.shutdown().await.unwrap();
    assert!(!table_files(&trash).is_empty(), "the first open linked nothing");

    let store = LogStore::start(config(dir.path(), ByteSize(0))).unwrap();
    assert!(!trash.exists(), "an earlier open's trash stayed");
    assert_eq!(store.group(1).last_index().unwrap(), Some(2048));
    let mut seen = table_files(dir.path());
    for round in 32..160u64 {
        append_rounds(&store, round..round + 1).await;
        seen.extend(table_files(dir.path()));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.is_subset(&table_files(dir.path())) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!seen.is_subset(&table_files(dir.path())), "no table file became obsolete: {seen:?}");
    assert!(!trash.exists(), "a trash with chunks off");
    assert_eq!(store.stats().sst_files_trimmed, 0);
    assert_eq!(store.group(2).entries(.., None).unwrap(), entries(2, 1..160 * 64 + 1));
    store.shutdown().await.unwrap();
}

/// Checkpoints taken while table files are trashed and trimmed all succeed, and every
/// copy still opens whole after the trimmer went on: a checkpoint hard-links table
/// files, and a file shrunk through the trash while a copy held it would show here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_stay_whole_while_table_files_are_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let copies = tempfile::tempdir().unwrap();
    let store = LogStore::start(config(dir.path(), ByteSize::kib(64))).unwrap();
    let taken = common::checkpoints_while_writing(
        &store,
        copies.path(),
        |store, round| async move { append_rounds(&store, round..round + 1).await },
        |store| store.stats().sst_files_trimmed >= 3,
    )
    .await;
    store.shutdown().await.unwrap();
    common::check_each_copy(
        &taken,
        |copy| config(copy, ByteSize(0)),
        |n, opened| {
            for group in opened.groups() {
                let log = opened.group(group).entries(.., None).unwrap();
                let last = log.last().map_or(0, |e| e.index);
                assert_eq!(
                    log,
                    entries(group, 1..last + 1),
                    "copy {n} lost or changed entries of group {group}"
                );
            }
        },
    )
    .await;
}
