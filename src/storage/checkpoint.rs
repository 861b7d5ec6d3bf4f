//! Checkpoints: a consistent copy of a live database in a new directory, made by RocksDB's
//! checkpoint (memtables flushed, SST and blob files hard-linked where the filesystem
//! allows, copied otherwise; the live WAL copied). This file refuses what cannot work
//! before anything is written, and removes whatever a failed attempt left.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rocksdb::DB;

use super::open::sync_dir;
use super::properties;
use crate::error::{Error, Result};

/// Room kept free beyond the estimate: the new manifest, options and CURRENT files, and
/// what the source writes between the estimate and the copy.
const SPACE_MARGIN: u64 = 8 << 20;

/// How a checkpoint's files got into the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CopyMethod {
    /// SST and blob files are hard links to the source's (same filesystem): the
    /// checkpoint costs almost no space and time, and the files stay on disk until both
    /// the source and the copy are done with them.
    HardLinks,
    /// Every file was copied, because the destination is on another filesystem.
    Copied,
}

/// What [`create`] needs to know before it starts: where the copy goes, how, and that
/// there is room for it.
#[derive(Debug)]
pub(crate) struct Plan {
    dest: PathBuf,
    /// The destination's parent, whose entry for it is made durable at the end.
    parent: PathBuf,
    /// RocksDB's staging directory, `<dest>.tmp`.
    staging: PathBuf,
    /// The destination was an existing empty directory, removed before RocksDB starts
    /// (it refuses an existing one) and recreated if the checkpoint fails.
    was_empty_dir: bool,
    pub method: CopyMethod,
}

/// Checks `dest` against the database open at `src` and plans the copy.
///
/// Fails with [`Error::DestinationExists`] when `dest` is a file or a non-empty
/// directory, [`Error::InvalidConfig`] when it is inside the source directory (or the
/// source inside it), [`Error::Io`] when its parent does not exist or cannot be
/// examined, and [`Error::NoSpace`] when its filesystem lacks the room the copy needs.
pub(crate) fn plan(db: &DB, src: &Path, dest: &Path) -> Result<Plan> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Io { path, source }
    };
    let name = dest.file_name().filter(|n| !n.is_empty()).ok_or_else(|| {
        Error::InvalidConfig(format!("checkpoint destination {} names no directory", dest.display()))
    })?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let parent_meta = std::fs::metadata(&parent).map_err(io(&parent))?;
    if !parent_meta.is_dir() {
        let source = std::io::Error::new(std::io::ErrorKind::NotADirectory, "not a directory");
        return Err(Error::Io { path: parent, source });
    }
    let src_real = src.canonicalize().map_err(io(src))?;
    let dest_real = parent.canonicalize().map_err(io(&parent))?.join(name);
    if dest_real.starts_with(&src_real) || src_real.starts_with(&dest_real) {
        return Err(Error::InvalidConfig(format!(
            "checkpoint destination {} overlaps the engine's directory {}",
            dest.display(),
            src.display()
        )));
    }
    let was_empty_dir = match std::fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => {
            if std::fs::read_dir(dest).map_err(io(dest))?.next().is_some() {
                return Err(Error::DestinationExists { path: dest.to_owned() });
            }
            true
        }
        Ok(_) => return Err(Error::DestinationExists { path: dest.to_owned() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(io(dest)(e)),
    };
    let mut staging = dest.as_os_str().to_owned();
    staging.push(".tmp");
    let staging = PathBuf::from(staging);
    if std::fs::symlink_metadata(&staging).is_ok() {
        return Err(Error::DestinationExists { path: staging });
    }

    let same_fs = std::fs::metadata(src).map_err(io(src))?.dev() == parent_meta.dev();
    let method = if same_fs { CopyMethod::HardLinks } else { CopyMethod::Copied };
    let state = properties::read(db, src)?;
    // The flush writes the memtables into the source's directory first; the WAL is
    // always copied (RocksDB trims it to its live length).
    let needed = match method {
        CopyMethod::HardLinks => state.wal_bytes,
        CopyMethod::Copied => state.disk_bytes().saturating_add(state.memtable_bytes),
    }
    .saturating_add(SPACE_MARGIN);
    let (available, _) = properties::disk_space(&parent)?;
    if available < needed {
        return Err(Error::NoSpace { path: dest.to_owned(), needed, available });
    }
    Ok(Plan { dest: dest.to_owned(), parent, staging, was_empty_dir, method })
}

/// How many times [`create`] tries when a WAL file shrinks under RocksDB's copy.
const ATTEMPTS: usize = 5;

/// Makes the checkpoint `plan` describes and makes it durable: RocksDB syncs the files
/// and the directory, this syncs the parent's entry for it (RocksDB renames the staging
/// directory into place and does not).
///
/// RocksDB copies each live WAL file up to the size it read from the filesystem when it
/// listed the files. With WAL reuse that size can be more than RocksDB wrote: a reused
/// file keeps its old length, and a new one its presized length
/// ([`Config::wal_presize`](crate::Config::wal_presize)). When a flush meanwhile syncs
/// and closes that file, RocksDB truncates it to what it wrote, and the copy comes up
/// short ("File smaller than expected for copy"). Nothing is wrong with the database or
/// the file, and the failed attempt left nothing behind, so the checkpoint is made again,
/// up to [`ATTEMPTS`] times in all. Under writes with 1 MiB memtables, about one
/// checkpoint in 40 met it.
///
/// Fails with [`Error::Storage`] when RocksDB fails (a full disk among other causes) and
/// [`Error::Io`] when the directories cannot be synced; either way nothing is left at the
/// destination but the empty directory that may have been there.
pub(crate) fn create(db: &DB, plan: &Plan) -> Result<()> {
    retry(ATTEMPTS, || create_once(db, plan), |e| matches!(e, Error::Storage(e) if wal_shrank(e.as_ref())))
}

/// Whether RocksDB's checkpoint failed because a WAL file shrank while it copied it
/// (see [`create`]).
fn wal_shrank(message: &str) -> bool {
    message.contains("File smaller than expected for copy") && message.contains(".log ")
}

/// Calls `attempt` until it succeeds, fails with an error `transient` does not accept, or
/// has been called `attempts` times; returns its last result.
fn retry<T>(
    attempts: usize,
    mut attempt: impl FnMut() -> Result<T>,
    transient: impl Fn(&Error) -> bool,
) -> Result<T> {
    let mut tried = 1;
    loop {
        match attempt() {
            Err(e) if tried < attempts && transient(&e) => {
                tracing::info!(attempt = tried, error = %e, "checkpoint attempt failed on a WAL file that shrank; trying again");
                tried += 1;
            }
            result => return result,
        }
    }
}

/// One attempt of [`create`]; removes what it left if it fails.
fn create_once(db: &DB, plan: &Plan) -> Result<()> {
    let made = (|| {
        if plan.was_empty_dir {
            std::fs::remove_dir(&plan.dest)
                .map_err(|source| Error::Io { path: plan.dest.clone(), source })?;
        }
        rocksdb::checkpoint::Checkpoint::new(db)?.create_checkpoint(&plan.dest)?;
        sync_dir(&plan.dest)
            .and_then(|()| sync_dir(&plan.parent))
            .map_err(|source| Error::Io { path: plan.dest.clone(), source })
    })();
    if made.is_err() {
        discard(plan);
    }
    made
}

/// Removes what a checkpoint left at the destination (after a failure, or when its copy
/// failed verification), putting back the empty directory that was there.
pub(crate) fn discard(plan: &Plan) {
    for dir in [&plan.staging, &plan.dest] {
        if let Err(e) = std::fs::remove_dir_all(dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %dir.display(), error = %e, "cannot remove a failed checkpoint's files");
        }
    }
    if plan.was_empty_dir
        && let Err(e) = std::fs::create_dir(&plan.dest)
    {
        tracing::warn!(path = %plan.dest.display(), error = %e, "cannot recreate the empty destination");
    }
    if let Err(e) = sync_dir(&plan.parent) {
        tracing::warn!(path = %plan.parent.display(), error = %e, "cannot sync the destination's parent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_wal_copy_is_told_from_other_failures() {
        // RocksDB's message, as a checkpoint under writes logged it.
        let shrank = "Corruption: File smaller than expected for copy: /d/db/000055.log expecting 807852 more bytes after 347220";
        assert!(wal_shrank(shrank));
        // The control: the same failure on a table file, and another corruption of a WAL.
        assert!(!wal_shrank(
            "Corruption: File smaller than expected for copy: /d/db/000054.sst expecting 1 more bytes after 2"
        ));
        assert!(!wal_shrank("Corruption: checksum mismatch in /d/db/000055.log "));
    }

    #[test]
    fn only_transient_failures_are_retried_and_only_so_often() {
        let transient = |e: &Error| matches!(e, Error::Closed);
        let mut calls = 0;
        let ok = retry(
            5,
            || {
                calls += 1;
                if calls < 3 { Err(Error::Closed) } else { Ok(calls) }
            },
            transient,
        );
        assert_eq!((ok.ok(), calls), (Some(3), 3));

        calls = 0;
        let always = retry(
            5,
            || -> Result<()> {
                calls += 1;
                Err(Error::Closed)
            },
            transient,
        );
        assert!(matches!(always, Err(Error::Closed)));
        assert_eq!(calls, 5);

        calls = 0;
        let other = retry(
            5,
            || -> Result<()> {
                calls += 1;
                Err(Error::GroupNotFound(7))
            },
            transient,
        );
        assert!(matches!(other, Err(Error::GroupNotFound(7))));
        assert_eq!(calls, 1, "a failure that is not transient is returned at once");
    }
}
