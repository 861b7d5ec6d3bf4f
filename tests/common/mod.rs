//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rocklog::{Config, Entry, LogStore};

/// Opens an engine on `dir` with default settings and its writer on its own thread.
pub fn open(dir: &Path) -> LogStore {
    LogStore::start(Config::new(dir)).expect("open engine")
}

/// What a power loss right now leaves of a directory whose every acknowledged write was
/// fsynced: a copy of its files, in a new temporary directory.
pub fn crash_image(dir: &Path) -> tempfile::TempDir {
    let image = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, image.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    image
}

/// Entries `range` in `term`, each with a payload naming its index and term.
pub fn ents(range: Range<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| Entry::new(i, term, format!("entry {i} of term {term}"))).collect()
}

/// Entries `range` in `term` of 64 KiB each (payload bytes derived from the index): a
/// few of them fill a 1 MiB memtable ([`wal_switching`]).
pub fn large(range: Range<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| Entry::new(i, term, vec![(i % 251) as u8; 64 << 10])).collect()
}

/// A 1 MiB memtable, so that a few MiB of appends switch WAL files several times, and
/// no WAL file reused (`wal_recycle_files = 0`), so that each is new: the WAL tests start
/// from this and set what they test.
pub fn wal_switching(dir: &Path) -> Config {
    Config { write_buffer_size: rocklog::ByteSize::mib(1), wal_recycle_files: 0, ..Config::new(dir) }
}

/// The (index, term) pairs of a group's whole log.
pub fn ids(store: &LogStore, group: u64) -> Vec<(u64, u64)> {
    store.group(group).entries(.., None).unwrap().iter().map(|e| (e.index, e.term)).collect()
}

/// Every entry of every group, with payloads, for "nothing changed" comparisons.
pub fn snapshot(store: &LogStore) -> Vec<(u64, rocklog::LogState, Option<rocklog::HardState>, Vec<Entry>)> {
    store
        .groups()
        .into_iter()
        .map(|g| {
            let group = store.group(g);
            (g, group.log_state().unwrap(), group.hard_state().unwrap(), group.entries(.., None).unwrap())
        })
        .collect()
}

/// An append's tag and the outcome its callback heard.
pub type Seen = (u64, Result<(), String>);

/// Collects the outcomes the writer reports, tagged with the append they belong to.
#[derive(Clone, Default)]
pub struct Outcomes(Arc<Mutex<Vec<Seen>>>);

impl Outcomes {
    pub fn callback(&self, tag: u64) -> impl FnOnce(rocklog::Result<()>) + Send + 'static {
        let seen = Arc::clone(&self.0);
        move |r| seen.lock().unwrap().push((tag, r.map_err(|e| e.to_string())))
    }
    pub fn get(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

/// Takes 12 checkpoints of `store` into `copies/copy-N`, 30 ms apart, while a task calls
/// `write(store, round)` for rounds 0, 1, ... in the background; then keeps writing until
/// `done` holds of the store (at most 10 s). Asserts that every checkpoint succeeded and
/// that `done` held; returns the copies, in order.
pub async fn checkpoints_while_writing<W, F>(
    store: &LogStore,
    copies: &Path,
    write: W,
    done: impl Fn(&LogStore) -> bool,
) -> Vec<std::path::PathBuf>
where
    W: Fn(LogStore, u64) -> F + Send + 'static,
    F: std::future::Future<Output = ()> + Send,
{
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut round = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                write(store.clone(), round).await;
                round += 1;
            }
        })
    };
    let mut taken = Vec::new();
    let mut failed = None;
    for n in 0..12 {
        let store = store.clone();
        let dest = copies.join(format!("copy-{n}"));
        let copy = dest.clone();
        let report = tokio::task::spawn_blocking(move || store.checkpoint(&dest)).await.unwrap();
        if let Err(e) = report {
            failed = Some((n, e));
            break;
        }
        taken.push(copy);
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while failed.is_none() && !done(store) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The writer stops before any assertion: a test that panicked with it still running
    // would remove the data directory under a live engine, and its next WAL switch would
    // fail with "No such file or directory: while reopen file for write", a second error
    // that has nothing to do with the first (docs/reliability.md).
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    if let Some((n, e)) = failed {
        panic!("checkpoint {n} failed: {e:?}");
    }
    assert!(done(store), "not done within 10 s: {:?}", store.stats());
    taken
}

/// Opens each copy with `config`, asserts it opens, runs `check(n, store)` on it and
/// shuts it down.
pub async fn check_each_copy(
    copies: &[std::path::PathBuf],
    config: impl Fn(&Path) -> Config,
    check: impl Fn(usize, &LogStore),
) {
    for (n, copy) in copies.iter().enumerate() {
        let opened = LogStore::start(config(copy));
        assert!(opened.is_ok(), "copy {n} no longer opens: {:?}", opened.err());
        let opened = opened.unwrap();
        check(n, &opened);
        opened.shutdown().await.unwrap();
    }
}
