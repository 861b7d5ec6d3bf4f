//! What a power loss does to a closed, reused WAL file, and why rocklog runs RocksDB with
//! atomic flushes (`Config::wal_recycle_files`).
//!
//! RocksDB trims a reused WAL file to its new records when it closes it and never syncs
//! the trim. A power loss brings the file's stale tail (its earlier life) back, and
//! point-in-time recovery stops there as at a corrupt tail. If the next WAL file holds
//! nothing, replay ends there, and RocksDB then refuses to open when a column family's
//! flush has already moved past that file ("Column family inconsistency"), though nothing
//! acknowledged is missing. Without atomic flushes a memtable that fills flushes its own
//! column family alone, which is how the power-loss loop met this once in about 1,100
//! power losses. With them every flush covers both column families, so none moves past
//! a file another still needs.
//!
//! These tests drive RocksDB itself, on the crash filesystem, into exactly that state,
//! the same steps with and without atomic flushes: a 3 MiB WAL file A made obsolete and
//! kept for reuse; a `meta` write in the next file, B, and a flush of `log` alone (a step
//! rocklog never takes: its own flushes name both), so that `meta` pins B and the next
//! file, C, is A reused; in C `log` fills a 256 KiB memtable that RocksDB then flushes by itself;
//! the write that switched to a new file D left unsynced; a power loss once the flush is
//! done. Without atomic flushes RocksDB flushes `log` alone, moving it past C while
//! `meta` still needs B and C, and must refuse the directory (the control); with them it
//! flushes both, and every synced write must be there. That rocklog opens RocksDB with
//! atomic flushes is `rocklog_runs_rocksdb_with_atomic_flushes`.
//!
//! Needs root and `/dev/fuse` (see `tests/crashfs.rs`); CI sets `ROCKLOG_REQUIRE_FUSE=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rocklog::{Config, LogStore};
use rocklog_testkit::crashfs::{TempMount, skip_if_unavailable};
use rocklog_testkit::rocksdb_option;
use rocksdb::{ColumnFamilyDescriptor, DB, DBRecoveryMode, FlushOptions, Options, WriteBatch, WriteOptions};

const LOG: &str = "log";
const META: &str = "meta";
const VALUE: usize = 16 << 10;

fn options(atomic_flush: bool) -> (Options, Vec<ColumnFamilyDescriptor>) {
    let mut db = Options::default();
    db.create_if_missing(true);
    db.create_missing_column_families(true);
    db.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
    db.set_recycle_log_file_num(1);
    db.set_atomic_flush(atomic_flush);
    let mut log = Options::default();
    log.set_write_buffer_size(4 << 20);
    log.set_disable_auto_compactions(true);
    let meta = Options::default();
    (db, vec![ColumnFamilyDescriptor::new(LOG, log), ColumnFamilyDescriptor::new(META, meta)])
}

/// The WAL files in `dir`, oldest first.
fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
}

fn value(i: u64) -> Vec<u8> {
    vec![i.to_le_bytes()[0]; VALUE]
}

/// One write of `key → value(i)` to `log` (and a small one to `meta` with it), synced
/// if `sync`.
fn put(db: &DB, i: u64, with_meta: bool, sync: bool) {
    let mut batch = WriteBatch::default();
    batch.put_cf(&db.cf_handle(LOG).unwrap(), i.to_be_bytes(), value(i));
    if with_meta {
        batch.put_cf(&db.cf_handle(META).unwrap(), b"hard-state", i.to_be_bytes());
    }
    let mut options = WriteOptions::default();
    options.set_sync(sync);
    db.write_opt(batch, &options).unwrap();
}

fn idle(db: &DB) -> bool {
    ["rocksdb.num-running-flushes", "rocksdb.mem-table-flush-pending"]
        .iter()
        .all(|p| db.property_int_value(*p).unwrap() == Some(0))
}

/// Builds the state described in the module doc and powers off. Returns what reopening
/// the directory gives, how many `log` keys were written and synced (keys `0..n`), and
/// the mount, to be dropped after the database.
fn power_loss_after_a_reused_wal_closed(atomic_flush: bool) -> (Result<DB, rocksdb::Error>, u64, TempMount) {
    let mut mount = TempMount::new().unwrap();
    let dir = mount.fs.root().join("db");
    // RocksDB does not sync the entry of the directory it creates (rocklog does).
    std::fs::create_dir(&dir).unwrap();
    std::fs::File::open(mount.fs.root()).unwrap().sync_all().unwrap();
    let (db_opts, cfs) = options(atomic_flush);
    let db = DB::open_cf_descriptors(&db_opts, &dir, cfs).unwrap();
    let mut written = 0;
    let (log, meta) = (db.cf_handle(LOG).unwrap(), db.cf_handle(META).unwrap());
    let mut wait = FlushOptions::default();
    wait.set_wait(true);
    // WAL file A: 3 MiB of `log`, flushed; A becomes obsolete and is kept for reuse.
    for _ in 0..(3 << 20) / VALUE {
        put(&db, written, false, true);
        written += 1;
    }
    db.flush_cfs_opt(&[&log, &meta], &wait).unwrap();
    // WAL file B: a `meta` write, which pins B, then a flush of `log` alone, which
    // switches to C, a reuse of A. Nothing else is obsolete, so the next switch gets a
    // new file. (rocklog's own flushes always name both column families.)
    put(&db, written, true, true);
    written += 1;
    db.flush_cf_opt(&log, &wait).unwrap();
    let live = wal_files(&dir).pop().unwrap();
    let stale = std::fs::metadata(&live).unwrap().len();
    assert!(
        stale >= 2 << 20,
        "the live WAL {} is a reused 3 MiB file, not a new one ({stale} bytes)",
        live.display()
    );
    // `log` fills a 256 KiB memtable in C now, which RocksDB then flushes by itself.
    db.set_options_cf(&log, &[("write_buffer_size", "262144")]).unwrap();
    // Each write is synced once it is known to be in the reused file; the one that
    // switched to a new WAL file (RocksDB switches before writing it) is left unsynced,
    // in flight at the power loss, so the new file holds nothing durable.
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(30), "the 256 KiB memtable never filled");
        put(&db, written, false, false);
        if wal_files(&dir).last() != Some(&live) {
            break;
        }
        db.flush_wal(true).unwrap();
        written += 1;
    }
    while !idle(&db) {
        assert!(started.elapsed() < Duration::from_secs(30), "the flush never finished");
        std::thread::sleep(Duration::from_millis(10));
    }
    // RocksDB closes the reused file once it has synced it (on a thread of its own), and
    // trims it to its new records then, without syncing the trim; or, once both column
    // families are flushed past it, deletes it.
    while std::fs::metadata(&live).is_ok_and(|m| m.len() == stale) {
        assert!(started.elapsed() < Duration::from_secs(30), "RocksDB never trimmed the closed reused WAL");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(db);
    mount.fs.crash().unwrap();
    let (db_opts, cfs) = options(atomic_flush);
    (DB::open_cf_descriptors(&db_opts, &dir, cfs), written, mount)
}

/// The control: without atomic flushes the `log` flush moves past the reused file while
/// `meta` still needs it, and after the power loss RocksDB refuses the directory. What
/// the control shows is that this can happen, and the timing of RocksDB's own threads
/// decides whether it does: with two CPU burners and a benchmark beside it, one run in
/// eight (2026-12-05) reopened cleanly. So the steps are taken up to three times, and
/// the control holds once RocksDB refuses; three clean reopens fail it.
#[test]
fn without_atomic_flushes_a_power_loss_after_a_reused_wal_closed_refuses_the_open() {
    if skip_if_unavailable("without_atomic_flushes_a_power_loss_after_a_reused_wal_closed_refuses_the_open") {
        return;
    }
    for attempt in 1..=3 {
        let (reopened, _, mount) = power_loss_after_a_reused_wal_closed(false);
        match reopened {
            Err(err) => {
                assert!(err.to_string().contains("Column family inconsistency"), "{err}");
                drop(mount);
                return;
            }
            Ok(db) => {
                eprintln!("attempt {attempt}: RocksDB reopened this time; taking the steps again");
                drop(db);
                drop(mount);
            }
        }
    }
    panic!("RocksDB opened a directory whose column families disagree, in 3 attempts of 3");
}

/// The same steps with atomic flushes, as rocklog runs RocksDB: the open succeeds and
/// every synced write is there.
#[test]
fn with_atomic_flushes_a_power_loss_after_a_reused_wal_closed_recovers_everything() {
    if skip_if_unavailable("with_atomic_flushes_a_power_loss_after_a_reused_wal_closed_recovers_everything") {
        return;
    }
    let (reopened, written, mount) = power_loss_after_a_reused_wal_closed(true);
    let db = reopened.unwrap();
    let log = db.cf_handle(LOG).unwrap();
    for i in 0..written {
        let got = db.get_cf(&log, i.to_be_bytes()).unwrap();
        assert!(got == Some(value(i)), "log key {i} of {written}: {:?} bytes", got.map(|v| v.len()));
    }
    let meta = db.get_cf(&db.cf_handle(META).unwrap(), b"hard-state").unwrap();
    assert!(meta.is_some(), "the synced meta write survived");
    drop(db);
    drop(mount);
}

/// rocklog opens RocksDB with atomic flushes, as RocksDB itself records (`OPTIONS-*`).
#[test]
fn rocklog_runs_rocksdb_with_atomic_flushes() {
    let dir = tempfile::tempdir().unwrap();
    drop(LogStore::start(Config::new(dir.path())).unwrap());
    assert_eq!(rocksdb_option(dir.path(), "DBOptions", "atomic_flush").as_deref(), Some("true"));
}
