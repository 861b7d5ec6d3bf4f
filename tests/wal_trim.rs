//! Removing obsolete WAL files a chunk at a time (`Config::wal_delete_chunk`): RocksDB
//! moves each one into `archive/`, and the engine's trimmer thread removes it; with the
//! setting off RocksDB deletes them itself and archives nothing. Either way nothing
//! acknowledged is lost. RocksDB archives only while it does not recycle WAL files, so
//! these tests turn recycling (`Config::wal_recycle_files`, on by default) off, as does
//! the tuned power-loss loop (`testkit/tests/crash_loop.rs`), so that archived files are
//! trimmed between its power losses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::large;
use rocklog::{ByteSize, Config, LogStore};

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

/// [`common::wal_switching`]: obsolete WAL files are archived, not reused.
fn config(dir: &Path, chunk: ByteSize) -> Config {
    Config { wal_delete_chunk: chunk, ..common::wal_switching(dir) }
}

/// Appends 8 MiB to group 1 (several memtable flushes, each making a WAL file obsolete)
/// and flushes the rest, then waits up to `within` for `done` to hold of the directory.
async fn fill_and_wait(store: &LogStore, dir: &Path, within: Duration, done: impl Fn(&Path) -> bool) -> bool {
    for i in 0..128 {
        store.group(1).append(&large(i + 1..i + 2, 1)).await.unwrap();
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

/// Checkpoints taken while obsolete WAL files are archived and trimmed all succeed and
/// verify. RocksDB's checkpoint hard-links WAL files into the copy: shrinking an archived
/// file shrank the copy's link too, and the copy then failed to open ("Column family
/// inconsistency", 2 runs in 60 before the trimmer learned to leave linked files whole).
/// It also lists the archive and then reads each file's size, so a file removed in
/// between would fail it. `src/storage/wal_trim.rs` tests both guards deterministically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_succeed_while_wal_files_are_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let copies = tempfile::tempdir().unwrap();
    let store = LogStore::start(config(dir.path(), ByteSize::kib(64))).unwrap();
    let taken = common::checkpoints_while_writing(
        &store,
        copies.path(),
        |store, i| async move { store.group(1).append(&large(i + 1..i + 2, 1)).await.unwrap() },
        |store| store.stats().wal_files_trimmed >= 3,
    )
    .await;
    store.shutdown().await.unwrap();
    // Every copy still opens whole after the trimmer went on: a linked WAL file shrunk
    // after its checkpoint returned would show here.
    common::check_each_copy(
        &taken,
        |copy| config(copy, ByteSize(0)),
        |n, opened| {
            let entries = opened.group(1).entries(.., None).unwrap();
            assert!(entries.iter().enumerate().all(|(i, e)| e.index == i as u64 + 1), "copy {n} has a hole");
        },
    )
    .await;
}
