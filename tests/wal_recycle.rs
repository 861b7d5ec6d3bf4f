//! WAL recycling (`Config::wal_recycle_files`, two files by default): RocksDB reuses
//! obsolete WAL files instead of creating new ones, and a crash image whose live WAL is a
//! reused file (new records, then the stale records of the file's earlier life) recovers
//! exactly what was acknowledged. What a power loss does to a closed reused WAL, and why
//! atomic flushes make it safe, is `testkit/tests/recycled_wal.rs` and the power-loss
//! loop; what recycling buys is measured by `rocklog bench` (tuning guide in
//! `docs/benchmarks.md`), not asserted here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::large;
use rocklog::{Config, LogId, LogStore};

/// [`common::wal_switching`] with `recycle` WAL files kept for reuse: a few MiB of
/// appends switch WAL files many times and make the old ones obsolete.
fn config(dir: &Path, recycle: usize) -> Config {
    Config { wal_recycle_files: recycle, ..common::wal_switching(dir) }
}

/// How many times RocksDB's info log says it reused a WAL file in this open.
fn reuses(dir: &Path) -> usize {
    let log = std::fs::read_to_string(dir.join("LOG")).unwrap();
    log.matches(" from recycle list").count()
}

/// The WAL files in `dir` by file (inode and creation time: a filesystem hands a deleted
/// file's inode number to a new file), with the number each was first seen under: a
/// reused WAL is the same file under a new number.
#[derive(Default)]
struct Seen(HashMap<(u64, std::time::SystemTime), u64>);

impl Seen {
    /// Records the WAL files now in `dir`; returns the newest one and whether it is a
    /// reused file (its inode was seen before under an older number).
    fn look(&mut self, dir: &Path) -> (PathBuf, bool) {
        let mut newest: Option<(u64, PathBuf, bool)> = None;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let Some(number) = path
                .extension()
                .filter(|x| *x == "log")
                .and_then(|_| path.file_stem()?.to_str()?.parse::<u64>().ok())
            else {
                continue;
            };
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            let born = meta.created().expect("file creation times (statx) on this filesystem");
            let first = *self.0.entry((meta.ino(), born)).or_insert(number);
            if newest.as_ref().is_none_or(|(n, ..)| number > *n) {
                newest = Some((number, path, first < number));
            }
        }
        let (_, path, reused) = newest.expect("a WAL file");
        (path, reused)
    }
}

/// About 24 MiB in three groups, in rounds, each group purged or truncated after each
/// round: the records of a reused WAL's earlier life hold entries that no longer exist.
async fn churn(store: &LogStore, seen: &mut Seen) {
    let mut next = [1u64; 3];
    for round in 0..8u64 {
        for (g, next) in next.iter_mut().enumerate() {
            let group = store.group(g as u64 + 1);
            group.append(&large(*next..*next + 16, round + 1)).await.unwrap();
            seen.look(&store.config().path);
            *next += 16;
            match g {
                0 => group.purge(LogId::new(round + 1, *next - 4)).await.unwrap(),
                1 => {
                    // Drop the last 4 entries; the next round rewrites them with a new term.
                    group.truncate(*next - 4).await.unwrap();
                    *next -= 4;
                }
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obsolete_wal_files_are_reused_by_default() {
    assert_eq!(Config::default().wal_recycle_files, 2);
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(config(dir.path(), Config::default().wal_recycle_files)).unwrap();
    let mut seen = Seen::default();
    churn(&store, &mut seen).await;
    let reused = reuses(dir.path());
    assert!(reused >= 3, "RocksDB reused {reused} WAL files over about 24 memtable switches");
    store.shutdown().await.unwrap();
}

/// The control: with recycling off every WAL file is new, and the count above sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_recycling_off_no_wal_file_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(config(dir.path(), 0)).unwrap();
    let mut seen = Seen::default();
    churn(&store, &mut seen).await;
    assert_eq!(reuses(dir.path()), 0);
    assert!(!seen.look(dir.path()).1, "a WAL file kept the inode of an older one");
    store.shutdown().await.unwrap();
}

/// What a power loss right now leaves: every acknowledged write was fsynced, so a copy
/// of the live directory is that image, its live WAL a reused file whose tail still holds
/// the records of its earlier life (entries since purged or truncated away). Opened, it
/// must hold exactly what the engine held: nothing lost, nothing stale brought back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_image_of_a_reused_wal_recovers_exactly_what_was_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(config(dir.path(), 2)).unwrap();
    let mut seen = Seen::default();
    churn(&store, &mut seen).await;
    // Small appends until the live WAL is a reused file holding some of them (then its
    // records of this life are followed by those of its earlier one), with a memtable's
    // worth of large ones in between to switch WAL files.
    let (mut next, mut small) = (1, 1);
    loop {
        store.group(4).append(&common::ents(small..small + 3, 1)).await.unwrap();
        small += 3;
        let (wal, reused) = seen.look(dir.path());
        if reused {
            store.group(4).append(&common::ents(small..small + 3, 1)).await.unwrap();
            small += 3;
            if seen.look(dir.path()).0 == wal {
                break;
            }
            continue;
        }
        assert!(next < 400, "no reused WAL file became the live one");
        store.group(5).append(&large(next..next + 16, 1)).await.unwrap();
        next += 16;
    }
    let expected = common::snapshot(&store);

    let image = common::crash_image(dir.path());

    let copy = LogStore::start(config(image.path(), 2)).unwrap();
    assert_eq!(common::snapshot(&copy), expected);
    assert_eq!(copy.group(4).last_index().unwrap(), Some(small - 1));
    copy.shutdown().await.unwrap();
    store.shutdown().await.unwrap();
}
