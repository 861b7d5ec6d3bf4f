//! `LogStore::checkpoint` where a filesystem matters, on the crash filesystem: a copy onto
//! another filesystem is copied (hard links are impossible) and one on the same
//! filesystem is linked, and either survives a power loss right after it returned; too
//! little room is refused before anything is written, and a disk filling up during the
//! copy leaves nothing behind.
//!
//! Needs root and `/dev/fuse` (see `tests/crashfs.rs`); CI sets `ROCKLOG_REQUIRE_FUSE=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use rocklog::offline::OfflineLog;
use rocklog::{ByteSize, Config, CopyMethod, Entry, Error, LogStore};
use rocklog_testkit::crashfs::{TempMount, skip_if_unavailable};

const GROUPS: u64 = 6;
const ENTRIES: u64 = 300;

/// 700 pseudo-random (incompressible) bytes per entry, so file sizes are the data's.
fn entries(group: u64, range: std::ops::Range<u64>) -> Vec<Entry> {
    range.map(|i| Entry::new(i, 1, rocklog_testkit::noise(group << 32 | i, 700))).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// An engine at `path` holding `GROUPS` groups of `ENTRIES` ~700-byte entries, through
/// 256 KiB memtables: SST files, and a WAL holding the last of them.
fn filled(path: &Path) -> LogStore {
    let mut config = Config::new(path);
    config.write_buffer_size = ByteSize::kib(256);
    let store = LogStore::start(config).unwrap();
    let rt = runtime();
    for g in 0..GROUPS {
        for first in (1..=ENTRIES).step_by(50) {
            rt.block_on(store.group(g).append(&entries(g, first..first + 50))).unwrap();
        }
    }
    store
}

/// The copy at `dest` holds every group whole, as written.
fn assert_whole(dest: &Path) {
    let copy = OfflineLog::open(dest).unwrap();
    let report = copy.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!((report.groups, report.entries), (GROUPS, GROUPS * ENTRIES));
    for g in 0..GROUPS {
        let read: Vec<Entry> = copy.entries(g, ..).unwrap().map(Result::unwrap).collect();
        assert_eq!(read, entries(g, 1..ENTRIES + 1), "group {g}");
    }
}

/// A file written without fsync is gone after `crash`: the power loss in these tests is
/// real, so what survives it was made durable.
fn assert_crash_drops_unsynced(mnt: &mut TempMount) {
    let probe = mnt.fs.root().join("unsynced-probe");
    std::fs::write(&probe, b"not synced").unwrap();
    mnt.fs.crash().unwrap();
    assert!(!probe.exists(), "the crash filesystem kept an unsynced file: the test would prove nothing");
}

#[test]
fn a_copy_onto_another_filesystem_is_copied_and_survives_a_power_loss() {
    if skip_if_unavailable("a_copy_onto_another_filesystem_is_copied_and_survives_a_power_loss") {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let store = filled(src.path());
    let mut mnt = TempMount::new().unwrap();
    let dest = mnt.fs.root().join("copy");
    let report = store.checkpoint(&dest).unwrap();
    assert_eq!(report.method, CopyMethod::Copied, "another filesystem: hard links are impossible");
    assert_eq!((report.groups, report.entries), (GROUPS, GROUPS * ENTRIES));
    runtime().block_on(store.shutdown()).unwrap();

    assert_crash_drops_unsynced(&mut mnt);
    assert_whole(&dest);
    assert!(!mnt.fs.root().join("copy.tmp").exists(), "no staging directory left");
}

#[test]
fn a_checkpoint_on_the_same_filesystem_is_linked_and_survives_a_power_loss() {
    if skip_if_unavailable("a_checkpoint_on_the_same_filesystem_is_linked_and_survives_a_power_loss") {
        return;
    }
    let mut mnt = TempMount::new().unwrap();
    let src = mnt.fs.root().join("db");
    let dest = mnt.fs.root().join("copy");
    let store = filled(&src);
    let report = store.checkpoint(&dest).unwrap();
    assert_eq!(report.method, CopyMethod::HardLinks);
    runtime().block_on(store.shutdown()).unwrap();
    drop(store);

    assert_crash_drops_unsynced(&mut mnt);
    assert_whole(&dest);
    // The source lost nothing either, and the copy opens as an engine.
    assert_whole(&src);
    let copy = LogStore::start(Config::new(&dest)).unwrap();
    assert_eq!(copy.group(0).last_index().unwrap(), Some(ENTRIES));
    runtime().block_on(copy.shutdown()).unwrap();
}

#[test]
fn too_little_room_is_refused_before_anything_is_written() {
    if skip_if_unavailable("too_little_room_is_refused_before_anything_is_written") {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let store = filled(src.path());
    let mnt = TempMount::new().unwrap();
    let dest = mnt.fs.root().join("copy");
    // Once flushes and compactions are done, the files hold still (the free space of the
    // source's filesystem need not: other tests write there).
    let files = |s: &rocklog::StorageState| (s.sst_bytes, s.wal_bytes, s.memtable_bytes);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let need = loop {
        let s = store.storage_state().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let idle = s.running_flushes + s.running_compactions == 0;
        if idle && files(&store.storage_state().unwrap()) == files(&s) || std::time::Instant::now() > deadline
        {
            break s;
        }
    };
    // Room for what linking needs (the WAL and an 8 MiB margin), not for the SST files a
    // copy across filesystems needs on top.
    assert!(need.sst_bytes > 512 << 10, "{need:?}");
    mnt.fs.report_free_bytes(Some(need.wal_bytes + (8 << 20) + need.sst_bytes / 2));
    let writes_before = mnt.fs.counters();
    let e = store.checkpoint(&dest).unwrap_err();
    match &e {
        Error::NoSpace { path, needed, available } => {
            assert_eq!(path, &dest);
            assert!(needed > available && *needed >= need.sst_bytes + need.wal_bytes, "{e}");
        }
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert!(e.is_bad_input());
    assert_eq!(std::fs::read_dir(mnt.fs.root()).unwrap().count(), 0, "nothing written");
    assert_eq!(mnt.fs.counters(), writes_before, "not a single write reached the filesystem");

    // Control: with the room, the same checkpoint goes through.
    mnt.fs.report_free_bytes(None);
    assert_eq!(store.checkpoint(&dest).unwrap().method, CopyMethod::Copied);
    runtime().block_on(store.shutdown()).unwrap();
}

#[test]
fn a_disk_filling_up_during_the_copy_leaves_nothing_behind() {
    if skip_if_unavailable("a_disk_filling_up_during_the_copy_leaves_nothing_behind") {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let store = filled(src.path());
    let mnt = TempMount::new().unwrap();
    let dest = mnt.fs.root().join("copy");
    // statfs says there is room; the writes say otherwise.
    mnt.fs.fail_writes_enospc(true);
    let e = store.checkpoint(&dest).unwrap_err();
    assert!(matches!(e, Error::Storage(_)), "{e:?}");
    assert!(e.to_string().contains("No space left"), "{e}");
    assert_eq!(
        std::fs::read_dir(mnt.fs.root()).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>(),
        Vec::<std::ffi::OsString>::new(),
        "neither the copy nor RocksDB's staging directory is left"
    );
    // The engine is unharmed: it writes, and once there is room the copy is made.
    let rt = runtime();
    rt.block_on(store.group(0).append(&entries(0, ENTRIES + 1..ENTRIES + 2))).unwrap();
    mnt.fs.fail_writes_enospc(false);
    let report = store.checkpoint(&dest).unwrap();
    assert_eq!(report.entries, GROUPS * ENTRIES + 1);
    rt.block_on(store.shutdown()).unwrap();
}
