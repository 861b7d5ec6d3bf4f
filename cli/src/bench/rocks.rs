//! Bare RocksDB as a baseline: what a user who writes Raft entries into RocksDB by hand
//! gets, with RocksDB's own write-group commit merging concurrent synced writers.

use std::path::Path;

use prost::Message;
use rocklog::{Config, Entry, LogId};
use rocksdb::statistics::Ticker;

/// Errors of the baseline (the same type as the driver's, named here so the baseline
/// depends on nothing of the bench).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The key of `group`'s entry `index`: both big-endian, so a group's entries sort in order.
fn key(group: u64, index: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&group.to_be_bytes());
    k[8..].copy_from_slice(&index.to_be_bytes());
    k
}

/// An open bare RocksDB.
pub struct Rocks {
    db: rocksdb::DB,
    opts: rocksdb::Options,
    /// The seed engine's way: manual WAL flush, write unsynced, then `flush_wal(true)`.
    seed: bool,
}

impl Rocks {
    /// Opens a RocksDB in `dir` with the options a hand-written store would start from:
    /// defaults plus rocklog's memtable size and two background jobs.
    pub fn open(dir: &Path, config: &Config, seed: bool) -> Result<Self, BoxError> {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.enable_statistics();
        opts.set_manual_wal_flush(seed);
        opts.set_write_buffer_size(usize::try_from(config.write_buffer_size.bytes()).unwrap_or(64 << 20));
        opts.set_max_background_jobs(2);
        let db = rocksdb::DB::open(&opts, dir.join("rocksdb"))?;
        Ok(Rocks { db, opts, seed })
    }

    fn write(&self, batch: rocksdb::WriteBatch) -> Result<(), BoxError> {
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(!self.seed);
        self.db.write_opt(batch, &wo)?;
        if self.seed {
            self.db.flush_wal(true)?;
        }
        Ok(())
    }

    /// Writes `entries` of `group` in one batch, durably.
    pub fn append(&self, group: u64, entries: &[Entry]) -> Result<(), BoxError> {
        let mut batch = rocksdb::WriteBatch::default();
        for e in entries {
            batch.put(key(group, e.index), e.encode_to_vec());
        }
        self.write(batch)
    }

    /// Deletes every listed group's entries up to its log id, in one durable batch.
    pub fn purge(&self, upto: &[(u64, LogId)]) -> Result<(), BoxError> {
        let mut batch = rocksdb::WriteBatch::default();
        for (group, id) in upto {
            batch.delete_range(key(*group, 0), key(*group, id.index + 1));
        }
        self.write(batch)
    }

    /// Reads up to `n` entries of `group` from `lo`; the number read.
    pub fn read(&self, group: u64, lo: u64, n: u64) -> Result<usize, BoxError> {
        let mut ro = rocksdb::ReadOptions::default();
        ro.set_iterate_upper_bound(key(group, lo + n).to_vec());
        let mut it = self.db.raw_iterator_opt(ro);
        it.seek(key(group, lo));
        let mut count = 0;
        while let Some(v) = it.value() {
            Entry::decode(v)?;
            count += 1;
            it.next();
        }
        it.status()?;
        Ok(count)
    }

    /// Bytes written into SST files by flushes and by compactions, and microseconds
    /// writers stalled, from RocksDB's statistics.
    pub fn sst_bytes(&self) -> [u64; 3] {
        let t = |ticker| self.opts.get_ticker_count(ticker);
        [t(Ticker::FlushWriteBytes), t(Ticker::CompactWriteBytes), t(Ticker::StallMicros)]
    }

    /// WAL syncs so far, from RocksDB's statistics.
    pub fn syncs(&self) -> u64 {
        self.opts.get_ticker_count(Ticker::WalFileSynced)
    }
}
