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

/// Makes the checkpoint `plan` describes and makes it durable: RocksDB syncs the files
/// and the directory, this syncs the parent's entry for it (RocksDB renames the staging
/// directory into place and does not).
///
/// Fails with [`Error::Storage`] when RocksDB fails (a full disk among other causes) and
/// [`Error::Io`] when the directories cannot be synced; either way nothing is left at the
/// destination but the empty directory that may have been there.
pub(crate) fn create(db: &DB, plan: &Plan) -> Result<()> {
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
