//! Blob garbage collection, run only while purges have left garbage to collect
//! ([`Config::blob_gc_garbage_percent`]).
//!
//! RocksDB's blob GC, once on, rewrites every live entry of the oldest quarter of blob
//! files whenever a compaction meets it, whether or not those files hold any garbage. A
//! Raft log purges its oldest entries first, so those files mostly die whole and need no
//! rewrite; what GC is for is a file kept alive by a few entries of a group that purges
//! late. [`BlobGc`] reads how much of the blob files is garbage and turns RocksDB's GC
//! on above the threshold and off below half of it.

use rocksdb::DB;

use super::log_cf;
use crate::config::Config;
use crate::error::Result;

/// The on/off state of RocksDB's blob GC for the `log` column family, as last set.
#[derive(Debug)]
pub(crate) struct BlobGc {
    /// `Config::blob_gc_garbage_percent`; 0: always on, never steered.
    percent: u32,
    /// Whether GC is on now (it starts as `open` set it).
    on: bool,
    /// Whether the engine writes blob files at all.
    blobs: bool,
}

impl BlobGc {
    /// The state `open` left: GC on only when `blob_gc_garbage_percent` is 0.
    pub(crate) fn new(config: &Config) -> BlobGc {
        let percent = config.blob_gc_garbage_percent;
        BlobGc { percent, on: percent == 0, blobs: config.blob_min_size.bytes() > 0 }
    }

    /// Whether GC is on now.
    pub(crate) fn is_on(&self) -> bool {
        self.on
    }

    /// Turns GC on or off for `garbage` bytes of `total` blob bytes. Fails, leaving the
    /// state as it was, when RocksDB refuses the option change.
    pub(crate) fn steer(&mut self, db: &DB, garbage: u64, total: u64) -> Result<()> {
        if self.percent == 0 || !self.blobs {
            return Ok(());
        }
        let wanted = wanted(self.on, self.percent, garbage, total);
        if wanted == self.on {
            return Ok(());
        }
        self.set(db, wanted)?;
        tracing::info!(
            on = wanted,
            garbage,
            total,
            percent = self.percent,
            "rocklog blob garbage collection"
        );
        Ok(())
    }
}

impl BlobGc {
    /// Turns GC on for good, for an engine where nothing will call [`BlobGc::steer`]
    /// (its sampler thread could not start). Does nothing without a database or blob
    /// files, or when GC is already on. Fails when RocksDB refuses the option change.
    pub(crate) fn turn_on(mut self, db: Option<&DB>) -> Result<()> {
        match db {
            Some(db) if self.blobs && !self.on => self.set(db, true),
            _ => Ok(()),
        }
    }

    fn set(&mut self, db: &DB, on: bool) -> Result<()> {
        let value = if on { "true" } else { "false" };
        db.set_options_cf(log_cf(db)?, &[("enable_blob_garbage_collection", value)])?;
        self.on = on;
        Ok(())
    }
}

/// Whether GC should be on: from off, once `garbage` is at least `percent` % of `total`;
/// from on, until it falls below half of that.
fn wanted(on: bool, percent: u32, garbage: u64, total: u64) -> bool {
    if total == 0 {
        return false;
    }
    let garbage = u128::from(garbage) * 100;
    let threshold = u128::from(total) * u128::from(percent);
    if on { garbage * 2 >= threshold } else { garbage >= threshold }
}

#[cfg(test)]
mod tests {
    use super::wanted;

    #[test]
    fn collection_turns_on_at_the_threshold_and_off_below_half_of_it() {
        // Off: on from 25 % of the bytes.
        assert!(!wanted(false, 25, 0, 1_000));
        assert!(!wanted(false, 25, 249, 1_000));
        assert!(wanted(false, 25, 250, 1_000));
        // On: stays on down to 12.5 %, off below.
        assert!(wanted(true, 25, 200, 1_000));
        assert!(wanted(true, 25, 125, 1_000));
        assert!(!wanted(true, 25, 124, 1_000));
        // No blob files: nothing to collect.
        assert!(!wanted(false, 25, 0, 0));
        assert!(!wanted(true, 25, 0, 0));
        // No overflow at the extremes.
        assert!(wanted(false, 90, u64::MAX, u64::MAX));
        assert!(!wanted(false, 90, u64::MAX / 2, u64::MAX));
    }
}
