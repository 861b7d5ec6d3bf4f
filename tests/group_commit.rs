//! Group commit is real: many concurrent writers share few fsyncs, every entry lands in
//! order, and the metrics tell the same story as the counters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::ents;
use rocklog::{Config, LogStore};

/// Concurrent writers, one group each.
const TASKS: u64 = 64;
const APPENDS: u64 = 40;

/// One task per group, each appending `APPENDS` single entries one after the other.
async fn hammer(store: &LogStore, groups: u64) {
    let mut tasks = Vec::new();
    for g in 0..groups {
        let group = store.group(g);
        tasks.push(tokio::spawn(async move {
            for i in 1..=APPENDS {
                group.append(&ents(i..i + 1, 1)).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs_and_all_land_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::start(Config::new(dir.path())).unwrap();
    hammer(&store, TASKS).await;

    for g in 0..TASKS {
        let indexes: Vec<u64> = store.group(g).entries(.., None).unwrap().iter().map(|e| e.index).collect();
        assert_eq!(indexes, (1..=APPENDS).collect::<Vec<_>>(), "group {g}");
    }
    let stats = store.stats();
    assert_eq!(stats.appended_entries, TASKS * APPENDS);
    assert_eq!(stats.commands, TASKS * APPENDS);
    assert!(
        stats.commits * 4 <= stats.commands,
        "group commit should put several commands in each fsync: {stats:?}"
    );
    // Every commit is covered by an fsync; under `pipelined_sync` one fsync can cover
    // several commits written while the previous fsync ran.
    assert!(stats.syncs >= 1 && stats.syncs <= stats.commits, "{stats:?}");
}

/// Without `pipelined_sync`, every commit under `Sync` is its own fsync, done inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pipelining_every_commit_is_fsynced_inline() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.pipelined_sync = false;
    let store = LogStore::start(config).unwrap();
    hammer(&store, TASKS).await;
    let stats = store.stats();
    assert_eq!(stats.appended_entries, TASKS * APPENDS);
    assert!(stats.commits * 4 <= stats.commands, "{stats:?}");
    assert_eq!(stats.syncs, stats.commits, "Sync durability fsyncs every commit: {stats:?}");
}

/// The value of the unlabelled series `name` in a Prometheus rendering.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
}

#[test]
// Counters render as exact integers, well below 2^53.
#[allow(clippy::float_cmp, clippy::cast_precision_loss)]
fn metrics_render_through_a_local_recorder() {
    let recorder = rocklog::metrics::prometheus_builder().unwrap().build_recorder();
    let handle = recorder.handle();
    let dir = tempfile::tempdir().unwrap();
    let store = metrics::with_local_recorder(&recorder, || LogStore::start(Config::new(dir.path()))).unwrap();
    let store = Arc::new(store);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    rt.block_on(async {
        hammer(&store, 16).await;
        let g = store.group(0);
        g.truncate(APPENDS).await.unwrap();
        g.purge(rocklog::LogId::new(1, 2)).await.unwrap();
        assert!(g.append(&ents(100..101, 1)).await.is_err());
        g.entries(3..10, None).unwrap();
        g.entry(5).unwrap();
        g.term(5).unwrap();
    });
    let text = handle.render();
    let value = |name: &str| sample(&text, name);
    let stats = store.stats();
    assert_eq!(value("rocklog_appended_entries_total"), (16 * APPENDS) as f64);
    assert_eq!(value("rocklog_commits_total"), stats.commits as f64);
    assert_eq!(value("rocklog_truncates_total"), 1.0);
    assert_eq!(value("rocklog_purges_total"), 1.0);
    assert_eq!(value("rocklog_rejected_commands_total"), 1.0);
    assert_eq!(value("rocklog_poisoned"), 0.0);
    assert_eq!(value("rocklog_commit_duration_seconds_count"), stats.commits as f64);
    assert!(
        text.contains("rocklog_commit_duration_seconds_bucket{le=\"0.00005\"}"),
        "real histogram buckets"
    );
    assert!(text.contains("rocklog_read_duration_seconds_bucket{op=\"entries\""));
    assert!(text.contains("# HELP rocklog_write_latency_seconds"));
    assert!(text.contains("rocklog_batch_entries_bucket"));
}

/// `n` entries of 4 KiB pseudo-random bytes (incompressible, so flushed sizes are real),
/// from index `first`.
fn random_entries(first: u64, n: u64, seed: u64) -> Vec<rocklog::Entry> {
    let mut x = seed | 1;
    (first..first + n)
        .map(|i| {
            let payload: Vec<u8> = (0..512)
                .flat_map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()
                })
                .collect();
            rocklog::Entry::new(i, 1, payload)
        })
        .collect()
}

/// RocksDB's own counters follow the engine's work: every appended byte reaches the WAL,
/// each serial commit's fsync is counted, entries are flushed into SST files, and entries
/// purged while still in a memtable are dropped by its flush instead of written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_stats_count_wal_syncs_and_flushes() {
    use rocklog::{ByteSize, Compression, LogId};

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.write_buffer_size = ByteSize::kib(256);
    config.compression = Compression::None;
    let store = LogStore::start(config).unwrap();
    // Opening a new directory wrote only its format record.
    let fresh = store.storage_stats();
    assert!(fresh.wal_bytes < 1024 && fresh.flush_bytes == 0 && fresh.compaction_bytes == 0, "{fresh:?}");

    // 1 MiB into group 2, each append purged right after it: a flush can catch at most
    // one append's 16 KiB of it.
    let purged = store.group(2);
    for i in 0..64u64 {
        purged.append(&random_entries(i * 4 + 1, 4, 7 + i)).await.unwrap();
        purged.purge(LogId::new(1, i * 4 + 4)).await.unwrap();
    }
    // 2 MiB into group 1, kept: it pushes every earlier memtable through a flush.
    let kept = store.group(1);
    for i in 0..128u64 {
        kept.append(&random_entries(i * 4 + 1, 4, 1000 + i)).await.unwrap();
    }
    let stats = store.storage_stats();
    assert!(stats.wal_bytes >= 3 << 20, "{stats:?}");
    assert!(stats.wal_syncs >= 128 + 128, "one fsync per serial write: {stats:?}");
    // At most one 256 KiB memtable of group 1 is not flushed yet...
    assert!(stats.flush_bytes >= (2 << 20) - (300 << 10), "{stats:?}");
    // ...and had group 2's purged MiB been flushed, this would be above 2.7 MiB.
    assert!(stats.flush_bytes <= (2 << 20) + (200 << 10), "purged entries reached an SST: {stats:?}");
    store.shutdown().await.unwrap();
}

/// The writer checks terms from memory inside a group's last term run: a purge there, a
/// refused purge, a truncation and the append after it make no point read in the
/// database, and neither does `term` at those indexes. The control: after a reopen only
/// the last entry's term is known, and the same kind of purge below it reads the entry,
/// which the counter sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn term_checks_inside_the_last_term_run_read_nothing() {
    use rocklog::{Error, LogId};

    let dir = tempfile::tempdir().unwrap();
    let store = common::open(dir.path());
    let g = store.group(1);
    g.append(&ents(1..101, 1)).await.unwrap();
    g.append(&ents(101..151, 2)).await.unwrap();
    g.append(&ents(151..201, 2)).await.unwrap();
    let reads = || store.storage_stats().point_reads;
    let before = reads();
    g.purge(LogId::new(2, 120)).await.unwrap();
    let refused = g.purge(LogId::new(1, 130)).await;
    assert!(
        matches!(refused, Err(Error::TermMismatch { index: 130, expected: 1, found: 2, .. })),
        "{refused:?}"
    );
    g.truncate(181).await.unwrap();
    g.append(&ents(181..191, 2)).await.unwrap();
    assert_eq!(
        (g.term(121).unwrap(), g.term(190).unwrap(), g.term(120).unwrap()),
        (Some(2), Some(2), Some(2))
    );
    assert_eq!(reads(), before, "a term inside the last run was read from the database");
    assert_eq!(common::ids(&store, 1), (121..191).map(|i| (i, 2)).collect::<Vec<_>>());
    store.shutdown().await.unwrap();

    let store = common::open(dir.path());
    let g = store.group(1);
    let reads = || store.storage_stats().point_reads;
    let before = reads();
    g.purge(LogId::new(2, 150)).await.unwrap();
    assert_eq!(reads(), before + 1, "the purge below the only known term did not read its entry");
    assert_eq!(g.term(160).unwrap(), Some(2));
    assert_eq!(reads(), before + 2);
    // Appending in the same term puts the last entry's index back in the run.
    g.append(&ents(191..201, 2)).await.unwrap();
    g.purge(LogId::new(2, 190)).await.unwrap();
    assert_eq!(reads(), before + 2, "the purge inside the new run read its entry");
    store.shutdown().await.unwrap();
}

/// RocksDB's state follows the engine's work, and the sampler records it as the
/// `rocklog_storage_*` series without anyone asking: flushed entries show up as SST bytes
/// in L0, large entries as blob bytes, and the filesystem's room is there.
#[test]
// Byte counts render as exact integers, well below 2^53.
#[allow(clippy::cast_precision_loss, clippy::float_cmp)]
fn storage_state_is_sampled_into_metrics() {
    use rocklog::{ByteSize, Compression};

    let recorder = rocklog::metrics::prometheus_builder().unwrap().build_recorder();
    let handle = recorder.handle();
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path());
    config.write_buffer_size = ByteSize::kib(256);
    config.compression = Compression::None;
    // Entries of 4 KiB go to blob files; the hard state and format records stay in SSTs.
    config.blob_min_size = ByteSize::kib(1);
    let store = metrics::with_local_recorder(&recorder, || LogStore::start(config)).unwrap();
    let fresh = store.storage_state().unwrap();
    assert!(!fresh.writes_stopped && fresh.delayed_write_rate == 0, "{fresh:?}");
    assert_eq!((fresh.sst_bytes, fresh.blob_bytes, fresh.l0_files), (0, 0, 0), "{fresh:?}");
    assert!(0 < fresh.disk_free_bytes && fresh.disk_free_bytes <= fresh.disk_capacity_bytes, "{fresh:?}");
    assert!(fresh.wal_bytes > 0, "the format record is in the WAL: {fresh:?}");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let g = store.group(1);
    for i in 0..128u64 {
        rt.block_on(g.append(&random_entries(i * 4 + 1, 4, 1000 + i))).unwrap();
        rt.block_on(g.save_hard_state(rocklog::HardState { term: 1, vote: Some(1), commit: i * 4 })).unwrap();
    }
    // 2 MiB through 256 KiB memtables: several flushes, most of it in blob files. Wait until
    // RocksDB has settled: no job running, and the files the same 300 ms later (a
    // compaction is scheduled a moment after the flush that triggers it).
    let files = |s: &rocklog::StorageState| (s.sst_bytes, s.blob_bytes, s.l0_files, s.memtable_bytes);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut last: Option<rocklog::StorageState> = None;
    let state = loop {
        let s = store.storage_state().unwrap();
        let idle = s.running_flushes + s.running_compactions == 0;
        if idle && last.is_some_and(|l| files(&l) == files(&s)) || std::time::Instant::now() > deadline {
            break s;
        }
        last = idle.then_some(s);
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    assert!(state.blob_bytes >= (3 << 20) / 2, "{state:?}");
    // The hard states and blob indexes are in SST files, in L0 or already compacted below.
    assert!(state.sst_bytes > 0 && state.l0_files < 20, "{state:?}");
    assert!(state.memtable_bytes > 0 && state.memtable_bytes < 2 << 20, "{state:?}");
    assert_eq!(state.disk_bytes(), state.sst_bytes + state.wal_bytes + state.blob_bytes);

    // The sampler runs once a second: wait for a sample taken after the writes.
    std::thread::sleep(rocklog::metrics::STORAGE_SAMPLE_INTERVAL * 2);
    let text = handle.render();
    let value = |name: &str| sample(&text, name);
    // Nothing ran since `state` was read (no writes, no background job): the sample is it.
    assert_eq!(files(&store.storage_state().unwrap()), files(&state), "still idle");
    assert_eq!(value("rocklog_storage_blob_bytes"), state.blob_bytes as f64, "{text}");
    assert_eq!(value("rocklog_storage_blob_garbage_bytes"), state.blob_garbage_bytes as f64, "{text}");
    // Nothing was purged: no garbage, so blob garbage collection stays off.
    assert_eq!(state.blob_garbage_bytes, 0, "{state:?}");
    assert_eq!(value("rocklog_storage_blob_gc_active"), 0.0, "{text}");
    assert_eq!(value("rocklog_storage_sst_bytes"), state.sst_bytes as f64, "{text}");
    assert_eq!(value("rocklog_storage_l0_files"), state.l0_files as f64, "{text}");
    assert_eq!(value("rocklog_storage_memtable_bytes"), state.memtable_bytes as f64, "{text}");
    assert!(value("rocklog_storage_wal_written_bytes_total") >= f64::from(2 << 20), "{text}");
    assert!(value("rocklog_storage_flush_written_bytes_total") >= f64::from(3 << 20) / 2.0, "{text}");
    assert!(value("rocklog_storage_disk_free_bytes") > 0.0, "{text}");
    assert!(value("rocklog_storage_disk_capacity_bytes") >= value("rocklog_storage_disk_free_bytes"));
    assert_eq!(value("rocklog_storage_writes_stopped"), 0.0, "{text}");
    let stall = value("rocklog_storage_write_stall_ratio");
    assert!((0.0..=1.0).contains(&stall), "{text}");
    for name in [
        "rocklog_storage_delayed_write_rate_bytes",
        "rocklog_storage_pending_compaction_bytes",
        "rocklog_storage_running_flushes",
        "rocklog_storage_running_compactions",
        "rocklog_storage_memtable_bytes",
        "rocklog_storage_block_cache_bytes",
        "rocklog_storage_wal_bytes",
        "rocklog_storage_compaction_written_bytes_total",
    ] {
        assert!(value(name) >= 0.0, "{name}");
        assert!(text.contains(&format!("# HELP {name} ")), "{name} is described");
    }
    rt.block_on(store.shutdown()).unwrap();
    assert!(matches!(store.storage_state(), Err(rocklog::Error::Closed)));
}
