//! What RocksDB reports about itself right now: write stalls, the compaction backlog,
//! memory held by memtables and the block cache, the size of every kind of file, and the
//! room left on the data directory's filesystem. Read from RocksDB's properties and the
//! directory itself, never by parsing RocksDB's LOG.

use std::path::Path;

use rocksdb::DB;

use super::{log_cf, meta_cf};
use crate::error::{Error, Result};

/// RocksDB's state at one moment
/// ([`LogStore::storage_state`](crate::LogStore::storage_state),
/// [`OfflineLog::storage_state`](crate::offline::OfflineLog::storage_state)). Sizes are
/// summed over the engine's column families. The engine exports it as the
/// `rocklog_storage_*` gauges once a second (see [`metrics`](crate::metrics)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StorageState {
    /// True while RocksDB stops every write: too many memtables waiting for flush, too
    /// many L0 files, or too many pending compaction bytes.
    pub writes_stopped: bool,
    /// The rate RocksDB slows writes down to, in bytes per second, while it delays them
    /// (the same causes, nearer their limits); 0 when writes are not delayed.
    pub delayed_write_rate: u64,
    /// RocksDB's estimate of the bytes compaction must rewrite to bring every level back
    /// under its target size: the compaction backlog.
    pub pending_compaction_bytes: u64,
    /// Memtable flushes running now.
    pub running_flushes: u64,
    /// Compactions running now.
    pub running_compactions: u64,
    /// Bytes held by memtables, active and immutable (pinned ones included).
    pub memtable_bytes: u64,
    /// Bytes held by the block cache (shared by both column families).
    pub block_cache_bytes: u64,
    /// Bytes of the SST files the current version uses.
    pub sst_bytes: u64,
    /// Bytes of the WAL files in the directory (recycled ones included: they hold their
    /// space). A live WAL counts at its presized length
    /// ([`Config::wal_presize`](crate::Config::wal_presize)): the space RocksDB reserved
    /// for it, about 1.1 memtables, which it holds on disk either way.
    pub wal_bytes: u64,
    /// Bytes of the blob files the current version uses (0 unless
    /// [`Config::blob_min_size`](crate::Config::blob_min_size) turned them on).
    pub blob_bytes: u64,
    /// Bytes of those blob files that hold purged entries, which blob garbage
    /// collection reclaims (see
    /// [`Config::blob_gc_garbage_percent`](crate::Config::blob_gc_garbage_percent)). An
    /// entry counts once a compaction has dropped its index; until then it is live.
    pub blob_garbage_bytes: u64,
    /// SST files in level 0. Writes slow down at 20 and stop at 36 (RocksDB's defaults,
    /// which rocklog keeps).
    pub l0_files: u64,
    /// Bytes an unprivileged process may still write on the directory's filesystem.
    pub disk_free_bytes: u64,
    /// Size of the directory's filesystem in bytes.
    pub disk_capacity_bytes: u64,
}

impl StorageState {
    /// Bytes of the engine's files on disk: SST, WAL and blob files.
    pub fn disk_bytes(&self) -> u64 {
        self.sst_bytes.saturating_add(self.wal_bytes).saturating_add(self.blob_bytes)
    }
}

/// Reads the state of the database open at `path`.
///
/// Fails with [`Error::Storage`] when RocksDB cannot answer a property and with
/// [`Error::Io`] when the directory cannot be listed or its filesystem queried.
pub(crate) fn read(db: &DB, path: &Path) -> Result<StorageState> {
    let cfs = [log_cf(db)?, meta_cf(db)?];
    let db_wide = |name: &str| -> Result<u64> { Ok(db.property_int_value(name)?.unwrap_or(0)) };
    let summed = |name: &str| -> Result<u64> {
        let mut total = 0u64;
        for cf in cfs {
            total = total.saturating_add(db.property_int_value_cf(cf, name)?.unwrap_or(0));
        }
        Ok(total)
    };
    let (disk_free_bytes, disk_capacity_bytes) = disk_space(path)?;
    Ok(StorageState {
        writes_stopped: db_wide("rocksdb.is-write-stopped")? != 0,
        delayed_write_rate: db_wide("rocksdb.actual-delayed-write-rate")?,
        pending_compaction_bytes: summed("rocksdb.estimate-pending-compaction-bytes")?,
        running_flushes: db_wide("rocksdb.num-running-flushes")?,
        running_compactions: db_wide("rocksdb.num-running-compactions")?,
        memtable_bytes: summed("rocksdb.size-all-mem-tables")?,
        block_cache_bytes: db.property_int_value_cf(cfs[0], "rocksdb.block-cache-usage")?.unwrap_or(0),
        sst_bytes: summed("rocksdb.live-sst-files-size")?,
        wal_bytes: wal_bytes(path)?,
        blob_bytes: summed("rocksdb.live-blob-file-size")?,
        blob_garbage_bytes: summed("rocksdb.live-blob-file-garbage-size")?,
        l0_files: summed("rocksdb.num-files-at-level0")?,
        disk_free_bytes,
        disk_capacity_bytes,
    })
}

/// Bytes of the WAL files (`*.log`) in `dir`. A file RocksDB deletes while the listing
/// runs is skipped.
fn wal_bytes(dir: &Path) -> Result<u64> {
    let io = |source| Error::Io { path: dir.to_owned(), source };
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_name().to_str().and_then(super::wal_size::wal_number).is_some() {
            match entry.metadata() {
                Ok(m) => total = total.saturating_add(m.len()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
    }
    Ok(total)
}

/// `(free, capacity)` in bytes of the filesystem holding `path`; free is what an
/// unprivileged process may still write.
pub(crate) fn disk_space(path: &Path) -> Result<(u64, u64)> {
    let st = rustix::fs::statvfs(path)
        .map_err(|e| Error::Io { path: path.to_owned(), source: std::io::Error::from(e) })?;
    Ok((st.f_bavail.saturating_mul(st.f_frsize), st.f_blocks.saturating_mul(st.f_frsize)))
}
