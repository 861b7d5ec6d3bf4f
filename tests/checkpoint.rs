//! `LogStore::checkpoint`: a live copy holds every entry acknowledged before it started,
//! has no holes, passes `check`, opens as a normal directory, and bad destinations are
//! refused with nothing written. The other-filesystem, power-loss and full-disk cases are
//! in `testkit/tests/checkpoint_fs.rs` (they need the crash filesystem).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::cast_possible_truncation)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rocklog::offline::OfflineLog;
use rocklog::{Config, CopyMethod, Entry, Error, HardState, LogStore};

const GROUPS: u64 = 8;

/// The payload of entry `index` of `group`: every copy can be checked byte for byte.
fn payload(group: u64, index: u64) -> Vec<u8> {
    format!("group {group} entry {index} ").repeat(8).into_bytes()
}

fn entries(group: u64, range: std::ops::Range<u64>) -> Vec<Entry> {
    range.map(|i| Entry::new(i, 1, payload(group, i))).collect()
}

/// Every group of the copy at `dest` holds 1..=last, each entry as written, with
/// `last >= acked[group]`; returns the entries counted.
fn assert_whole(dest: &std::path::Path, acked: &[u64]) -> u64 {
    let copy = OfflineLog::open(dest).unwrap();
    let report = copy.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    let mut total = 0;
    for g in copy.groups().unwrap() {
        let last = g.log.last_index().unwrap_or(0);
        assert!(
            last >= acked[g.id as usize],
            "group {}: {last} < {} acknowledged",
            g.id,
            acked[g.id as usize]
        );
        let read: Vec<Entry> = copy.entries(g.id, ..).unwrap().map(Result::unwrap).collect();
        assert_eq!(read, entries(g.id, 1..last + 1), "group {}: no hole, every byte as written", g.id);
        total += read.len() as u64;
    }
    total
}

#[test]
fn a_checkpoint_under_load_holds_every_entry_acknowledged_before_it() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("copy");
    let mut config = Config::new(src.path());
    config.write_buffer_size = rocklog::ByteSize::kib(256);
    let store = LogStore::start(config).unwrap();
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..GROUPS).map(|_| AtomicU64::new(0)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let writers: Vec<_> = (0..GROUPS)
        .map(|g| {
            let (store, acked, stop) = (store.clone(), Arc::clone(&acked), Arc::clone(&stop));
            rt.spawn(async move {
                let group = store.group(g);
                let mut next = 1;
                while !stop.load(Ordering::Relaxed) {
                    group.append(&entries(g, next..next + 4)).await.unwrap();
                    next += 4;
                    acked[g as usize].store(next - 1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    // Let the load build up (flushes included), then copy while it runs.
    while acked.iter().map(|a| a.load(Ordering::SeqCst)).sum::<u64>() < 4000 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    let report = store.checkpoint(&dest).unwrap();
    let during: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        rt.block_on(w).unwrap();
    }
    assert_eq!(report.method, CopyMethod::HardLinks, "same filesystem");
    assert_eq!(report.groups, GROUPS);
    assert!(report.bytes > 0, "{report:?}");
    let copied = assert_whole(&dest, &before);
    assert_eq!(copied, report.entries, "the report counts what the copy holds");
    // At most one append per group was written but not yet acknowledged when it returned.
    assert!(copied <= during.iter().sum::<u64>() + 4 * GROUPS, "no entry from the future: {copied}");
    assert!(
        acked.iter().map(|a| a.load(Ordering::SeqCst)).sum::<u64>() > during.iter().sum::<u64>(),
        "appends went on after the checkpoint"
    );

    // The copy opens as a normal engine and takes writes; the source is untouched by it.
    rt.block_on(store.shutdown()).unwrap();
    drop(store);
    let copy = LogStore::start(Config::new(&dest)).unwrap();
    let last = copy.group(0).last_index().unwrap().unwrap();
    rt.block_on(copy.group(0).append(&entries(0, last + 1..last + 2))).unwrap();
    rt.block_on(copy.shutdown()).unwrap();
    let source = OfflineLog::open(src.path()).unwrap();
    let final_acked: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    for g in source.groups().unwrap() {
        assert_eq!(g.log.last_index(), Some(final_acked[g.id as usize]), "the source has its own history");
    }
}

/// A file's paths and contents under `dir`, to show a refused checkpoint changed nothing.
fn tree(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(tree(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn bad_destinations_are_refused_and_nothing_is_written() {
    let src = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let store = LogStore::start(Config::new(src.path())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(store.group(1).append(&entries(1, 1..11))).unwrap();
    rt.block_on(store.group(1).save_hard_state(HardState { term: 1, vote: Some(1), commit: 10 })).unwrap();

    // A non-empty directory: refused, its file untouched.
    let full = out.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep.txt"), b"mine").unwrap();
    let before = tree(out.path());
    let e = store.checkpoint(&full).unwrap_err();
    assert!(matches!(&e, Error::DestinationExists { path } if path == &full), "{e:?}");
    assert!(e.is_bad_input());
    // A file.
    let file = out.path().join("file");
    std::fs::write(&file, b"a file").unwrap();
    let before_file = tree(out.path());
    assert!(matches!(store.checkpoint(&file), Err(Error::DestinationExists { .. })));
    assert_eq!(tree(out.path()), before_file);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(tree(out.path()), before, "nothing written anywhere");
    // Inside the engine's own directory, and a directory holding it.
    let inside = src.path().join("copy");
    assert!(matches!(store.checkpoint(&inside), Err(Error::InvalidConfig(_))));
    assert!(!inside.exists());
    assert!(matches!(
        store.checkpoint(src.path()),
        Err(Error::DestinationExists { .. } | Error::InvalidConfig(_))
    ));
    // A missing parent.
    let orphan = out.path().join("no/such/parent");
    let e = store.checkpoint(&orphan).unwrap_err();
    assert!(matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound), "{e:?}");
    assert!(!out.path().join("no").exists());
    // A staging directory left by an earlier attempt is not silently reused.
    let staged = out.path().join("staged");
    std::fs::create_dir(out.path().join("staged.tmp")).unwrap();
    assert!(matches!(store.checkpoint(&staged), Err(Error::DestinationExists { .. })));
    assert!(!staged.exists());
    assert_eq!(tree(out.path()), before);

    // An existing empty directory is fine, and the refused attempts harmed nothing.
    let empty = out.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let report = store.checkpoint(&empty).unwrap();
    assert_eq!((report.groups, report.entries), (1, 10));
    rt.block_on(store.shutdown()).unwrap();
    // After shutdown the engine cannot be copied (it is closed); `rocklog backup` can.
    assert!(matches!(store.checkpoint(out.path().join("late")), Err(Error::Closed)));
    drop(store);
    let copy = LogStore::start(Config::new(&empty)).unwrap();
    assert_eq!(copy.group(1).entries(.., None).unwrap(), entries(1, 1..11));
    assert_eq!(copy.group(1).hard_state().unwrap(), Some(HardState { term: 1, vote: Some(1), commit: 10 }));
    rt.block_on(copy.shutdown()).unwrap();
}
