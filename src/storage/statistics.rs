//! RocksDB's own counters of the engine's database: what reached the disk and in which
//! form (WAL, flushed SST, compaction output, blob files), and how long writers stalled.

use rocksdb::Options;
use rocksdb::statistics::{StatsLevel, Ticker};

/// RocksDB's counters for the engine's database since it opened
/// ([`LogStore::storage_stats`](crate::LogStore::storage_stats)). Together with
/// [`Stats::appended_bytes`](crate::Stats::appended_bytes) they give the write
/// amplification of each stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StorageStats {
    /// Bytes written to the WAL.
    pub wal_bytes: u64,
    /// WAL fsyncs RocksDB performed.
    pub wal_syncs: u64,
    /// Bytes written by memtable flushes: SST files, and blob files when entries go to
    /// blob files. Entries purged while still in a memtable are dropped by the flush and
    /// never counted here.
    pub flush_bytes: u64,
    /// Bytes of SST files written by compactions.
    pub compaction_bytes: u64,
    /// Bytes of blob files written (entries at least
    /// [`Config::blob_min_size`](crate::Config::blob_min_size)), by flushes (also counted
    /// in `flush_bytes`) and by blob garbage collection.
    pub blob_bytes: u64,
    /// Microseconds writers were stalled or slowed down by RocksDB (too many memtables or
    /// L0 files waiting for flush or compaction).
    pub stall_micros: u64,
    /// Point lookups (`get`) made in the database, by the writer and by reads. The writer
    /// looks an entry up only to check a term it does not hold in memory, one below the
    /// group's last term run (see [`Group::purge`](crate::Group::purge)). Range reads are
    /// iterators and not counted.
    pub point_reads: u64,
}

/// The statistics object RocksDB fills for one database: a copy of the options it was
/// opened with, which shares that object.
pub(crate) struct DbStatistics {
    options: Options,
}

impl DbStatistics {
    /// Turns counters on in `options` (tickers only: no timers or histograms on the write
    /// path) and keeps a handle on them.
    pub fn enable(options: &mut Options) -> DbStatistics {
        options.enable_statistics();
        options.set_statistics_level(StatsLevel::ExceptHistogramOrTimers);
        DbStatistics { options: options.clone() }
    }

    /// The counters now.
    pub fn snapshot(&self) -> StorageStats {
        let t = |ticker| self.options.get_ticker_count(ticker);
        StorageStats {
            wal_bytes: t(Ticker::WalFileBytes),
            wal_syncs: t(Ticker::WalFileSynced),
            flush_bytes: t(Ticker::FlushWriteBytes),
            compaction_bytes: t(Ticker::CompactWriteBytes),
            blob_bytes: t(Ticker::BlobDbBlobFileBytesWritten),
            stall_micros: t(Ticker::StallMicros),
            point_reads: t(Ticker::NumberKeysRead),
        }
    }
}
