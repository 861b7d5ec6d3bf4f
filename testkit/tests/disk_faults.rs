//! The poison path on a disk that really fails, not on an injected seam: the crash
//! filesystem answers the engine's own fsync with EIO, or its writes with ENOSPC. The batch
//! that met the failure fails with `WriteFailed`, every later write with `Poisoned`, reads
//! go on, and after a power loss and a reopen everything acknowledged before the failure is
//! there, and the engine writes again.
//!
//! Needs root and `/dev/fuse` (see `tests/crashfs.rs`); CI sets `ROCKLOG_REQUIRE_FUSE=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use rocklog::{Config, Entry, Error, HardState, LogStore};
use rocklog_testkit::crashfs::{CrashFs, TempMount, skip_if_unavailable};

fn db(mnt: &TempMount) -> PathBuf {
    mnt.fs.root().join("db")
}

fn ents(range: std::ops::Range<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| Entry::new(i, term, format!("entry {i} of term {term}"))).collect()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Appends 1..=10 and a hard state (all acknowledged), then lets `fault` arm a failure and
/// checks the failing append, the poison, the reads, and what a power loss leaves.
fn poison_case(name: &str, fault: impl FnOnce(&CrashFs), clear: impl FnOnce(&CrashFs)) {
    if skip_if_unavailable(name) {
        return;
    }
    let rt = runtime();
    let mut mnt = TempMount::new().unwrap();
    let store = LogStore::start(Config::new(db(&mnt))).unwrap();
    let g = store.group(1);
    rt.block_on(g.append(&ents(1..11, 1))).unwrap();
    rt.block_on(g.save_hard_state(HardState { term: 1, vote: Some(1), commit: 10 })).unwrap();

    fault(&mnt.fs);
    let failed = rt.block_on(g.append(&ents(11..12, 1)));
    assert!(matches!(failed, Err(Error::WriteFailed(_))), "{name}: the failing batch: {failed:?}");
    let later = rt.block_on(g.append(&ents(11..12, 1)));
    assert!(matches!(later, Err(Error::Poisoned(_))), "{name}: a later write: {later:?}");
    assert!(matches!(rt.block_on(store.flush()), Err(Error::Poisoned(_))), "{name}: flush");
    assert!(store.is_poisoned());
    assert_eq!(g.entries(.., None).unwrap(), ents(1..11, 1), "{name}: reads go on");

    clear(&mnt.fs);
    rt.block_on(store.shutdown()).unwrap();
    drop(store);
    mnt.fs.crash().unwrap();

    let store = LogStore::start(Config::new(db(&mnt))).unwrap();
    let g = store.group(1);
    let found = g.entries(.., None).unwrap();
    assert!(found.len() >= 10, "{name}: lost acknowledged entries: {} left", found.len());
    assert_eq!(found[..10], ents(1..11, 1)[..], "{name}: the acknowledged entries");
    assert_eq!(g.hard_state().unwrap(), Some(HardState { term: 1, vote: Some(1), commit: 10 }));
    // Reopened, the engine is not poisoned: it writes again, durably.
    let next = g.last_index().unwrap().unwrap() + 1;
    rt.block_on(g.append(&ents(next..next + 1, 2))).unwrap();
    rt.block_on(store.shutdown()).unwrap();
    drop(store);
    mnt.fs.crash().unwrap();
    let store = LogStore::start(Config::new(db(&mnt))).unwrap();
    assert_eq!(store.group(1).last_index().unwrap(), Some(next), "{name}: the write after reopening");
    rt.block_on(store.shutdown()).unwrap();
}

#[test]
fn a_failed_fsync_poisons_and_a_reopen_loses_nothing_acknowledged() {
    poison_case(
        "a_failed_fsync_poisons_and_a_reopen_loses_nothing_acknowledged",
        |fs| fs.fail_fsyncs(1),
        |_| {},
    );
}

#[test]
fn a_full_disk_poisons_and_a_reopen_loses_nothing_acknowledged() {
    poison_case(
        "a_full_disk_poisons_and_a_reopen_loses_nothing_acknowledged",
        |fs| fs.fail_writes_enospc(true),
        |fs| fs.fail_writes_enospc(false),
    );
}
