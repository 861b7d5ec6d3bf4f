//! Deleting obsolete SST and blob files a few MiB at a time ([`Config::sst_delete_chunk`]).
//!
//! Compactions, blob garbage collection and purges make SST and blob files obsolete, and
//! RocksDB deletes each one in one `unlink`: a 64 MiB blob file at a time. On a
//! filesystem mounted with online discard (ext4's `discard`, as many cloud images mount
//! it) that sends the disk one discard for all of it, and the WAL `fdatasync`s issued
//! meanwhile wait behind it. On this project's VM that held about eight WAL fsyncs in a
//! row for 10 ms each, after each compaction of the 1000-group workload that purges
//! (W7), and made its p99.9.
//!
//! RocksDB has no hook for deleting its table files another way that rocklog can reach
//! without `unsafe`, so rocklog keeps a second name for each of them: the trimmer thread
//! hard-links every SST and blob file it finds in the data directory into `trash/`. When
//! RocksDB deletes its own name, the file's blocks stay allocated through the trash name,
//! and [`Trash::trim`] then shrinks the file a chunk at a time, with a pause between
//! chunks, and removes it: the same discards, spread out.
//!
//! Safe because rocklog never decides that a file is obsolete; RocksDB does, by
//! unlinking it, which it does only once its manifest no longer names the file. A file is
//! shrunk only when the trash name is its last one (link count 1). A file whose RocksDB
//! name is gone but which has another name (a checkpoint hard-links table files into its
//! copy) is only unlinked from `trash/`, never shrunk. Nothing else in rocklog or RocksDB
//! reads `trash/`. A file RocksDB creates and deletes between two looks of the trimmer is
//! deleted by RocksDB at once, as without this.
//!
//! [`Config::sst_delete_chunk`]: crate::Config::sst_delete_chunk

use crate::config::Config;
use crate::storage::dir_watch::DirWatch;
use crate::storage::wal_trim::{self, Trimmed};
use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Whether SST and blob files are linked into `trash/` and removed in chunks.
pub(crate) fn enabled(config: &Config) -> bool {
    config.sst_delete_chunk.bytes() > 0
}

/// Where the second names of the database in `dir`'s table files are kept.
pub(crate) fn trash_dir(dir: &Path) -> PathBuf {
    dir.join("trash")
}

/// Whether `name` is one of RocksDB's SST or blob files (`NNNNNN.sst`, `NNNNNN.blob`).
fn table_file(name: &str) -> bool {
    let stem = name.strip_suffix(".sst").or_else(|| name.strip_suffix(".blob"));
    stem.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

/// The trimmer's view of `trash/`: which table files it has linked there.
#[derive(Debug, Default)]
pub(crate) struct Trash {
    /// Names linked into `trash/` and not removed from it yet.
    linked: HashSet<OsString>,
    /// When the data directory was last listed.
    listed: DirWatch,
}

impl Trash {
    /// Links every SST and blob file of the database in `dir` that has no trash name yet
    /// into `trash/` (created if missing). The directory is listed only when it is due
    /// ([`DirWatch::due`]). Returns how many
    /// files it linked. A file RocksDB deleted meanwhile is skipped.
    ///
    /// Fails when the directory cannot be read or listed, `trash/` cannot be created, or
    /// a link cannot be made for another reason than the file being gone.
    pub fn adopt(&mut self, dir: &Path) -> std::io::Result<u64> {
        if !self.listed.due(dir)? {
            return Ok(0);
        }
        let trash = trash_dir(dir);
        std::fs::create_dir_all(&trash)?;
        let mut linked = 0;
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            if !name.to_str().is_some_and(table_file) || self.linked.contains(&name) {
                continue;
            }
            match std::fs::hard_link(dir.join(&name), trash.join(&name)) {
                Ok(()) => linked += 1,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            }
            self.linked.insert(name);
        }
        Ok(linked)
    }

    /// Removes every file in `dir`'s `trash/` whose RocksDB name is gone: shrunk `chunk`
    /// bytes at a time with a pause between chunks when the trash name is its last one,
    /// only unlinked when it has another (see the module docs). `keep_going` is asked
    /// before each chunk; a `false` stops the work where it is. A missing `trash/` is
    /// empty.
    ///
    /// Contract: a file whose name in `dir` is still the same file is left alone, and a
    /// file that cannot be shrunk is unlinked at once instead, so that no space RocksDB
    /// has freed stays held by the trash.
    ///
    /// Fails when `trash/` cannot be listed, or with the first error met on a file in it
    /// (the other files are still removed); `removed` counts what was removed.
    pub fn trim(
        &mut self,
        dir: &Path,
        chunk: u64,
        keep_going: &dyn Fn() -> bool,
        removal: &Mutex<()>,
        removed: &mut Trimmed,
    ) -> std::io::Result<()> {
        let Some(entries) = wal_trim::entries_if_any(&trash_dir(dir))? else {
            return Ok(());
        };
        let mut first_error = None;
        for entry in entries {
            let path = match entry {
                Ok(entry) => entry.path(),
                Err(e) => return Err(first_error.unwrap_or(e)),
            };
            match self.trim_one(dir, &path, chunk, keep_going, removal, removed) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// [`Trash::trim`] for the file at `path` in the trash; `false` if `keep_going`
    /// stopped it. A file that cannot be shrunk is unlinked; the error is returned.
    fn trim_one(
        &mut self,
        dir: &Path,
        path: &Path,
        chunk: u64,
        keep_going: &dyn Fn() -> bool,
        removal: &Mutex<()>,
        removed: &mut Trimmed,
    ) -> std::io::Result<bool> {
        let Some(name) = path.file_name() else {
            return Ok(true);
        };
        let file = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(e),
        };
        if file.nlink() > 1 && same_file(&dir.join(name), &file)? {
            return Ok(true);
        }
        let outcome = match wal_trim::trim_file(path, chunk, keep_going, removal) {
            Ok(Some(bytes)) => {
                removed.add(bytes);
                Ok(true)
            }
            Ok(None) => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => match std::fs::remove_file(path) {
                Ok(()) => {
                    removed.add(file.len());
                    Err(e)
                }
                Err(e2) if e2.kind() == std::io::ErrorKind::NotFound => Err(e),
                Err(e2) => Err(std::io::Error::new(e.kind(), format!("{e}; unlinking it: {e2}"))),
            },
        };
        if !path.exists() {
            self.linked.remove(name);
        }
        outcome
    }
}

/// Whether `path` exists and is the file `file` describes (same device and inode).
fn same_file(path: &Path, file: &std::fs::Metadata) -> std::io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(m.dev() == file.dev() && m.ino() == file.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes `dir`'s `trash/` and every name in it at once, as when chunked deletion is
/// off: a file whose RocksDB name is gone goes with it. A missing `trash/` is fine.
///
/// Fails when `trash/` cannot be listed or emptied.
pub(crate) fn empty(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(trash_dir(dir)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, bytes: usize) {
        std::fs::write(path, vec![7u8; bytes]).expect("write");
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = match std::fs::read_dir(dir) {
            Ok(entries) => {
                entries.map(|e| e.expect("entry").file_name().into_string().expect("utf-8")).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("{}: {e}", dir.display()),
        };
        names.sort();
        names
    }

    #[test]
    fn only_sst_and_blob_files_are_table_files() {
        for yes in ["000012.sst", "7.blob"] {
            assert!(table_file(yes), "{yes}");
        }
        for no in
            [".sst", "x1.sst", "000012.log", "MANIFEST-000005", "000012.sst.trash", "12.blob.tmp", "CURRENT"]
        {
            assert!(!table_file(no), "{no}");
        }
    }

    /// Table files get a trash name; a file RocksDB still has is left whole in the trash,
    /// and once its RocksDB name is gone it is shrunk and removed. The first trim is the
    /// control of the second: the file is there and left alone while live.
    #[test]
    fn a_file_is_removed_only_once_its_rocksdb_name_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(&dir.path().join("000010.sst"), 10 * 4096);
        write(&dir.path().join("000011.blob"), 3 * 4096);
        write(&dir.path().join("000012.log"), 4096);
        write(&dir.path().join("MANIFEST-000005"), 4096);
        let mut trash = Trash::default();
        assert_eq!(trash.adopt(dir.path()).expect("adopt"), 2);
        let trash_path = trash_dir(dir.path());
        assert_eq!(names(&trash_path), ["000010.sst", "000011.blob"]);

        let mut removed = Trimmed::default();
        trash.trim(dir.path(), 4096, &|| true, &Mutex::new(()), &mut removed).expect("trim");
        assert_eq!(removed, Trimmed::default(), "a live file was removed");
        assert_eq!(std::fs::read(dir.path().join("000010.sst")).expect("read"), vec![7u8; 10 * 4096]);

        std::fs::remove_file(dir.path().join("000010.sst")).expect("RocksDB's delete");
        trash.trim(dir.path(), 4096, &|| true, &Mutex::new(()), &mut removed).expect("trim");
        assert_eq!(removed, Trimmed { files: 1, bytes: 10 * 4096 });
        assert_eq!(names(&trash_path), ["000011.blob"]);
        assert_eq!(std::fs::read(dir.path().join("000011.blob")).expect("read"), vec![7u8; 3 * 4096]);
        // Nothing is linked twice, and a file that was removed is not linked again.
        assert_eq!(trash.adopt(dir.path()).expect("adopt"), 0);
    }

    /// A stop request leaves the file being shrunk shorter but in the trash: the chunks
    /// are real (the control of the test above, which could pass on a plain delete).
    #[test]
    fn a_stop_leaves_the_file_shrunk_in_the_trash() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(&dir.path().join("000020.blob"), 10 * 4096);
        let mut trash = Trash::default();
        trash.adopt(dir.path()).expect("adopt");
        std::fs::remove_file(dir.path().join("000020.blob")).expect("RocksDB's delete");
        let calls = std::cell::Cell::new(0);
        let keep_going = || {
            calls.set(calls.get() + 1);
            calls.get() <= 3
        };
        let mut removed = Trimmed::default();
        trash.trim(dir.path(), 4096, &keep_going, &Mutex::new(()), &mut removed).expect("trim");
        assert_eq!(removed, Trimmed::default());
        let left = trash_dir(dir.path()).join("000020.blob");
        assert_eq!(std::fs::metadata(left).expect("stat").len(), 7 * 4096);
    }

    /// A file whose RocksDB name is gone but which a checkpoint also linked is unlinked
    /// from the trash, not shrunk: the checkpoint's copy keeps every byte.
    #[test]
    fn a_file_with_a_checkpoint_link_is_unlinked_not_shrunk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let copy = tempfile::tempdir_in(dir.path()).expect("checkpoint dir");
        write(&dir.path().join("000030.sst"), 10 * 4096);
        let mut trash = Trash::default();
        trash.adopt(dir.path()).expect("adopt");
        std::fs::hard_link(dir.path().join("000030.sst"), copy.path().join("000030.sst")).expect("link");
        std::fs::remove_file(dir.path().join("000030.sst")).expect("RocksDB's delete");
        let mut removed = Trimmed::default();
        trash.trim(dir.path(), 4096, &|| true, &Mutex::new(()), &mut removed).expect("trim");
        assert_eq!(removed, Trimmed { files: 1, bytes: 10 * 4096 });
        assert!(names(&trash_dir(dir.path())).is_empty());
        assert_eq!(std::fs::read(copy.path().join("000030.sst")).expect("read"), vec![7u8; 10 * 4096]);
    }

    /// A trash entry that cannot be shrunk or removed (here a directory) does not hold
    /// back the files after it: they are still removed, and the error is returned.
    #[test]
    fn one_bad_entry_does_not_keep_the_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(&dir.path().join("000050.sst"), 4 * 4096);
        write(&dir.path().join("000051.sst"), 4 * 4096);
        let mut trash = Trash::default();
        trash.adopt(dir.path()).expect("adopt");
        for name in ["000050.sst", "000051.sst"] {
            std::fs::remove_file(dir.path().join(name)).expect("RocksDB's delete");
        }
        let bad = trash_dir(dir.path()).join("000049.sst");
        std::fs::create_dir(&bad).expect("mkdir");
        std::fs::write(bad.join("inside"), b"x").expect("write");
        let mut removed = Trimmed::default();
        let outcome = trash.trim(dir.path(), 4096, &|| true, &Mutex::new(()), &mut removed);
        assert!(outcome.is_err(), "the bad entry's error was lost");
        assert_eq!(removed, Trimmed { files: 2, bytes: 8 * 4096 });
        assert_eq!(names(&trash_dir(dir.path())), ["000049.sst"]);
    }

    /// Emptying removes the trash and its names; the live files keep theirs.
    #[test]
    fn emptying_removes_only_the_trash() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(&dir.path().join("000040.sst"), 4096);
        Trash::default().adopt(dir.path()).expect("adopt");
        empty(dir.path()).expect("empty");
        assert!(!trash_dir(dir.path()).exists());
        assert_eq!(std::fs::read(dir.path().join("000040.sst")).expect("read"), vec![7u8; 4096]);
        empty(dir.path()).expect("a missing trash is empty");
    }
}
