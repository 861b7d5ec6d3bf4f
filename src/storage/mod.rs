//! Storage: everything that knows RocksDB and the on-disk layout. Nothing here knows the
//! writer or the handles; they call down into it.
//!
//! - [`codec`]: key layout and record encodings (prost), the format version;
//! - [`open`]: classifying a directory, RocksDB options, creating and opening it;
//! - [`recover`]: rebuilding every group's state at open, O(groups);
//! - [`checkpoint`]: a consistent copy of the live database in a new directory;
//! - [`clean_close`]: the record that spares a clean reopen its seeks;
//! - [`statistics`]: RocksDB's own counters of what reached the disk;
//! - [`properties`]: RocksDB's state now: stalls, backlog, memory, file sizes, free space;
//! - [`wal_size`]: presizing the live WAL file so its fsyncs carry no size update;
//! - [`wal_trim`]: removing obsolete WAL files a chunk at a time, off the fsyncs' way;
//! - [`sst_trash`]: the same for obsolete SST and blob files, through a second name.

pub(crate) mod blob_gc;
pub(crate) mod checkpoint;
pub(crate) mod clean_close;
pub(crate) mod codec;
mod dir_watch;
mod open;
pub(crate) mod properties;
mod recover;
pub(crate) mod sst_trash;
mod statistics;
pub(crate) mod wal_size;
pub(crate) mod wal_trim;

use std::collections::HashMap;

use rocksdb::{ColumnFamily, DB, ReadOptions};

use crate::error::{Error, Result};
use crate::state::GroupState;
use codec::{LOG_CF, META_CF};

pub(crate) use open::{open, open_read_only};
pub use properties::StorageState;
pub(crate) use recover::recover;
pub(crate) use statistics::DbStatistics;
pub use statistics::StorageStats;

/// The in-memory state of every group, recovered at open and kept by the writer.
pub(crate) type Groups = HashMap<u64, GroupState>;

/// The `log` column family of an open database.
pub(crate) fn log_cf(db: &DB) -> Result<&ColumnFamily> {
    db.cf_handle(LOG_CF).ok_or_else(|| Error::corruption(0, "column family", "`log` is missing"))
}

/// The `meta` column family of an open database.
pub(crate) fn meta_cf(db: &DB) -> Result<&ColumnFamily> {
    db.cf_handle(META_CF).ok_or_else(|| Error::corruption(0, "column family", "`meta` is missing"))
}

/// Read options for iterating `[lo, hi)` of one group's log.
pub(crate) fn range_read_options(group: u64, hi: Option<u64>) -> ReadOptions {
    let mut ro = ReadOptions::default();
    ro.set_iterate_upper_bound(codec::log_bound(group, hi));
    ro
}

/// Flushes both column families' memtables into SST files and waits for it, so the next
/// open has no WAL to replay. Called on a clean close only: every acknowledged write is
/// already in the WAL, so a failure here loses nothing and only makes the next open
/// slower.
pub(crate) fn flush_memtables(db: &DB) -> Result<()> {
    let mut opts = rocksdb::FlushOptions::default();
    opts.set_wait(true);
    db.flush_cfs_opt(&[log_cf(db)?, meta_cf(db)?], &opts)?;
    Ok(())
}
