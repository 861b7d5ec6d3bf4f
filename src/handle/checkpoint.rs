//! [`LogStore::checkpoint`]: a consistent copy of a live engine, verified before it is
//! reported.

use std::path::{Path, PathBuf};
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use super::LogStore;
use crate::error::{Error, Result};
use crate::offline::OfflineLog;
use crate::storage::checkpoint;
pub use crate::storage::checkpoint::CopyMethod;

/// What [`LogStore::checkpoint`] made.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointReport {
    /// The new directory.
    pub path: PathBuf,
    /// Hard links, or copies because the destination is on another filesystem.
    pub method: CopyMethod,
    /// Groups in the copy.
    pub groups: u64,
    /// Entries in the copy, every one read back by the verification.
    pub entries: u64,
    /// Bytes of the copy's SST, WAL and blob files (hard-linked ones included, though
    /// they take no new space).
    pub bytes: u64,
    /// How long the checkpoint and its verification took.
    pub elapsed: Duration,
}

impl LogStore {
    /// Writes a consistent copy of the engine into the new directory `dest` while it keeps
    /// running, using RocksDB's checkpoint: the memtables are flushed, SST and blob files
    /// are hard-linked when `dest` is on the same filesystem and copied otherwise (the
    /// report's [`method`](CheckpointReport::method) says which), and the live WAL is
    /// copied. An attempt whose WAL copy a concurrent flush cut short (RocksDB's
    /// "File smaller than expected for copy") leaves nothing and is made again, up to
    /// five times. The copy then is made durable (files, directory and its entry in the
    /// parent) and verified the way `rocklog check` verifies: every record is read back
    /// and the copy must have no finding. It opens as a normal rocklog directory.
    ///
    /// Contract: every write acknowledged before this call started is in the copy, and
    /// the copy is one consistent point of the engine's history (no group has holes).
    /// Writes acknowledged while it runs may or may not be in it. Writes go on meanwhile;
    /// the call blocks its thread for the flush, the copy and the read-back (seconds for
    /// gigabytes), so call it from `spawn_blocking` in async code. Shutting the engine
    /// down waits for it.
    ///
    /// Fails, having written nothing at `dest` (an empty directory that was there stays),
    /// with [`Error::DestinationExists`] when `dest` is a file or a non-empty directory
    /// (or `<dest>.tmp`, RocksDB's staging directory, exists), [`Error::InvalidConfig`]
    /// when `dest` overlaps the engine's directory, [`Error::Io`] when `dest`'s parent does
    /// not exist, [`Error::Poisoned`] once a write has failed (reopen, then copy),
    /// [`Error::NoSpace`] when its filesystem has less room than the copy needs
    /// (the WAL when linking, every file when copying), [`Error::Closed`] after shutdown,
    /// [`Error::Storage`] when RocksDB fails (a disk filling up during the copy), and
    /// [`Error::Corruption`] when the copy does not verify.
    pub fn checkpoint(&self, dest: impl AsRef<Path>) -> Result<CheckpointReport> {
        let started = Instant::now();
        let dest = dest.as_ref();
        let shared = self.shared();
        // After a failed write or fsync the disk is suspect, and the memtables may hold a
        // batch whose outcome is unknown: copy after a reopen, not before.
        shared.check_poison()?;
        let plan = {
            // No archived WAL file may vanish while RocksDB lists them (`Shared::wal_removal`).
            let _no_wal_removal = shared.wal_removal.lock().unwrap_or_else(PoisonError::into_inner);
            let db = shared.db()?;
            let plan = checkpoint::plan(&db, &shared.config.path, dest)?;
            checkpoint::create(&db, &plan)?;
            plan
        };
        let verified = verify(dest);
        if verified.is_err() {
            checkpoint::discard(&plan);
        }
        let (groups, entries, bytes) = verified?;
        let report = CheckpointReport {
            path: dest.to_owned(),
            method: plan.method,
            groups,
            entries,
            bytes,
            elapsed: started.elapsed(),
        };
        tracing::info!(path = %dest.display(), method = ?report.method, groups, entries, bytes,
            elapsed = ?report.elapsed, "rocklog checkpoint written and verified");
        Ok(report)
    }
}

/// Reads the copy back as `rocklog check` does: `(groups, entries, bytes)`, or
/// [`Error::Corruption`] naming the first findings.
fn verify(dest: &Path) -> Result<(u64, u64, u64)> {
    let copy = OfflineLog::open(dest)?;
    let report = copy.check()?;
    if !report.is_clean() {
        let first: Vec<String> = report.findings.iter().take(3).map(ToString::to_string).collect();
        return Err(Error::corruption(
            report.findings[0].group().unwrap_or(0),
            "checkpoint",
            format!("the copy has {} finding(s): {}", report.findings.len(), first.join("; ")),
        ));
    }
    let bytes = copy.storage_state()?.disk_bytes();
    Ok((report.groups, report.entries, bytes))
}
