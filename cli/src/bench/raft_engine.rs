//! tikv's raft-engine as a baseline (feature `raft-engine`).
//!
//! raft-engine stores protobuf-2 messages and asks the caller how to find an entry's
//! index. The bench's entries travel as a `BytesValue` holding `index`, `term` (8 bytes
//! each, big-endian) and the payload: the same bytes per entry as rocklog's record,
//! without needing a generated Raft protobuf type.

use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use protobuf::well_known_types::BytesValue;
use rocklog::{Entry, LogId};

/// Errors of the baseline (the same type as the driver's, named here so the baseline
/// depends on nothing of the bench).
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How raft-engine finds the index of the bench's entries.
pub struct Msg;

impl raft_engine::MessageExt for Msg {
    type Entry = BytesValue;

    fn index(e: &BytesValue) -> u64 {
        e.value.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes)
    }
}

fn to_message(e: &Entry) -> BytesValue {
    let mut value = Vec::with_capacity(16 + e.payload.len());
    value.extend_from_slice(&e.index.to_be_bytes());
    value.extend_from_slice(&e.term.to_be_bytes());
    value.extend_from_slice(&e.payload);
    BytesValue { value, ..Default::default() }
}

/// How often the engine's expired files are purged, as TiKV's raftstore does on its
/// `raft-engine-purge-interval` tick (default 10 s): the step that rewrites or frees old
/// log files, and so the one that feeds log recycling.
const PURGE_INTERVAL: Duration = Duration::from_secs(10);

/// raft-engine configured as TiKV configures it (TiKV's `[raft-engine]` defaults):
/// format version 2 with log recycling, 128 MiB target files, batches over 8 KiB
/// lz4-compressed, tolerate-tail-corruption recovery with 4 threads, purge threshold
/// 10 GiB. `bytes-per-sync` stays unset: TiKV's documented 4 MiB has been deprecated
/// since TiKV 6.5 and raft-engine 0.4 ignores it (it only warns). These are also
/// raft-engine 0.4.2's `Config::default()`; they are spelled out so a change of either
/// default cannot change the baseline silently.
pub fn tikv_config(dir: &str) -> raft_engine::Config {
    raft_engine::Config {
        dir: dir.to_owned(),
        format_version: raft_engine::Version::V2,
        enable_log_recycle: true,
        prefill_for_recycle: false,
        bytes_per_sync: None,
        target_file_size: raft_engine::ReadableSize::mb(128),
        batch_compression_threshold: raft_engine::ReadableSize::kb(8),
        recovery_mode: raft_engine::RecoveryMode::TolerateTailCorruption,
        recovery_threads: 4,
        purge_threshold: raft_engine::ReadableSize::gb(10),
        ..Default::default()
    }
}

/// An open raft-engine, written with `sync = true` per append from the caller's own
/// thread (its write barrier group-commits concurrent writers, as RocksDB's write
/// thread does), with a background thread purging expired files as TiKV's does.
pub struct RaftEngine {
    engine: Arc<raft_engine::Engine>,
    /// Dropping it stops the purge thread.
    stop_purging: Option<mpsc::Sender<()>>,
    purger: Option<std::thread::JoinHandle<()>>,
}

impl RaftEngine {
    /// Opens a raft-engine with TiKV's settings ([`tikv_config`]) in `dir`.
    pub fn open(dir: &Path) -> Result<Self, BoxError> {
        let dir = dir.to_str().ok_or("raft-engine needs a UTF-8 directory path")?;
        let engine = Arc::new(raft_engine::Engine::open(tikv_config(dir))?);
        let (stop_purging, stopped) = mpsc::channel::<()>();
        let purger = {
            let engine = Arc::clone(&engine);
            std::thread::Builder::new().name("raft-engine-purge".into()).spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(PURGE_INTERVAL) {
                    // What TiKV does with the regions it returns (force-compact them) has
                    // no counterpart here: the bench's groups purge on their own schedule.
                    let _ = engine.purge_expired_files();
                }
            })?
        };
        Ok(RaftEngine { engine, stop_purging: Some(stop_purging), purger: Some(purger) })
    }

    /// Appends `entries` to `group`, returning once they are synced.
    pub fn append(&self, group: u64, entries: &[Entry]) -> Result<(), BoxError> {
        let messages: Vec<BytesValue> = entries.iter().map(to_message).collect();
        let mut batch = raft_engine::LogBatch::default();
        batch.add_entries::<Msg>(group, &messages)?;
        self.engine.write(&mut batch, true)?;
        Ok(())
    }

    /// Compacts every listed group up to its log id in one batch, and syncs. (TiKV's log
    /// GC writes its compact commands unsynced, as they are redone after a crash; the
    /// synced write makes the purge durable like the other backends'.)
    pub fn purge(&self, upto: &[(u64, LogId)]) -> Result<(), BoxError> {
        let mut batch = raft_engine::LogBatch::default();
        for (group, id) in upto {
            batch.add_command(*group, raft_engine::Command::Compact { index: id.index + 1 });
        }
        self.engine.write(&mut batch, true)?;
        Ok(())
    }

    /// Reads up to `n` entries of `group` from `lo` (fewer where the log ends; none when
    /// `lo` was purged).
    pub fn read(&self, group: u64, lo: u64, n: u64) -> Result<usize, BoxError> {
        let (Some(first), Some(last)) = (self.engine.first_index(group), self.engine.last_index(group))
        else {
            return Ok(0);
        };
        let end = (lo + n).min(last + 1);
        if lo < first || lo >= end {
            return Ok(0);
        }
        let mut out = Vec::new();
        match self.engine.fetch_entries_to::<Msg>(group, lo, end, None, &mut out) {
            Ok(n) => Ok(n),
            // A purge ran between reading the bounds and fetching: as rocklog's reader
            // counts a range purged under it, this read found nothing.
            Err(raft_engine::Error::EntryCompacted | raft_engine::Error::EntryNotFound) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// fsyncs so far: the sample count of raft-engine's sync-duration histogram.
    pub fn syncs() -> u64 {
        prometheus::gather()
            .iter()
            .filter(|f| f.get_name() == "raft_engine_sync_log_duration_seconds")
            .flat_map(prometheus::proto::MetricFamily::get_metric)
            .map(|m| m.get_histogram().get_sample_count())
            .sum()
    }
}

impl Drop for RaftEngine {
    fn drop(&mut self) {
        self.stop_purging.take();
        if let Some(purger) = self.purger.take() {
            let _ = purger.join();
        }
    }
}
