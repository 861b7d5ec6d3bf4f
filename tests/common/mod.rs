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
