//! Presizing the live WAL file, so that its fsyncs carry no file-size update.
//!
//! RocksDB reserves each WAL's space with `fallocate(FALLOC_FL_KEEP_SIZE)` (hard-coded
//! for WALs in its `fs_posix.cc`, whose own comment says it would be faster without
//! `KEEP_SIZE`). The blocks are reserved, but the file's size still grows with every
//! write, so every `fdatasync` of the WAL also writes the file's inode with its new size:
//! a journal commit, or on an ext4 without a journal (this project's machine) one more
//! synchronous write before the disk's cache flush. There, one small append and
//! `fdatasync` took 335-350 µs at p50 that way, and 245-255 µs into a file whose size
//! already covered it (`docs/benchmarks.md`).
//!
//! [`WalPresizer`] sets the newest WAL's size to cover the space RocksDB reserved for
//! it, once per file, soon after the writer's first write into it: what a mode-0 `fallocate`
//! would have done. Why that is safe:
//! - the bytes between RocksDB's last write and the new size read as zeros, and RocksDB's
//!   WAL reader skips a zeroed block (a zero record header: the `kZeroType` padding its
//!   mmap writer used to leave in preallocated space) without reporting corruption, in
//!   every recovery mode: after a crash, recovery reads the records and then zeros;
//! - closing a WAL, RocksDB truncates it to what it wrote (`PosixWritableFile::Close`),
//!   and a checkpoint copies an open WAL only up to what RocksDB wrote
//!   (`GetOpenWalSizes`);
//! - only the writer thread writes to the database, so no write is under way in the
//!   file while its size is set;
//! - nothing else changes: the data, its checksums and every fsync are RocksDB's own.
//!
//! The power-loss loop runs with it (`Config::wal_presize`, on by default) and checks
//! that presized WAL files were among those it crashed on.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::dir_watch::DirWatch;

/// How often the writer looks for a new WAL file (RocksDB starts one at each memtable
/// switch, seconds apart under load): until then a new WAL's fsyncs also write its size,
/// as without presizing. Asking RocksDB instead (its super version numbers) took the
/// database mutex twice per batch, which flushes and compactions hold: on 1000 groups
/// (W3) that cost more than presizing saved.
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// Finds each new WAL file and sets its size to cover its reserved space (module docs).
#[derive(Debug)]
pub(crate) struct WalPresizer {
    dir: PathBuf,
    /// When the writer last looked for a new WAL file.
    looked: Option<Instant>,
    /// When the directory was last listed.
    listed: DirWatch,
    /// The number of the newest WAL file found.
    newest: u64,
    /// That file, until its size is set or it turns out to have no reserved space.
    pending: Option<File>,
}

impl WalPresizer {
    /// A presizer for the database in `dir` (RocksDB keeps its WAL files there).
    pub fn new(dir: &Path) -> Self {
        WalPresizer {
            dir: dir.to_owned(),
            looked: None,
            listed: DirWatch::default(),
            newest: 0,
            pending: None,
        }
    }

    /// Called by the writer after each successful write: looks for a new WAL file (at
    /// most every [`LOOK_EVERY`]), and presizes it once RocksDB has reserved its space.
    /// Returns whether it presized a file now.
    ///
    /// Fails when the directory or the file cannot be read, or the size cannot be set;
    /// the caller then stops presizing (writes are unaffected).
    pub fn after_write(&mut self) -> io::Result<bool> {
        let now = Instant::now();
        if self.looked.is_none_or(|at| now.duration_since(at) >= LOOK_EVERY) {
            self.looked = Some(now);
            if self.listed.due(&self.dir)? {
                self.find_newest()?;
            }
        }
        let Some(file) = &self.pending else { return Ok(false) };
        let meta = file.metadata()?;
        let reserved = meta.blocks().saturating_mul(512);
        if reserved <= meta.len() {
            if meta.len() > 0 {
                // Written to with nothing reserved past its end: RocksDB reserves space
                // at its first write, so this filesystem keeps none (or the file is a
                // recycled WAL, full-sized already). Nothing to do for this file.
                self.pending = None;
            }
            return Ok(false);
        }
        file.set_len(reserved)?;
        self.pending = None;
        Ok(true)
    }

    /// Lists the directory for a WAL file newer than the last one found.
    fn find_newest(&mut self) -> io::Result<()> {
        let mut newest = None;
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let Some(number) = name.to_str().and_then(wal_number) else { continue };
            if number > self.newest && newest.as_ref().is_none_or(|(n, _)| number > *n) {
                newest = Some((number, name));
            }
        }
        let Some((number, name)) = newest else { return Ok(()) };
        self.newest = number;
        self.pending = match std::fs::OpenOptions::new().write(true).open(self.dir.join(name)) {
            Ok(file) => Some(file),
            // Already obsolete and deleted: a newer one will be found.
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        Ok(())
    }
}

/// The number of a WAL file's name (`000123.log`), if it is one: the one test of what a
/// WAL file is.
pub(crate) fn wal_number(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    // `parse` alone would take a sign ("+1.log").
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::wal_number;

    #[test]
    fn only_numbered_log_files_are_wal_files() {
        assert_eq!(wal_number("000123.log"), Some(123));
        assert_eq!(wal_number("7.log"), Some(7));
        for other in ["LOG", "+1.log", "LOG.old.1700000000", ".log", "x1.log", "000123.sst", "000123.log.tmp"]
        {
            assert_eq!(wal_number(other), None, "{other}");
        }
    }
}
