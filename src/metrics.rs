//! Metrics: what the engine records, and the one-call Prometheus exporter.
//!
//! Everything goes through the [`metrics`] facade, so an application can route it to any
//! recorder. Names carry the `rocklog_` prefix and base units (`_seconds`, `_bytes`);
//! counters end in `_total`. There are no per-group labels (their number is unbounded);
//! the read histogram has a fixed `op` label.
//!
//! Handles are resolved once, when the engine opens, inside whatever recorder is current
//! then: open the engine inside [`metrics::with_local_recorder`] to capture its metrics in
//! a test without touching the process's global recorder.

use std::net::SocketAddr;

use metrics::{
    Counter, Gauge, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::error::{Error, Result};
use crate::storage::{StorageState, StorageStats};

/// Commit duration: one `WriteBatch` write plus its fsync (or a flush's fsync alone).
pub const COMMIT_DURATION: &str = "rocklog_commit_duration_seconds";
/// Write latency as callers see it: from enqueueing a command to its acknowledgement.
pub const WRITE_LATENCY: &str = "rocklog_write_latency_seconds";
/// Commands per group commit.
pub const BATCH_COMMANDS: &str = "rocklog_batch_commands";
/// Entries per group commit.
pub const BATCH_ENTRIES: &str = "rocklog_batch_entries";
/// Encoded entry bytes per group commit.
pub const BATCH_BYTES: &str = "rocklog_batch_bytes";
/// Commands waiting in the writer's channel when a batch starts.
pub const QUEUE_DEPTH: &str = "rocklog_queue_depth";
/// Group commits (each one write and at most one fsync).
pub const COMMITS: &str = "rocklog_commits_total";
/// WAL fsyncs (one per commit under `Sync`; one per effective flush under `Buffered`).
pub const SYNCS: &str = "rocklog_syncs_total";
/// Entries appended (acknowledged).
pub const APPENDED_ENTRIES: &str = "rocklog_appended_entries_total";
/// Encoded entry bytes appended (acknowledged).
pub const APPENDED_BYTES: &str = "rocklog_appended_bytes_total";
/// Truncations committed.
pub const TRUNCATES: &str = "rocklog_truncates_total";
/// Purges committed.
pub const PURGES: &str = "rocklog_purges_total";
/// Commands refused as bad input.
pub const REJECTED: &str = "rocklog_rejected_commands_total";
/// Failed writes or syncs (each poisons the engine).
pub const WRITE_ERRORS: &str = "rocklog_write_errors_total";
/// 1 while the engine is poisoned, 0 otherwise.
pub const POISONED: &str = "rocklog_poisoned";
/// Duration of reads, labelled by `op` (`entry`, `entries`, `term`).
pub const READ_DURATION: &str = "rocklog_read_duration_seconds";

/// 1 while RocksDB stops every write, 0 otherwise (sampled).
pub const STORAGE_WRITES_STOPPED: &str = "rocklog_storage_writes_stopped";
/// The rate RocksDB delays writes to, bytes per second; 0 when not delayed (sampled).
pub const STORAGE_DELAYED_WRITE_RATE: &str = "rocklog_storage_delayed_write_rate_bytes";
/// Bytes compaction must rewrite to bring every level under its target (sampled).
pub const STORAGE_PENDING_COMPACTION: &str = "rocklog_storage_pending_compaction_bytes";
/// Memtable flushes running (sampled).
pub const STORAGE_RUNNING_FLUSHES: &str = "rocklog_storage_running_flushes";
/// Compactions running (sampled).
pub const STORAGE_RUNNING_COMPACTIONS: &str = "rocklog_storage_running_compactions";
/// Bytes held by memtables (sampled).
pub const STORAGE_MEMTABLE: &str = "rocklog_storage_memtable_bytes";
/// Bytes held by the block cache (sampled).
pub const STORAGE_BLOCK_CACHE: &str = "rocklog_storage_block_cache_bytes";
/// Bytes of live SST files (sampled).
pub const STORAGE_SST: &str = "rocklog_storage_sst_bytes";
/// Bytes of WAL files (sampled).
pub const STORAGE_WAL: &str = "rocklog_storage_wal_bytes";
/// Bytes of live blob files (sampled; 0 without blob files).
pub const STORAGE_BLOB: &str = "rocklog_storage_blob_bytes";
/// Bytes of live blob files that hold purged entries (sampled).
pub const STORAGE_BLOB_GARBAGE: &str = "rocklog_storage_blob_garbage_bytes";
/// 1 while blob garbage collection is on, else 0 (sampled; see
/// [`Config::blob_gc_garbage_percent`](crate::Config::blob_gc_garbage_percent)).
pub const STORAGE_BLOB_GC: &str = "rocklog_storage_blob_gc_active";
/// SST files in level 0 (sampled).
pub const STORAGE_L0_FILES: &str = "rocklog_storage_l0_files";
/// Free bytes on the data directory's filesystem (sampled).
pub const STORAGE_DISK_FREE: &str = "rocklog_storage_disk_free_bytes";
/// Size of the data directory's filesystem in bytes (sampled).
pub const STORAGE_DISK_CAPACITY: &str = "rocklog_storage_disk_capacity_bytes";
/// Bytes RocksDB wrote to the WAL since the engine opened (sampled).
pub const STORAGE_WAL_WRITTEN: &str = "rocklog_storage_wal_written_bytes_total";
/// Bytes memtable flushes wrote since the engine opened (sampled).
pub const STORAGE_FLUSH_WRITTEN: &str = "rocklog_storage_flush_written_bytes_total";
/// Bytes compactions wrote since the engine opened (sampled).
pub const STORAGE_COMPACTION_WRITTEN: &str = "rocklog_storage_compaction_written_bytes_total";
/// Share of the time, 0 to 1, the writer spent stalled or slowed by RocksDB since the
/// previous sample (a gauge: a counter of seconds would be whole seconds only).
pub const STORAGE_STALL_RATIO: &str = "rocklog_storage_write_stall_ratio";
/// How often the `rocklog_storage_*` series are sampled, off the write path.
pub const STORAGE_SAMPLE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Histogram buckets for durations: 50 µs to ~13 s, about four per decade.
pub const DURATION_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    13.0,
];
/// Histogram buckets for counts per batch (commands, entries), up to the largest
/// `max_batch_entries` allowed.
pub const COUNT_BUCKETS: &[f64] = &[
    1.0,
    2.0,
    4.0,
    8.0,
    16.0,
    32.0,
    64.0,
    128.0,
    256.0,
    512.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
];
/// Histogram buckets for bytes per batch: 256 B to 1 GiB by powers of 4.
pub const BYTE_BUCKETS: &[f64] = &[
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
    268_435_456.0,
    1_073_741_824.0,
];

/// Read operations, the values of [`READ_DURATION`]'s `op` label.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ReadOp {
    Entry = 0,
    Entries = 1,
    Term = 2,
}

/// Describes every rocklog metric (help text and unit) to the current recorder.
pub fn describe() {
    describe_histogram!(
        COMMIT_DURATION,
        Unit::Seconds,
        "Duration of one group commit: WriteBatch write plus fsync."
    );
    describe_histogram!(
        WRITE_LATENCY,
        Unit::Seconds,
        "Write latency seen by callers: enqueue to acknowledgement."
    );
    describe_histogram!(BATCH_COMMANDS, Unit::Count, "Commands carried by one group commit.");
    describe_histogram!(BATCH_ENTRIES, Unit::Count, "Entries carried by one group commit.");
    describe_histogram!(BATCH_BYTES, Unit::Bytes, "Encoded entry bytes carried by one group commit.");
    describe_gauge!(
        QUEUE_DEPTH,
        Unit::Count,
        "Commands waiting in the writer's channel when a batch starts."
    );
    describe_counter!(COMMITS, Unit::Count, "Group commits written.");
    describe_counter!(
        SYNCS,
        Unit::Count,
        "WAL fsyncs: one per commit under Sync, one per flush under Buffered."
    );
    describe_counter!(APPENDED_ENTRIES, Unit::Count, "Entries appended and acknowledged.");
    describe_counter!(APPENDED_BYTES, Unit::Bytes, "Encoded entry bytes appended and acknowledged.");
    describe_counter!(TRUNCATES, Unit::Count, "Log truncations committed.");
    describe_counter!(PURGES, Unit::Count, "Log purges committed.");
    describe_counter!(REJECTED, Unit::Count, "Commands refused as bad input (nothing written).");
    describe_counter!(WRITE_ERRORS, Unit::Count, "Failed writes or fsyncs; each poisons the engine.");
    describe_gauge!(POISONED, Unit::Count, "1 while the engine is poisoned by a write failure, else 0.");
    describe_histogram!(READ_DURATION, Unit::Seconds, "Duration of log reads, by op.");
    describe_storage();
}

/// Describes the sampled `rocklog_storage_*` series.
fn describe_storage() {
    let gauges = [
        (STORAGE_WRITES_STOPPED, Unit::Count, "1 while RocksDB stops every write (write stall), else 0."),
        (
            STORAGE_DELAYED_WRITE_RATE,
            Unit::Bytes,
            "Bytes per second RocksDB slows writes to while delaying them; 0 when not delayed.",
        ),
        (
            STORAGE_PENDING_COMPACTION,
            Unit::Bytes,
            "RocksDB's estimate of the bytes compaction must rewrite (the compaction backlog).",
        ),
        (STORAGE_RUNNING_FLUSHES, Unit::Count, "Memtable flushes running."),
        (STORAGE_RUNNING_COMPACTIONS, Unit::Count, "Compactions running."),
        (STORAGE_MEMTABLE, Unit::Bytes, "Bytes held by RocksDB's memtables."),
        (STORAGE_BLOCK_CACHE, Unit::Bytes, "Bytes held by RocksDB's block cache."),
        (STORAGE_SST, Unit::Bytes, "Bytes of live SST files."),
        (STORAGE_WAL, Unit::Bytes, "Bytes of WAL files in the data directory."),
        (STORAGE_BLOB, Unit::Bytes, "Bytes of live blob files (0 without blob files)."),
        (STORAGE_BLOB_GARBAGE, Unit::Bytes, "Bytes of live blob files that hold purged entries."),
        (STORAGE_BLOB_GC, Unit::Count, "1 while blob garbage collection is on, else 0."),
        (STORAGE_L0_FILES, Unit::Count, "SST files in level 0 (writes slow at 20, stop at 36)."),
        (STORAGE_DISK_FREE, Unit::Bytes, "Free bytes on the data directory's filesystem."),
        (STORAGE_DISK_CAPACITY, Unit::Bytes, "Size of the data directory's filesystem."),
    ];
    for (name, unit, help) in gauges {
        describe_gauge!(name, unit, help);
    }
    describe_counter!(STORAGE_WAL_WRITTEN, Unit::Bytes, "Bytes RocksDB wrote to the WAL.");
    describe_counter!(
        STORAGE_FLUSH_WRITTEN,
        Unit::Bytes,
        "Bytes memtable flushes wrote (SST and blob files)."
    );
    describe_counter!(STORAGE_COMPACTION_WRITTEN, Unit::Bytes, "Bytes compactions wrote.");
    describe_gauge!(
        STORAGE_STALL_RATIO,
        Unit::Count,
        "Share of the last sampling interval (0 to 1) the writer spent stalled or slowed by RocksDB."
    );
}

/// The sampled `rocklog_storage_*` series.
#[derive(Clone)]
pub(crate) struct StorageMetrics {
    writes_stopped: Gauge,
    delayed_write_rate: Gauge,
    pending_compaction: Gauge,
    running_flushes: Gauge,
    running_compactions: Gauge,
    memtable: Gauge,
    block_cache: Gauge,
    sst: Gauge,
    wal: Gauge,
    blob: Gauge,
    blob_garbage: Gauge,
    blob_gc: Gauge,
    l0_files: Gauge,
    disk_free: Gauge,
    disk_capacity: Gauge,
    wal_written: Counter,
    flush_written: Counter,
    compaction_written: Counter,
    stall_ratio: Gauge,
}

impl StorageMetrics {
    fn new() -> Self {
        StorageMetrics {
            writes_stopped: gauge!(STORAGE_WRITES_STOPPED),
            delayed_write_rate: gauge!(STORAGE_DELAYED_WRITE_RATE),
            pending_compaction: gauge!(STORAGE_PENDING_COMPACTION),
            running_flushes: gauge!(STORAGE_RUNNING_FLUSHES),
            running_compactions: gauge!(STORAGE_RUNNING_COMPACTIONS),
            memtable: gauge!(STORAGE_MEMTABLE),
            block_cache: gauge!(STORAGE_BLOCK_CACHE),
            sst: gauge!(STORAGE_SST),
            wal: gauge!(STORAGE_WAL),
            blob: gauge!(STORAGE_BLOB),
            blob_garbage: gauge!(STORAGE_BLOB_GARBAGE),
            blob_gc: gauge!(STORAGE_BLOB_GC),
            l0_files: gauge!(STORAGE_L0_FILES),
            disk_free: gauge!(STORAGE_DISK_FREE),
            disk_capacity: gauge!(STORAGE_DISK_CAPACITY),
            wal_written: counter!(STORAGE_WAL_WRITTEN),
            flush_written: counter!(STORAGE_FLUSH_WRITTEN),
            compaction_written: counter!(STORAGE_COMPACTION_WRITTEN),
            stall_ratio: gauge!(STORAGE_STALL_RATIO),
        }
    }

    /// Records one sample: the state now, RocksDB's counters since open, the share of
    /// the time since the previous sample the writer was stalled, and whether blob
    /// garbage collection is on.
    pub fn record(&self, state: &StorageState, counters: &StorageStats, stall_ratio: f64, blob_gc: bool) {
        // Gauges take f64: byte counts lose precision only above 2^53 (8 PiB).
        #[allow(clippy::cast_precision_loss)]
        let f = |v: u64| v as f64;
        self.writes_stopped.set(if state.writes_stopped { 1.0 } else { 0.0 });
        self.delayed_write_rate.set(f(state.delayed_write_rate));
        self.pending_compaction.set(f(state.pending_compaction_bytes));
        self.running_flushes.set(f(state.running_flushes));
        self.running_compactions.set(f(state.running_compactions));
        self.memtable.set(f(state.memtable_bytes));
        self.block_cache.set(f(state.block_cache_bytes));
        self.sst.set(f(state.sst_bytes));
        self.wal.set(f(state.wal_bytes));
        self.blob.set(f(state.blob_bytes));
        self.blob_garbage.set(f(state.blob_garbage_bytes));
        self.blob_gc.set(if blob_gc { 1.0 } else { 0.0 });
        self.l0_files.set(f(state.l0_files));
        self.disk_free.set(f(state.disk_free_bytes));
        self.disk_capacity.set(f(state.disk_capacity_bytes));
        self.wal_written.absolute(counters.wal_bytes);
        self.flush_written.absolute(counters.flush_bytes);
        self.compaction_written.absolute(counters.compaction_bytes);
        self.stall_ratio.set(stall_ratio);
    }
}

/// The engine's metric handles, resolved once at open.
#[derive(Clone)]
pub(crate) struct Metrics {
    pub commit_duration: Histogram,
    pub write_latency: Histogram,
    pub batch_commands: Histogram,
    pub batch_entries: Histogram,
    pub batch_bytes: Histogram,
    pub queue_depth: Gauge,
    pub commits: Counter,
    pub syncs: Counter,
    pub appended_entries: Counter,
    pub appended_bytes: Counter,
    pub truncates: Counter,
    pub purges: Counter,
    pub rejected: Counter,
    pub write_errors: Counter,
    pub poisoned: Gauge,
    pub storage: StorageMetrics,
    read_duration: [Histogram; 3],
}

impl Metrics {
    /// Describes and resolves every metric in the current recorder.
    pub fn new() -> Self {
        describe();
        let poisoned = gauge!(POISONED);
        poisoned.set(0.0);
        Metrics {
            commit_duration: histogram!(COMMIT_DURATION),
            write_latency: histogram!(WRITE_LATENCY),
            batch_commands: histogram!(BATCH_COMMANDS),
            batch_entries: histogram!(BATCH_ENTRIES),
            batch_bytes: histogram!(BATCH_BYTES),
            queue_depth: gauge!(QUEUE_DEPTH),
            commits: counter!(COMMITS),
            syncs: counter!(SYNCS),
            appended_entries: counter!(APPENDED_ENTRIES),
            appended_bytes: counter!(APPENDED_BYTES),
            truncates: counter!(TRUNCATES),
            purges: counter!(PURGES),
            rejected: counter!(REJECTED),
            write_errors: counter!(WRITE_ERRORS),
            poisoned,
            storage: StorageMetrics::new(),
            read_duration: [
                histogram!(READ_DURATION, "op" => "entry"),
                histogram!(READ_DURATION, "op" => "entries"),
                histogram!(READ_DURATION, "op" => "term"),
            ],
        }
    }

    pub fn read(&self, op: ReadOp) -> &Histogram {
        &self.read_duration[op as usize]
    }
}

/// A Prometheus builder with rocklog's histogram buckets (so every histogram is exposed as
/// real `_bucket` series that `histogram_quantile` can aggregate across instances, not as
/// the exporter's default summaries). Add a listener, or call `build_recorder()` for tests.
///
/// Fails with [`Error::InvalidConfig`] only if the bucket lists were empty, which they
/// are not; the `Result` keeps the exporter's own error out of the signature.
pub fn prometheus_builder() -> Result<PrometheusBuilder> {
    let err =
        |e: metrics_exporter_prometheus::BuildError| Error::InvalidConfig(format!("prometheus buckets: {e}"));
    // Matched by full name, so an application's own histograms keep their own buckets.
    let mut builder = PrometheusBuilder::new();
    for name in [COMMIT_DURATION, WRITE_LATENCY, READ_DURATION] {
        builder =
            builder.set_buckets_for_metric(Matcher::Full(name.into()), DURATION_BUCKETS).map_err(err)?;
    }
    builder
        .set_buckets_for_metric(Matcher::Full(BATCH_COMMANDS.into()), COUNT_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_ENTRIES.into()), COUNT_BUCKETS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_BYTES.into()), BYTE_BUCKETS))
        .map_err(err)
}

/// The default address of the metrics listener: loopback only, so metrics are not
/// exposed beyond the machine unless asked for.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9184";

/// Installs the Prometheus exporter as the process's global recorder, serving
/// `GET /metrics` on `addr` (use [`DEFAULT_METRICS_ADDR`] for loopback), and describes
/// rocklog's metrics. Call it once, before opening engines.
///
/// Fails with [`Error::InvalidConfig`] if a global recorder is already installed or the
/// address cannot be bound.
pub fn install_prometheus(addr: SocketAddr) -> Result<()> {
    prometheus_builder()?.with_http_listener(addr).install().map_err(|e| {
        Error::InvalidConfig(format!("cannot install the Prometheus exporter on {addr}: {e}"))
    })?;
    describe();
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Every metric name this module defines has its row in `docs/operations.md`'s tables,
    /// so a new metric cannot ship undocumented.
    #[test]
    fn every_metric_is_documented() {
        let operations = include_str!("../docs/operations.md");
        let names: Vec<&str> = include_str!("metrics.rs")
            .lines()
            .filter(|line| line.starts_with("pub const ") && line.contains(": &str = \"rocklog_"))
            .filter_map(|line| line.split('"').nth(1))
            .collect();
        assert!(names.len() > 20, "{names:?}");
        for name in names {
            // A labelled metric is written with its labels: `name{label}`.
            let (plain, labelled) = (format!("`{name}`"), format!("`{name}{{"));
            assert!(
                operations.lines().any(|line| line.starts_with("| `rocklog_")
                    && (line.contains(&plain) || line.contains(&labelled))),
                "docs/operations.md has no row for {plain}"
            );
        }
    }
}
