//! tikv's raft-engine as a baseline (feature `raft-engine`).
//!
//! raft-engine stores protobuf-2 messages and asks the caller how to find an entry's
//! index. The bench's entries travel as a `BytesValue` holding `index`, `term` (8 bytes
//! each, big-endian) and the payload: the same bytes per entry as rocklog's record,
//! without needing a generated Raft protobuf type.

use std::path::Path;
use std::sync::Arc;

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

/// An open raft-engine, written with `sync = true` per append (its write barrier
/// group-commits concurrent writers, as RocksDB's write thread does).
#[derive(Clone)]
pub struct RaftEngine {
    engine: Arc<raft_engine::Engine>,
}

impl RaftEngine {
    /// Opens a raft-engine with its default settings in `dir`.
    pub fn open(dir: &Path) -> Result<Self, BoxError> {
        let dir = dir.to_str().ok_or("raft-engine needs a UTF-8 directory path")?;
        let config = raft_engine::Config { dir: dir.to_owned(), ..Default::default() };
        Ok(RaftEngine { engine: Arc::new(raft_engine::Engine::open(config)?) })
    }

    /// Appends `entries` to `group`, returning once they are synced.
    pub async fn append(&self, group: u64, entries: Vec<Entry>) -> Result<(), BoxError> {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || -> Result<(), BoxError> {
            let messages: Vec<BytesValue> = entries.iter().map(to_message).collect();
            let mut batch = raft_engine::LogBatch::default();
            batch.add_entries::<Msg>(group, &messages)?;
            engine.write(&mut batch, true)?;
            Ok(())
        })
        .await?
    }

    /// Compacts `group` up to `upto.index` and syncs. raft-engine writes its compact
    /// command unsynced (it is redone after a crash); the empty synced write makes the
    /// purge durable like the other backends'.
    pub async fn purge(&self, group: u64, upto: LogId) -> Result<(), BoxError> {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || -> Result<(), BoxError> {
            let mut batch = raft_engine::LogBatch::default();
            batch.add_command(group, raft_engine::Command::Compact { index: upto.index + 1 });
            engine.write(&mut batch, true)?;
            Ok(())
        })
        .await?
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
