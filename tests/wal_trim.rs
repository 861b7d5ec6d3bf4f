//! Removing obsolete WAL files a chunk at a time (`Config::wal_delete_chunk`): RocksDB
//! moves each one into `archive/`, and the engine's trimmer thread removes it; with the
//! setting off RocksDB deletes them itself and archives nothing. Either way nothing
//! acknowledged is lost. The power-loss loop (`testkit/tests/crash_loop.rs`) runs with
//! the default, so archived files are trimmed between its power losses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rocklog::{ByteSize, Config, Entry, LogStore};

/// WAL files (`NNNNNN.log`) directly in `dir`.
fn wal_files(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.strip_suffix(".log").is_some_and(|stem| stem.parse::<u64>().is_ok()))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", dir.display()),
    }
}

/// A 1 MiB memtable, so that a few MiB of appends switch WAL files several times.
fn config(dir: &Path, chunk: ByteSize) -> Config {
    let mut config = Config::new(dir);
    config.write_buffer_size = ByteSize::mib(1);
    config.wal_delete_chunk = chunk;
    config
}

fn large(range: std::ops::Range<u64>) -> Vec<Entry> {
    range.map(|i| Entry::new(i, 1, Bytes::from(vec![(i % 251) as u8; 64 << 10]))).collect()
}

/// Appends 8 MiB to group 1 (several memtable flushes, each making a WAL file obsolete)
/// and flushes the rest, then waits up to `within` for `done` to hold of the directory.
async fn fill_and_wait(store: &LogStore, dir: &Path, within: Duration, done: impl Fn(&Path) -> bool) -> bool {
    for i in 0..128 {
        store.group(1).append(&large(i + 1..i + 2)).await.unwrap();
    }
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if done(dir) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done(dir)
}

/// Obsolete WAL files go through `archive/` and are removed by the engine (counted in
/// `wal_files_trimmed`), well before RocksDB's own 20-second limit would remove them: at
/// the end the archive is empty and only the live WAL files remain. Then every entry is
/// still there after a reopen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obsolete_wal_files_are_archived_then_removed_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(config(dir.path(), ByteSize::kib(64))).unwrap();
    let archive = dir.path().join("archive");
    let trimmed = fill_and_wait(&store, dir.path(), Duration::from_secs(5), |d| {
        store.stats().wal_files_trimmed >= 3
            && wal_files(&d.join("archive")).is_empty()
            && wal_files(d).len() <= 2
    })
    .await;
    assert!(
        trimmed,
        "{} trimmed; archive {:?}, live {:?}",
        store.stats().wal_files_trimmed,
        wal_files(&archive),
        wal_files(dir.path())
    );
    let expected = common::snapshot(&store);
    store.shutdown().await.unwrap();
    let store = LogStore::start(config(dir.path(), ByteSize::kib(64))).unwrap();
    assert_eq!(common::snapshot(&store), expected);
    assert_eq!(store.group(1).last_index().unwrap(), Some(128));
    store.shutdown().await.unwrap();
}

/// The control: with `wal_delete_chunk = 0B` the same appends archive and trim nothing
/// (RocksDB deletes each obsolete WAL file itself), so the test above sees the trimmer's
/// work, not RocksDB's. A file an earlier open archived is removed at open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_chunks_off_nothing_is_archived() {
    let dir = tempfile::tempdir().unwrap();
    LogStore::start(config(dir.path(), ByteSize(0))).unwrap().shutdown().await.unwrap();
    let archive = dir.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::write(archive.join("000003.log"), vec![0u8; 1 << 20]).unwrap();
    let store = LogStore::start(config(dir.path(), ByteSize(0))).unwrap();
    assert!(wal_files(&archive).is_empty(), "an earlier open's archived file stayed");
    let deleted =
        fill_and_wait(&store, dir.path(), Duration::from_secs(5), |d| wal_files(d).len() <= 2).await;
    assert!(deleted, "live WAL files: {:?}", wal_files(dir.path()));
    assert!(wal_files(&archive).is_empty(), "archived with chunks off: {:?}", wal_files(&archive));
    assert_eq!(store.stats().wal_files_trimmed, 0);
    assert_eq!(store.group(1).last_index().unwrap(), Some(128));
    store.shutdown().await.unwrap();
}
