//! `Config::sst_direct_io`: by default flushes and compactions bypass the page cache
//! where the data directory's filesystem allows it, and fall back to buffered I/O where it
//! does not; turned off, they go through the page cache.
//!
//! Whether RocksDB really runs with direct I/O is read from the options file it writes
//! at every open (`OPTIONS-*`, `use_direct_io_for_flush_and_compaction`), after flushes
//! and a compaction have written SST files through it.
//!
//! The first test needs root and `/dev/fuse` (see `tests/crashfs.rs`); CI sets
//! `ROCKLOG_REQUIRE_FUSE=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rocklog::{ByteSize, Config, Entry, LogStore};
use rocklog_testkit::crashfs::{TempMount, skip_if_unavailable};
use rocklog_testkit::rocksdb_option;

const GROUPS: u64 = 4;
const ENTRIES: u64 = 400;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The byte every payload byte of group `g`'s entry `i` is.
fn byte(g: u64, i: u64) -> u8 {
    (g + i).to_le_bytes()[0]
}

/// Opens `config`, appends `ENTRIES` 1 KiB entries to each of `GROUPS` groups through
/// 64 KiB memtables (many flushes, and compactions of them), reopens and reads every entry
/// back. Returns RocksDB's recorded `use_direct_io_for_flush_and_compaction`.
fn fill_and_read_back(mut config: Config) -> String {
    config.write_buffer_size = ByteSize::kib(64);
    let rt = runtime();
    let (store, writer) = LogStore::open(config.clone()).unwrap();
    let running = rt.spawn(writer.run());
    rt.block_on(async {
        for chunk in (1..=ENTRIES).collect::<Vec<_>>().chunks(50) {
            for g in 0..GROUPS {
                let entries: Vec<Entry> =
                    chunk.iter().map(|&i| Entry::new(i, 1, vec![byte(g, i); 1024])).collect();
                store.group(g).append(&entries).await.unwrap();
            }
        }
        let stats = store.storage_stats();
        assert!(stats.flush_bytes > 0, "the fill flushed SST files: {stats:?}");
        store.shutdown().await.unwrap();
    });
    rt.block_on(running).unwrap().unwrap();

    let (store, writer) = LogStore::open(config.clone()).unwrap();
    let running = rt.spawn(writer.run());
    for g in 0..GROUPS {
        let got = store.group(g).entries(1..=ENTRIES, None).unwrap();
        assert_eq!(got.len() as u64, ENTRIES, "group {g}");
        for e in got {
            assert_eq!(e.payload.as_ref(), vec![byte(g, e.index); 1024], "group {g} entry {}", e.index);
        }
    }
    rt.block_on(store.shutdown()).unwrap();
    rt.block_on(running).unwrap().unwrap();
    rocksdb_option(&config.path, "DBOptions", "use_direct_io_for_flush_and_compaction")
        .expect("RocksDB recorded the option")
}

/// On by default and in effect on the project's own disk (ext4 on this class of machine);
/// off when turned off.
#[test]
fn flushes_and_compactions_use_direct_io_unless_turned_off() {
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    assert_eq!(fill_and_read_back(Config::new(base.path().join("default"))), "true");
    let off = Config { sst_direct_io: false, ..Config::new(base.path().join("off")) };
    assert_eq!(fill_and_read_back(off), "false");
}

/// A filesystem that refuses `O_DIRECT` (older tmpfs, some FUSE filesystems; here the
/// crash filesystem told to): the engine falls back to buffered I/O instead of failing
/// its first flush, which would stop every write.
#[test]
fn a_filesystem_without_direct_io_gets_buffered_io() {
    if skip_if_unavailable("a_filesystem_without_direct_io_gets_buffered_io") {
        return;
    }
    let mount = TempMount::new().unwrap();
    mount.fs.refuse_direct_io(true);
    let store = mount.fs.root().join("store");
    assert_eq!(fill_and_read_back(Config { sst_direct_io: true, ..Config::new(&store) }), "false");
    assert!(!store.join("ROCKLOG-DIRECT-IO-PROBE").exists(), "the probe file is removed");
}

/// The crash filesystem takes direct I/O, so the power-loss loop runs with it, as the
/// defaults have it: its flushes and compactions write SST files with `O_DIRECT`.
#[test]
fn the_crash_filesystem_takes_direct_io() {
    if skip_if_unavailable("the_crash_filesystem_takes_direct_io") {
        return;
    }
    let mount = TempMount::new().unwrap();
    let config = Config { sst_direct_io: true, ..Config::new(mount.fs.root().join("store")) };
    assert_eq!(fill_and_read_back(config), "true");
}

/// `sst_io_size` reaches RocksDB (its `writable_file_max_buffer_size` and
/// `compaction_readahead_size`, 256 KiB by default against RocksDB's 1 MiB and 2 MiB), and
/// flushes and compactions through direct I/O in the smallest requests allowed keep every
/// entry.
#[test]
fn sst_io_size_reaches_rocksdb_and_small_requests_keep_every_entry() {
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let options = |dir: &std::path::Path| {
        ["writable_file_max_buffer_size", "compaction_readahead_size"]
            .map(|name| rocksdb_option(dir, "DBOptions", name).unwrap_or_default())
    };
    let small = base.path().join("small");
    assert_eq!(fill_and_read_back(Config { sst_io_size: ByteSize::kib(64), ..Config::new(&small) }), "true");
    assert_eq!(options(&small), ["65536", "65536"]);
    let default = base.path().join("default");
    drop(LogStore::start(Config::new(&default)).unwrap());
    assert_eq!(options(&default), ["262144", "262144"]);
}
