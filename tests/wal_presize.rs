//! WAL presizing (`Config::wal_presize`): each new WAL file's size covers the space RocksDB
//! reserved for it, so its fsyncs write no new size; and a WAL left that way by a crash
//! (records, then zeros) recovers every acknowledged entry. The power-loss loop
//! (`testkit/tests/crash_loop.rs`) crashes such WALs at random moments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::{ents, large};
use rocklog::{Config, LogStore};

/// The newest WAL file in `dir`: its path, size and allocated bytes.
fn newest_wal(dir: &Path) -> (PathBuf, u64, u64) {
    let newest = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .filter_map(|p| Some((p.file_stem()?.to_str()?.parse::<u64>().ok()?, p)))
        .max()
        .expect("a WAL file")
        .1;
    let meta = std::fs::metadata(&newest).unwrap();
    (newest, meta.len(), meta.blocks() * 512)
}

/// [`common::wal_switching`]: every WAL file new (a reused one is full-sized already:
/// `tests/wal_recycle.rs`).
fn config(dir: &Path, presize: bool) -> Config {
    Config { wal_presize: presize, ..common::wal_switching(dir) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_new_wal_file_is_presized_to_its_reserved_space() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(config(dir.path(), true)).unwrap();
    store.group(1).append(&ents(1..11, 1)).await.unwrap();
    let (wal, len, allocated) = newest_wal(dir.path());
    // RocksDB reserves about 1.1 memtables for a WAL; ten small entries are a few hundred
    // bytes of it.
    assert!(len >= 1 << 20, "{} is {len} bytes: not presized", wal.display());
    assert!(len <= allocated, "{} is {len} bytes, past its {allocated} allocated", wal.display());
    assert_eq!(store.stats().wal_files_presized, 1);

    // Three times: 1.5 MiB of appends fill a 1 MiB memtable, whose switch starts a new WAL
    // file; the writer looks for one every 20 ms, after a write.
    let mut next = 1;
    for _ in 0..3 {
        for _ in 0..24 {
            store.group(2).append(&large(next..next + 1, 1)).await.unwrap();
            next += 1;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        store.group(2).append(&large(next..next + 1, 1)).await.unwrap();
        next += 1;
    }
    let presized = store.stats().wal_files_presized;
    assert!(presized >= 4, "{presized} WAL files presized: the first and one after each of 3 switches");
    let (newest, len, _) = newest_wal(dir.path());
    assert_ne!(newest, wal);
    assert!(len >= 1 << 20, "{} is {len} bytes: not presized", newest.display());
    store.shutdown().await.unwrap();
}

/// The control: with presizing off, the WAL holds only what was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_presizing_the_wal_holds_only_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(config(dir.path(), false)).unwrap();
    store.group(1).append(&ents(1..11, 1)).await.unwrap();
    let (wal, len, _) = newest_wal(dir.path());
    assert!(len < 64 << 10, "{} is {len} bytes with presizing off", wal.display());
    assert_eq!(store.stats().wal_files_presized, 0);
    store.shutdown().await.unwrap();
}

/// What a power loss right now leaves of a presized WAL: its records, then zeros up to
/// its size. A copy of the live directory is that image (every acknowledged write was
/// fsynced); opened, it must hold every acknowledged entry, and the copy's WAL must really
/// end in zeros.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_image_of_a_presized_wal_recovers_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(config(dir.path(), true)).unwrap();
    for g in 1..=3 {
        for i in 0..20 {
            store.group(g).append(&ents(i * 5 + 1..i * 5 + 6, 1 + i / 10)).await.unwrap();
        }
    }
    store.group(2).purge(rocklog::LogId::new(1, 30)).await.unwrap();
    store.group(3).truncate(71).await.unwrap();
    assert!(store.stats().wal_files_presized >= 1);
    let expected = common::snapshot(&store);

    let image = common::crash_image(dir.path());
    let (wal, len, _) = newest_wal(image.path());
    let bytes = std::fs::read(&wal).unwrap();
    assert!(len >= 1 << 20 && bytes[bytes.len() - (64 << 10)..].iter().all(|&b| b == 0), "no zero tail");
    assert!(bytes[..4096].iter().any(|&b| b != 0), "no records at the start");

    let copy = LogStore::start(config(image.path(), true)).unwrap();
    assert_eq!(common::snapshot(&copy), expected);
    assert_eq!(copy.group(3).last_index().unwrap(), Some(70));
    copy.shutdown().await.unwrap();
    store.shutdown().await.unwrap();
}
