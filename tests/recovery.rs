//! Reopening: everything acknowledged survives a shutdown or a drop, recovery restores
//! every group exactly, and directories that are not ours are refused untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ents, ids, open, snapshot};
use rocklog::{Compression, Config, Durability, Entry, Error, HardState, LogId, LogStore};

async fn write_mixed_history(store: &LogStore) {
    let a = store.group(1);
    a.append(&ents(1..21, 1)).await.unwrap();
    a.append(&ents(15..18, 2)).await.unwrap();
    a.purge(LogId::new(1, 5)).await.unwrap();
    a.save_hard_state(HardState { term: 2, vote: Some(3), commit: 12 }).await.unwrap();
    let b = store.group(2);
    b.append(&ents(1..6, 1)).await.unwrap();
    b.purge(LogId::new(4, 50)).await.unwrap();
    let c = store.group(3);
    c.append(&ents(1..10, 1)).await.unwrap();
    c.truncate(4).await.unwrap();
    store.group(4).create().await.unwrap();
}

#[tokio::test]
async fn shutdown_then_reopen_finds_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write_mixed_history(&store).await;
    let before = snapshot(&store);
    store.shutdown().await.unwrap();
    assert!(matches!(store.group(1).entry(6), Err(Error::Closed)));
    assert!(matches!(store.group(1).append(&ents(18..19, 2)).await, Err(Error::Closed)));

    let store = open(dir.path());
    assert_eq!(snapshot(&store), before);
    let a = store.group(1);
    assert_eq!(a.first_index().unwrap(), Some(6));
    assert_eq!(a.last_log_id().unwrap(), Some(LogId::new(2, 17)));
    assert_eq!(a.purged().unwrap(), Some(LogId::new(1, 5)));
    assert_eq!(a.hard_state().unwrap(), Some(HardState { term: 2, vote: Some(3), commit: 12 }));
    assert_eq!(store.group(2).last_log_id().unwrap(), Some(LogId::new(4, 50)));
    assert_eq!(store.group(3).last_log_id().unwrap(), Some(LogId::new(1, 3)));
    assert!(store.group(4).exists());
}

/// Bytes of the newest WAL file (`NNNNNN.log`) in a closed database directory: the one
/// the next open replays. Older ones left there are obsolete files kept for reuse
/// (`Config::wal_recycle_files`), which no open replays.
fn wal_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter_map(|e| {
            let number = e.file_name().to_str()?.strip_suffix(".log")?.parse::<u64>().ok()?;
            Some((number, e.metadata().unwrap().len()))
        })
        .max()
        .map_or(0, |(_, len)| len)
}

/// A clean shutdown flushes the memtables, so the WAL left behind holds nothing to replay
/// and the next open is fast (without the flush, this test's WAL keeps its 1 MiB entry).
#[tokio::test]
async fn a_clean_shutdown_leaves_no_wal_to_replay() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let payload = bytes::Bytes::from(vec![3u8; 1 << 20]);
    store.group(1).append(&[rocklog::Entry::new(1, 1, payload.clone())]).await.unwrap();
    store.shutdown().await.unwrap();
    assert!(wal_bytes(dir.path()) < 64 << 10, "WAL left after a clean stop: {} bytes", wal_bytes(dir.path()));
    let store = open(dir.path());
    assert_eq!(store.group(1).entry(1).unwrap().unwrap().payload, payload);
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn dropping_every_handle_closes_the_directory_for_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let store = open(dir.path());
        write_mixed_history(&store).await;
        let group = store.group(1);
        let before = snapshot(&store);
        drop(store);
        drop(group);
        before
    };
    let store = open(dir.path());
    assert_eq!(snapshot(&store), before);
}

#[tokio::test]
async fn buffered_writes_survive_a_clean_reopen_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.durability = Durability::Buffered;
    let store = LogStore::start(config.clone()).unwrap();
    store.group(1).append(&ents(1..101, 1)).await.unwrap();
    store.flush().await.unwrap();
    assert_eq!(store.stats().syncs, 1, "buffered writes are synced once, by the flush");
    store.group(1).append(&ents(101..111, 1)).await.unwrap();
    store.shutdown().await.unwrap();
    let store = LogStore::start(config).unwrap();
    assert_eq!(store.group(1).last_index().unwrap(), Some(110));
}

#[tokio::test]
async fn a_thousand_groups_are_restored_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut tasks = Vec::new();
    for id in 0..1000u64 {
        let g = store.group(id);
        tasks.push(tokio::spawn(async move {
            let n = 1 + id % 7;
            g.append(&ents(1..1 + n, 1 + id % 3)).await.unwrap();
            match id % 4 {
                0 => g.purge(LogId::new(1 + id % 3, 1)).await.unwrap(),
                1 => g.save_hard_state(HardState { term: id, vote: Some(id % 5), commit: n }).await.unwrap(),
                2 => g.truncate(n).await.unwrap(),
                _ => {}
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let before = snapshot(&store);
    assert_eq!(before.len(), 1000);
    drop(store);
    let store = open(dir.path());
    assert_eq!(snapshot(&store), before);
}

#[tokio::test]
async fn the_same_directory_cannot_be_opened_twice() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    match LogStore::open(Config::new(dir.path())) {
        Err(Error::Locked { .. }) => {}
        other => panic!("expected Locked, got {other:?}"),
    }
    store.shutdown().await.unwrap();
    // Released by shutdown: the path opens again in this process.
    open(dir.path()).shutdown().await.unwrap();
}

#[test]
fn a_file_or_a_foreign_directory_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a database").unwrap();
    assert!(matches!(LogStore::open(Config::new(&file)), Err(Error::NotRocklog { .. })));
    assert_eq!(std::fs::read(&file).unwrap(), b"not a database");

    let home = dir.path().join("someones-home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("notes.txt"), b"keep me").unwrap();
    assert!(matches!(LogStore::open(Config::new(&home)), Err(Error::NotRocklog { .. })));
    let names: Vec<_> = std::fs::read_dir(&home).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("notes.txt")]);
}

#[test]
fn a_rocksdb_database_of_another_program_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&opts, dir.path(), ["logs", "meta"]).unwrap();
        db.put(b"k", b"v").unwrap();
    }
    match LogStore::open(Config::new(dir.path())) {
        Err(Error::NotRocklog { reason, .. }) => assert!(reason.contains("`log`"), "{reason}"),
        other => panic!("expected NotRocklog, got {other:?}"),
    }
}

#[tokio::test]
async fn a_newer_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).shutdown().await.unwrap();
    {
        let opts = rocksdb::Options::default();
        let db = rocksdb::DB::open_cf(&opts, dir.path(), ["log", "meta"]).unwrap();
        let meta = db.cf_handle("meta").unwrap();
        // FormatVersion { version: 99 } in protobuf: field 1, varint.
        db.put_cf(meta, b"rocklog.format", [0x08, 99]).unwrap();
    }
    match LogStore::open(Config::new(dir.path())) {
        Err(Error::UnsupportedVersion { found: 99, supported }) => {
            assert_eq!(supported, rocklog::FORMAT_VERSION);
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
}

/// A clean close records every group's bounds, so the next open seeks for none of them
/// and recovers the same state; once anything is written after that record it no longer
/// describes the log, and an open seeks again (here a read-only open beside the running
/// engine, which must see the newer entries, not the record's bounds).
#[tokio::test]
async fn a_clean_close_spares_the_next_open_its_seeks_until_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write_mixed_history(&store).await;
    let before = snapshot(&store);
    store.shutdown().await.unwrap();

    let store = open(dir.path());
    assert_eq!(store.stats().open_group_seeks, 0, "the clean-close record held every group");
    assert_eq!(snapshot(&store), before);

    store.group(3).append(&ents(4..7, 1)).await.unwrap();
    let offline = rocklog::offline::OfflineLog::open(dir.path()).unwrap();
    let group3 = offline.groups().unwrap().into_iter().find(|g| g.id == 3).unwrap();
    assert_eq!(group3.log.last_log_id, Some(LogId::new(1, 6)), "a stale clean-close record was trusted");
    drop(offline);
    store.shutdown().await.unwrap();
}

/// After a crash (here: the engine's directory copied while it runs, as a power cut
/// would leave it), the record from the last clean close is stale and every group is
/// read from the log.
#[tokio::test]
async fn a_reopen_after_writes_the_record_missed_seeks_every_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write_mixed_history(&store).await;
    store.shutdown().await.unwrap();
    let store = open(dir.path());
    store.group(3).append(&ents(4..7, 1)).await.unwrap();
    let groups = store.groups().len() as u64;
    // Dropping the writer without a shutdown still closes cleanly; a kill does not. The
    // copy below is what a kill leaves: every acknowledged write, no new record. (Files
    // only: `archive/`, which holds obsolete WAL files on their way out, is not needed.)
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "LOCK" && entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
        }
    }
    store.shutdown().await.unwrap();
    let reopened = open(copy.path());
    assert_eq!(reopened.stats().open_group_seeks, groups);
    assert_eq!(ids(&reopened, 3), vec![(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1)]);
    reopened.shutdown().await.unwrap();
}

/// 64 entries of about 15 KiB of repeated text from index `first` on: a blob file stores
/// them in a small fraction of that when compressed.
fn compressible(first: u64) -> Vec<Entry> {
    (first..first + 64)
        .map(|i| Entry::new(i, 1, format!("entry {i:08} of a compressible log. ").repeat(400)))
        .collect()
}

/// `Config::blob_compression` can change between opens: each blob file keeps its own
/// compression, so a reopen with another setting reads every entry back. The blob
/// files' growth shows each setting in effect (the control: compressed entries take a
/// fraction of the disk that uncompressed ones do).
#[tokio::test]
async fn blob_files_stay_readable_when_their_compression_setting_changes() {
    let dir = tempfile::tempdir().unwrap();
    let payload: u64 = compressible(1).iter().map(|e| e.payload.len() as u64).sum();
    let lz4 = Config { blob_compression: Compression::Lz4, ..Config::new(dir.path()) };
    let blob_bytes = |store: &LogStore| store.storage_state().unwrap().blob_bytes;

    // A clean shutdown flushes the memtable: the entries are in blob files.
    let store = LogStore::start(lz4.clone()).unwrap();
    store.group(1).append(&compressible(1)).await.unwrap();
    store.shutdown().await.unwrap();

    let store = LogStore::start(Config::new(dir.path())).unwrap();
    assert_eq!(store.config().blob_compression, Compression::None, "the default");
    let compressed = blob_bytes(&store);
    assert!(compressed > 0 && compressed < payload / 4, "LZ4 blob files: {compressed} bytes");
    assert_eq!(store.group(1).entries(.., None).unwrap(), compressible(1));
    store.group(1).append(&compressible(65)).await.unwrap();
    store.shutdown().await.unwrap();

    let store = LogStore::start(lz4).unwrap();
    let plain = blob_bytes(&store) - compressed;
    assert!(plain >= payload, "uncompressed blob files: {plain} bytes for {payload} of payload");
    let mut all = compressible(1);
    all.extend(compressible(65));
    assert_eq!(store.group(1).entries(.., None).unwrap(), all);
    store.shutdown().await.unwrap();
}
