//! Turning measurements into figures: medians over rounds, the table, the JSON.
//!
//! Counts become `f64` here for rates, ratios and medians that are printed with a few
//! significant digits: a count would need to pass 2^53 to lose precision.
#![allow(clippy::cast_precision_loss)]

use rocklog::Config;

use super::backend::Kind;
use super::driver::{Measured, Workload};

/// The figures of one (workload, backend) pair: the README documents every field.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    pub workload: String,
    pub backend: &'static str,
    pub entries_per_sec: f64,
    pub mib_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub commits_per_sec: f64,
    pub entries_per_commit: f64,
    pub cpu_us_per_entry: f64,
    pub write_amp: f64,
    /// Bytes the data directory's disk wrote per payload byte: what reached the device,
    /// the filesystem's journal included, where the device has counters. `write_amp` is
    /// what the kernel counted as dirtied by the process, which can be more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_amp: Option<f64>,
    pub peak_rss_bytes: u64,
    pub rounds: usize,
    /// Purge rounds (W5): median and worst duration of purging every group, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge_ms_p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge_ms_max: Option<f64>,
    /// p99 append latency of appends that overlapped a purge round.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_during_purge_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reads_per_sec: Option<f64>,
    /// Bytes written into SST files by memtable flushes, per payload byte appended (the
    /// stores with SST files). Entries purged before their memtable's flush add nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush_amp: Option<f64>,
    /// Bytes written into SST files by compactions, per payload byte appended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compaction_amp: Option<f64>,
    /// Milliseconds RocksDB stalled or slowed writers during the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stall_ms: Option<f64>,
    /// W6: median clean reopen, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reopen_clean_ms_p50: Option<f64>,
    /// W6: median reopen after a killed writer, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reopen_after_kill_ms_p50: Option<f64>,
    /// W6: whether the page cache was dropped before every reopen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reopen_cold: Option<bool>,
    /// (seconds, bytes) RSS samples of a soak run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rss_samples: Vec<(f64, u64)>,
    /// With `--dir`: each round's kept data directory, in round order (absolute; lossy
    /// for a path that is not UTF-8). Absent without `--dir`: those runs are removed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<String>,
    pub params: Workload,
    pub config: Config,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

/// The median of counts (the lower middle one for an even number), 0 for none.
fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

fn us(nanos: u64) -> f64 {
    nanos as f64 / 1000.0
}

fn one(m: &Measured) -> [f64; 13] {
    let secs = m.elapsed.as_secs_f64().max(1e-9);
    let entries = m.entries.max(1) as f64;
    [
        m.entries as f64 / secs,
        m.payload_bytes as f64 / secs / 1_048_576.0,
        us(m.latency.value_at_quantile(0.5)),
        us(m.latency.value_at_quantile(0.99)),
        us(m.latency.value_at_quantile(0.999)),
        us(m.latency.max()),
        m.syncs as f64 / secs,
        m.entries as f64 / m.syncs.max(1) as f64,
        m.cpu.as_secs_f64() * 1e6 / entries,
        m.write_bytes as f64 / m.payload_bytes.max(1) as f64,
        m.reads as f64 / secs,
        if m.latency_during_purge.is_empty() {
            f64::NAN
        } else {
            us(m.latency_during_purge.value_at_quantile(0.99))
        },
        m.disk_write_bytes.map_or(f64::NAN, |b| b as f64 / m.payload_bytes.max(1) as f64),
    ]
}

/// The median over rounds of SST bytes (flushed, 0, or compacted, 1) per payload byte;
/// `None` for a store without SST files.
fn sst_amp(measured: &[Measured], pick: usize) -> Option<f64> {
    let amps: Vec<f64> = measured
        .iter()
        .filter_map(|m| m.sst_bytes.map(|b| b[pick] as f64 / m.payload_bytes.max(1) as f64))
        .collect();
    (!amps.is_empty()).then(|| median(amps))
}

/// The median of one kind of W6 reopen over every round, ms; `None` for other workloads.
fn reopen_median(
    measured: &[Measured],
    pick: impl Fn(&super::recovery::Reopens) -> &Vec<std::time::Duration>,
) -> Option<f64> {
    let times: Vec<f64> = measured
        .iter()
        .filter_map(|m| m.reopens.as_ref())
        .flat_map(|r| pick(r).iter().map(|d| d.as_secs_f64() * 1e3))
        .collect();
    (!times.is_empty()).then(|| median(times))
}

/// Medians over rounds for every backend of one workload.
pub fn summarize(
    w: &Workload,
    runs: &[(Kind, Vec<Measured>)],
    rounds: usize,
    config: &Config,
) -> Vec<Summary> {
    runs.iter()
        .map(|(kind, measured)| {
            let figures: Vec<[f64; 13]> = measured.iter().map(one).collect();
            let col = |i: usize| median(figures.iter().map(|f| f[i]).filter(|x| !x.is_nan()).collect());
            let purges: Vec<f64> =
                measured.iter().flat_map(|m| m.purges.iter().map(|d| d.as_secs_f64() * 1e3)).collect();
            let has_purges = !purges.is_empty();
            let purge_max = purges.iter().copied().fold(0.0, f64::max);
            Summary {
                workload: w.name.clone(),
                backend: kind.name(),
                entries_per_sec: col(0),
                mib_per_sec: col(1),
                p50_us: col(2),
                p99_us: col(3),
                p999_us: col(4),
                max_us: col(5),
                commits_per_sec: col(6),
                entries_per_commit: col(7),
                cpu_us_per_entry: col(8),
                write_amp: col(9),
                disk_amp: measured.iter().any(|m| m.disk_write_bytes.is_some()).then(|| col(12)),
                peak_rss_bytes: median_u64(measured.iter().map(|m| m.peak_rss).collect()),
                rounds,
                purge_ms_p50: has_purges.then(|| median(purges.clone())),
                purge_ms_max: has_purges.then_some(purge_max),
                p99_during_purge_us: has_purges.then(|| col(11)),
                flush_amp: sst_amp(measured, 0),
                compaction_amp: sst_amp(measured, 1),
                stall_ms: {
                    let stalls: Vec<f64> =
                        measured.iter().filter_map(|m| m.sst_bytes.map(|b| b[2] as f64 / 1e3)).collect();
                    (!stalls.is_empty()).then(|| median(stalls))
                },
                reopen_clean_ms_p50: reopen_median(measured, |r| &r.clean),
                reopen_after_kill_ms_p50: reopen_median(measured, |r| &r.after_kill),
                reopen_cold: measured
                    .iter()
                    .filter_map(|m| m.reopens.as_ref())
                    .map(|r| r.cold)
                    .reduce(|a, b| a && b),
                reads_per_sec: (w.readers > 0 && measured.iter().any(|m| m.reads > 0)).then(|| col(10)),
                rss_samples: measured
                    .iter()
                    .flat_map(|m| m.rss_samples.iter().map(|(t, b)| (t.as_secs_f64(), *b)))
                    .collect(),
                dirs: measured
                    .iter()
                    .filter_map(|m| m.kept_dir.as_ref().map(|d| d.display().to_string()))
                    .collect(),
                params: w.clone(),
                config: config.clone(),
            }
        })
        .collect()
}

/// The human table: one block per workload, rocklog's ratios to each baseline below it.
pub fn print_table(all: &[Vec<Summary>], config: &Config) {
    println!(
        "rocklog bench — durability {:?}, max_batch_entries {}, max_batch_bytes {}, linger {}",
        config.durability,
        config.max_batch_entries,
        config.max_batch_bytes,
        rocklog::units::format_duration(config.linger)
    );
    for rows in all {
        let Some(first) = rows.first() else { continue };
        let w = &first.params;
        println!();
        println!(
            "{} — {} proposers, {} groups, {} B × {} per append, {} round(s), medians",
            first.workload, w.proposers, w.groups, w.entry_bytes, w.entries_per_append, first.rounds
        );
        println!(
            "  {:<27} {:>11} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>8}",
            "backend",
            "entries/s",
            "MiB/s",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "max µs",
            "fsync/s",
            "ent/fsync",
            "cpu µs/e",
            "w-amp",
            "d-amp",
            "RSS MiB"
        );
        for s in rows {
            println!(
                "  {:<27} {:>11.0} {:>8.2} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.0} {:>9.1} {:>9.1} {:>7.2} {:>7} {:>8.0}",
                s.backend,
                s.entries_per_sec,
                s.mib_per_sec,
                s.p50_us,
                s.p99_us,
                s.p999_us,
                s.max_us,
                s.commits_per_sec,
                s.entries_per_commit,
                s.cpu_us_per_entry,
                s.write_amp,
                s.disk_amp.map_or_else(|| "-".to_owned(), |d| format!("{d:.2}")),
                s.peak_rss_bytes as f64 / 1_048_576.0
            );
            if let (Some(flush), Some(compaction), Some(stall)) = (s.flush_amp, s.compaction_amp, s.stall_ms)
            {
                println!(
                    "  {:<27} SST bytes per payload byte: flushed {flush:.2}, compacted {compaction:.2}; writers stalled {stall:.0} ms",
                    ""
                );
            }
            if let (Some(clean), Some(killed), Some(cold)) =
                (s.reopen_clean_ms_p50, s.reopen_after_kill_ms_p50, s.reopen_cold)
            {
                println!(
                    "  {:<27} reopen p50: clean {clean:.0} ms, after a kill {killed:.0} ms ({} page cache)",
                    "",
                    if cold { "cold" } else { "warm" }
                );
            }
            if let (Some(p50), Some(max), Some(p99)) = (s.purge_ms_p50, s.purge_ms_max, s.p99_during_purge_us)
            {
                println!(
                    "  {:<27} purge round p50 {p50:.1} ms, max {max:.1} ms; append p99 during purges {p99:.0} µs",
                    ""
                );
            }
        }
        // rocklog from tasks against every other row; rocklog from threads against the
        // baselines, which run from threads too.
        for (name, against_rocklog) in [("rocklog", true), ("rocklog-threads", false)] {
            let Some(r) = rows.iter().find(|s| s.backend == name) else { continue };
            for b in rows
                .iter()
                .filter(|s| s.backend != name && (against_rocklog || !s.backend.starts_with("rocklog")))
            {
                println!(
                    "  {:<45} throughput ×{:.2}   p50 ×{:.2}   p99 ×{:.2}   CPU/entry ×{:.2}",
                    format!("{name} vs {}", b.backend),
                    r.entries_per_sec / b.entries_per_sec.max(1e-9),
                    r.p50_us / b.p50_us.max(1e-9),
                    r.p99_us / b.p99_us.max(1e-9),
                    r.cpu_us_per_entry / b.cpu_us_per_entry.max(1e-9),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    #[allow(clippy::float_cmp)] // halves of small integers are exact
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }
}
