//! Options rocklog sets through RocksDB's option parser, as RocksDB itself records them
//! (`OPTIONS-*`): memtable insert hints per group on the `log` column family.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rocklog::{Config, LogStore};
use rocklog_testkit::rocksdb_option;

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
