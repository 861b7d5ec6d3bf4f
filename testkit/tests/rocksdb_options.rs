//! Options rocklog sets through RocksDB's option parser or changes while running, as
//! RocksDB itself records them (`OPTIONS-*`): memtable insert hints per group on the
//! `log` column family, and blob garbage collection off at open unless
//! `blob_gc_garbage_percent` is 0; no random-access advice on SST and blob files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rocklog::{Config, LogStore};
use rocklog_testkit::rocksdb_option;

const DB: &str = "DBOptions";
const LOG: &str = "CFOptions \"log\"";
const META: &str = "CFOptions \"meta\"";

#[test]
fn the_log_memtable_takes_insert_hints_per_group() {
    let dir = tempfile::tempdir().unwrap();
    drop(LogStore::start(Config::new(dir.path())).unwrap());
    let hint = "memtable_insert_with_hint_prefix_extractor";
    // A log key is group (8 bytes) ‖ index: the hint is kept per group.
    assert_eq!(rocksdb_option(dir.path(), LOG, hint).as_deref(), Some("rocksdb.FixedPrefix.8"));
    // The control: `meta` (keys of another shape) has none, so the lookup tells them apart.
    assert_eq!(rocksdb_option(dir.path(), META, hint).as_deref(), Some("nullptr"));
}

#[test]
fn blob_gc_starts_off_unless_always_on_is_asked() {
    let gc = |dir: &std::path::Path| {
        ["enable_blob_garbage_collection", "blob_garbage_collection_force_threshold"]
            .map(|name| rocksdb_option(dir, LOG, name).unwrap_or_default())
    };
    let default = tempfile::tempdir().unwrap();
    drop(LogStore::start(Config::new(default.path())).unwrap());
    assert_eq!(gc(default.path()), ["false", "0.250000"]);

    let always = tempfile::tempdir().unwrap();
    drop(LogStore::start(Config { blob_gc_garbage_percent: 0, ..Config::new(always.path()) }).unwrap());
    assert_eq!(gc(always.path()), ["true", "1.000000"]);

    // Without blob files there is nothing to collect, whatever the threshold.
    let none = tempfile::tempdir().unwrap();
    drop(
        LogStore::start(Config { blob_min_size: rocklog::ByteSize(0), ..Config::new(none.path()) }).unwrap(),
    );
    assert_eq!(rocksdb_option(none.path(), LOG, "enable_blob_files").as_deref(), Some("false"));
}

#[test]
fn sst_and_blob_files_are_not_advised_random() {
    let dir = tempfile::tempdir().unwrap();
    drop(LogStore::start(Config::new(dir.path())).unwrap());
    // RocksDB's default (true) fadvises every SST and blob file random, which turns off the
    // kernel's readahead for a range read of blob-stored entries (docs/benchmarks.md).
    assert_eq!(rocksdb_option(dir.path(), DB, "advise_random_on_open").as_deref(), Some("false"));
    // The control: a DB option rocklog turns on when creating reads back as "true", so
    // the lookup tells the two values apart.
    assert_eq!(rocksdb_option(dir.path(), DB, "create_missing_column_families").as_deref(), Some("true"));
}
