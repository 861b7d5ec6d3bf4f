//! Making batches durable, in one place. Every write of a batch to RocksDB and every fsync
//! of its WAL goes through [`Wal`], and so does their accounting (the `syncs` counter,
//! `rocklog_wal_syncs_total`, `rocklog_write_errors_total`) and the poisoning that follows
//! a failure.
//!
//! A batch is either written *synced* (`sync = true`: RocksDB fsyncs the WAL before the
//! write returns — [`Durability::Sync`]) or *unsynced* (in the WAL, in the OS): under
//! [`Durability::Buffered`], and for a pipelined batch the syncer thread fsyncs later with
//! [`Wal::fsync`].

use rocksdb::{DB, WriteBatch, WriteOptions};

use crate::config::Durability;
use crate::shared::{Counters, Shared};
use crate::storage::wal_size::WalPresizer;

/// How one batch is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WriteMode {
    /// RocksDB fsyncs the WAL before the write returns.
    Synced,
    /// The batch reaches the WAL in the OS; an fsync comes later (or, under
    /// `Durability::Buffered`, when asked).
    Unsynced,
}

/// The writer's side of the WAL: the two write options, and whether buffered writes await
/// an fsync.
pub(super) struct Wal {
    durability: Durability,
    synced: WriteOptions,
    unsynced: WriteOptions,
    /// Buffered writes not yet fsynced (only under `Durability::Buffered`).
    dirty: bool,
    /// Sets new WAL files' size after a write (`Config::wal_presize`); dropped after a
    /// failure, which never fails a write.
    presizer: Option<WalPresizer>,
}

impl Wal {
    /// `presizer`: the WAL presizer, if `Config::wal_presize` is on.
    pub fn new(durability: Durability, presizer: Option<WalPresizer>) -> Self {
        let mut synced = WriteOptions::default();
        synced.set_sync(true);
        let mut unsynced = WriteOptions::default();
        unsynced.set_sync(false);
        Wal { durability, synced, unsynced, dirty: false, presizer }
    }

    /// Whether every batch is fsynced before its waiters hear (`Durability::Sync`).
    pub fn syncs_each_batch(&self) -> bool {
        self.durability == Durability::Sync
    }

    /// How a batch is written: synced under `Durability::Sync` unless the syncer thread
    /// will fsync it (`pipelined`), unsynced otherwise.
    pub fn mode(&self, pipelined: bool) -> WriteMode {
        if self.durability == Durability::Sync && !pipelined {
            WriteMode::Synced
        } else {
            WriteMode::Unsynced
        }
    }

    /// Writes one batch. A failure poisons the engine and returns the reason.
    pub fn write(
        &mut self,
        shared: &Shared,
        db: &DB,
        batch: WriteBatch,
        mode: WriteMode,
    ) -> Result<(), String> {
        #[cfg(feature = "__testing")]
        if shared.faults.fail_next_commit.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(failed(shared, "injected write failure".into()));
        }
        let options = match mode {
            WriteMode::Synced => &self.synced,
            WriteMode::Unsynced => &self.unsynced,
        };
        db.write_opt(batch, options).map_err(|e| failed(shared, e.to_string()))?;
        match mode {
            WriteMode::Synced => count_sync(shared),
            WriteMode::Unsynced => self.dirty |= self.durability == Durability::Buffered,
        }
        self.presize(shared);
        Ok(())
    }

    /// Presizes a new WAL file after a write (see [`WalPresizer`]). A failure only stops
    /// presizing, with a warning: the write itself succeeded.
    fn presize(&mut self, shared: &Shared) {
        let Some(presizer) = &mut self.presizer else { return };
        match presizer.after_write() {
            Ok(true) => Counters::add(&shared.stats.wal_files_presized, 1),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot presize RocksDB's WAL file; its fsyncs will also write its size");
                self.presizer = None;
            }
        }
    }

    /// Under `Durability::Buffered`, fsyncs what was written since the last fsync (a
    /// `flush()`); returns whether it fsynced. Nothing to do under `Sync`.
    pub fn flush_buffered(&mut self, shared: &Shared) -> Result<bool, String> {
        if !self.dirty {
            return Ok(false);
        }
        Self::fsync(shared)?;
        self.dirty = false;
        Ok(true)
    }

    /// Whether buffered writes await an fsync (only ever under `Durability::Buffered`).
    pub fn has_unsynced(&self) -> bool {
        self.dirty
    }

    /// Fsyncs the WAL: everything written before is durable when this returns `Ok`. A
    /// failed fsync poisons the engine (after one, the kernel may have dropped the dirty
    /// pages, so a retry could report success for lost data). A closed engine is reported
    /// without poisoning.
    pub fn fsync(shared: &Shared) -> Result<(), String> {
        let db = shared.db().map_err(|e| e.to_string())?;
        #[cfg(feature = "__testing")]
        if shared.faults.fail_next_fsync.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(failed(shared, "WAL fsync failed: injected fsync failure".into()));
        }
        db.flush_wal(true).map_err(|e| failed(shared, format!("WAL fsync failed: {e}")))?;
        count_sync(shared);
        Ok(())
    }
}

fn count_sync(shared: &Shared) {
    shared.stats.syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    shared.metrics.syncs.increment(1);
}

/// Counts a failed write or fsync and poisons the engine; returns the reason.
fn failed(shared: &Shared, reason: String) -> String {
    shared.metrics.write_errors.increment(1);
    shared.poison(reason.clone());
    reason
}
