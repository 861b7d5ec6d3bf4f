//! The compaction settings of `Config` (`l0_compaction_trigger`, `level_base_size`) reach
//! RocksDB's `log` column family, as RocksDB itself records them in the options file it
//! writes at every open, and only that column family. What they buy is measured by
//! `rocklog bench` (tuning guide in `docs/benchmarks.md`), not asserted here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use rocklog::{ByteSize, Config, LogStore};
use rocklog_testkit::rocksdb_option;

/// The value RocksDB recorded for `name` in column family `cf`.
fn cf_option(dir: &Path, cf: &str, name: &str) -> Option<String> {
    rocksdb_option(dir, &format!("CFOptions \"{cf}\""), name)
}

fn opened(config: Config) -> (String, String, String) {
    let dir = config.path.clone();
    drop(LogStore::start(config).unwrap());
    (
        cf_option(&dir, "log", "level0_file_num_compaction_trigger").unwrap(),
        cf_option(&dir, "log", "max_bytes_for_level_base").unwrap(),
        cf_option(&dir, "meta", "level0_file_num_compaction_trigger").unwrap(),
    )
}

#[test]
fn the_defaults_reach_the_log_column_family_only() {
    let dir = tempfile::tempdir().unwrap();
    let (trigger, base, meta_trigger) = opened(Config::new(dir.path()));
    assert_eq!(trigger, "8");
    assert_eq!(base, (4u64 << 30).to_string());
    // Control: the small `meta` column family keeps RocksDB's own default, so the reader
    // above does tell the column families apart.
    assert_eq!(meta_trigger, "4");
}

#[test]
fn configured_values_reach_rocksdb_and_a_reopen_applies_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.l0_compaction_trigger = 3;
    config.level_base_size = ByteSize::mib(512);
    assert_eq!(opened(config.clone()).0, "3");
    assert_eq!(cf_option(dir.path(), "log", "max_bytes_for_level_base").unwrap(), (512u64 << 20).to_string());
    config.l0_compaction_trigger = 16;
    assert_eq!(opened(config).0, "16");
}

#[test]
fn out_of_range_values_are_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never");
    for config in [
        Config { l0_compaction_trigger: 0, ..Config::new(&path) },
        Config { l0_compaction_trigger: 17, ..Config::new(&path) },
        Config { level_base_size: ByteSize::kib(512), ..Config::new(&path) },
    ] {
        let result = LogStore::start(config);
        assert!(matches!(result, Err(rocklog::Error::InvalidConfig(_))), "{:?}", result.err());
    }
    assert!(!path.exists(), "a refused config created the directory");
}
