//! Deleting obsolete WAL files a few MiB at a time ([`Config::wal_delete_chunk`]).
//!
//! Once a memtable is flushed, RocksDB deletes the WAL file that held it: 64 MiB or more
//! in one `unlink`. On a filesystem mounted with online discard (ext4's `discard`, as many
//! cloud images mount it), freeing those blocks sends the disk one discard for all of
//! them, and a WAL `fdatasync` issued meanwhile waits behind it. On this project's VM
//! that was 12-20 ms, once per memtable, which made most of the 1000-group workload's
//! p99.9. So rocklog has RocksDB move each obsolete WAL file into its `archive/`
//! directory instead (`WAL_ttl_seconds`), and [`trim_archive`], called from a thread of
//! the engine's own, shrinks each archived file a chunk at a time with a pause between
//! chunks, then removes it. The discards cover the same blocks, spread out, and none of
//! them holds an fsync for long.
//!
//! Safe because an archived WAL file is one RocksDB would otherwise have deleted: every
//! write in it is in a flushed SST or blob file, and recovery never reads `archive/`. A
//! file that also has another name is only unlinked, never shrunk: a checkpoint
//! hard-links WAL files into its copy, and shrinking the shared inode would cut the
//! copy's WAL short (`tests/wal_trim.rs` caught exactly that).
//! Should the thread fall behind or be gone, RocksDB deletes archived files itself once
//! they are [`ARCHIVE_TTL_SECS`] old.
//!
//! [`Config::wal_delete_chunk`]: crate::Config::wal_delete_chunk

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::config::Config;

/// RocksDB deletes an archived WAL file itself once it is this old (checked every half
/// of it): the bound on what the archive holds if the trimming thread falls behind.
pub(crate) const ARCHIVE_TTL_SECS: u64 = 20;

/// The pause after each chunk: long enough for the fsyncs queued behind one discard to
/// go through, short enough to keep up with a WAL written at 800 MiB/s in 4 MiB chunks.
const PAUSE: Duration = Duration::from_millis(5);

/// Whether obsolete WAL files are archived and trimmed (`wal_delete_chunk` above `0B`,
/// and no WAL recycling: RocksDB turns recycling off while it archives, and recycled
/// files are never deleted).
pub(crate) fn enabled(config: &Config) -> bool {
    config.wal_delete_chunk.bytes() > 0 && config.wal_recycle_files == 0
}

/// Where RocksDB archives the obsolete WAL files of the database in `dir`.
pub(crate) fn archive_dir(dir: &Path) -> PathBuf {
    dir.join("archive")
}

/// What one [`trim_archive`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Trimmed {
    pub files: u64,
    pub bytes: u64,
}

impl Trimmed {
    /// Counts one more file of `bytes` removed.
    pub fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes = self.bytes.saturating_add(bytes);
    }
}

/// The entries of the directory `dir`, or `None` when it does not exist. Fails when it
/// exists and cannot be listed.
pub(crate) fn entries_if_any(dir: &Path) -> std::io::Result<Option<std::fs::ReadDir>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes every WAL file in `dir`'s archive, each shrunk `chunk` bytes at a time with a
/// pause between chunks (`chunk` 0: each removed at once); `keep_going` is asked before
/// each chunk, and a `false` stops the work where it is. A missing archive is empty; a
/// file RocksDB deleted meanwhile is skipped.
///
/// Contract: each file is shrunk and removed while holding `removal`, and a file with
/// another name (a hard link) is never shrunk, only unlinked. RocksDB's checkpoint
/// hard-links WAL files into the copy, and lists the archive and then reads each listed
/// file's size, failing if a file went in between (it only stops its own deletions
/// meanwhile), so a checkpoint holds the same lock.
///
/// Fails when the archive cannot be listed or a file in it cannot be shrunk or removed;
/// `removed` has what went before that.
pub(crate) fn trim_archive(
    dir: &Path,
    chunk: u64,
    keep_going: &dyn Fn() -> bool,
    removal: &Mutex<()>,
    removed: &mut Trimmed,
) -> std::io::Result<()> {
    let Some(entries) = entries_if_any(&archive_dir(dir))? else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_str().and_then(super::wal_size::wal_number).is_none() {
            continue;
        }
        match trim_file(&entry.path(), chunk, keep_going, removal) {
            Ok(Some(bytes)) => removed.add(bytes),
            Ok(None) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Shrinks `path` to nothing a chunk at a time, then removes it; `None` if `keep_going`
/// stopped it first (the file is left shorter where it is). A file with another name is
/// only unlinked. Fails when the file cannot be opened, shrunk or removed.
pub(crate) fn trim_file(
    path: &Path,
    chunk: u64,
    keep_going: &dyn Fn() -> bool,
    removal: &Mutex<()>,
) -> std::io::Result<Option<u64>> {
    let file = std::fs::OpenOptions::new().write(true).open(path)?;
    let size = file.metadata()?.len();
    let mut left = size;
    while chunk > 0 && left > chunk {
        if !keep_going() {
            return Ok(None);
        }
        {
            // A checkpoint hard-links WAL files (under the same lock): shrinking a file
            // with another name would shrink the checkpoint's copy. Such a file is only
            // unlinked, which leaves the other name whole.
            let _linking = removal.lock().unwrap_or_else(PoisonError::into_inner);
            if file.metadata()?.nlink() > 1 {
                break;
            }
            left -= chunk;
            file.set_len(left)?;
        }
        std::thread::sleep(PAUSE);
    }
    drop(file);
    let _removing = removal.lock().unwrap_or_else(PoisonError::into_inner);
    std::fs::remove_file(path)?;
    Ok(Some(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data directory with an empty `archive/`.
    fn with_archive() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = archive_dir(dir.path());
        std::fs::create_dir(&archive).expect("mkdir");
        (dir, archive)
    }

    fn write(path: &Path, bytes: usize) {
        std::fs::write(path, vec![7u8; bytes]).expect("write");
    }

    /// Every archived WAL file goes, whatever its size against the chunk; other files in
    /// the archive and WAL files outside it stay.
    #[test]
    fn trims_only_archived_wal_files() {
        let (dir, archive) = with_archive();
        write(&archive.join("000012.log"), 300_000);
        write(&archive.join("000013.log"), 10);
        write(&archive.join("000014.log"), 0);
        write(&archive.join("notes.txt"), 10);
        write(&dir.path().join("000015.log"), 10);
        let mut removed = Trimmed::default();
        trim_archive(dir.path(), 64 << 10, &|| true, &Mutex::new(()), &mut removed).expect("trim");
        assert_eq!(removed, Trimmed { files: 3, bytes: 300_010 });
        let mut left: Vec<_> = std::fs::read_dir(&archive)
            .expect("list")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        left.sort();
        assert_eq!(left, ["notes.txt"]);
        assert!(dir.path().join("000015.log").exists());
    }

    /// A stop request leaves the file being shrunk shorter but in place (the control:
    /// without it the test above could pass on a trimmer that never shrinks anything).
    #[test]
    fn a_stop_leaves_the_file_shrunk_in_place() {
        let (dir, archive) = with_archive();
        let path = archive.join("000020.log");
        write(&path, 10 * 4096);
        let calls = std::cell::Cell::new(0);
        let mut removed = Trimmed::default();
        let keep_going = || {
            calls.set(calls.get() + 1);
            calls.get() <= 3
        };
        trim_archive(dir.path(), 4096, &keep_going, &Mutex::new(()), &mut removed).expect("trim");
        assert_eq!(removed, Trimmed::default());
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), 7 * 4096);
    }

    /// While another thread holds the removal lock (a checkpoint listing WAL files), a
    /// file may shrink but is not removed; once the lock is released it goes. The first
    /// half is the control of the second: the file is there to be removed.
    #[test]
    fn no_file_is_removed_while_the_removal_lock_is_held() {
        let (dir, archive) = with_archive();
        let path = archive.join("000030.log");
        write(&path, 4 * 4096);
        let removal = std::sync::Arc::new(Mutex::new(()));
        let held = removal.lock().expect("lock");
        let trimmer = {
            let dir = dir.path().to_owned();
            let removal = std::sync::Arc::clone(&removal);
            std::thread::spawn(move || {
                let mut removed = Trimmed::default();
                trim_archive(&dir, 4096, &|| true, &removal, &mut removed).map(|()| removed)
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        assert!(path.exists(), "removed while the lock was held");
        drop(held);
        let removed = trimmer.join().expect("trimmer thread").expect("trim");
        assert_eq!(removed, Trimmed { files: 1, bytes: 4 * 4096 });
        assert!(!path.exists());
    }

    /// A file with another name (a checkpoint's hard link) is unlinked without being
    /// shrunk: the other name keeps every byte. The control is the test above it, where
    /// a file with one name is shrunk.
    #[test]
    fn a_hard_linked_file_is_unlinked_not_shrunk() {
        let (dir, archive) = with_archive();
        let path = archive.join("000040.log");
        write(&path, 10 * 4096);
        let link = dir.path().join("checkpoint-000040.log");
        std::fs::hard_link(&path, &link).expect("link");
        let mut removed = Trimmed::default();
        trim_archive(dir.path(), 4096, &|| true, &Mutex::new(()), &mut removed).expect("trim");
        assert_eq!(removed, Trimmed { files: 1, bytes: 10 * 4096 });
        assert!(!path.exists());
        assert_eq!(std::fs::read(&link).expect("read the link"), vec![7u8; 10 * 4096]);
    }

    /// No archive is an empty archive.
    #[test]
    fn a_missing_archive_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut removed = Trimmed::default();
        trim_archive(dir.path(), 4096, &|| true, &Mutex::new(()), &mut removed).expect("trim");
        assert_eq!(removed, Trimmed::default());
    }
}
