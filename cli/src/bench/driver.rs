//! The workload driver: proposers as tokio tasks appending to their own groups, optional
//! readers and a purger, every append's latency in an HDR histogram.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rocklog::{Entry, LogId};

use super::backend::{Backend, BoxError};
use super::sys;

/// When a run stops.
#[derive(Clone, Copy, Debug, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// After this long.
    Duration(#[serde(with = "secs")] Duration),
    /// After this many appends in total.
    Appends(u64),
}

mod secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Purges during the run: every `every`, each group keeps its last `keep` entries.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Purge {
    #[serde(with = "secs")]
    pub every: Duration,
    pub keep: u64,
}

/// One workload.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Workload {
    pub name: String,
    pub proposers: u64,
    pub groups: u64,
    pub entry_bytes: usize,
    pub entries_per_append: u64,
    pub stop: Stop,
    pub readers: u64,
    pub purge: Option<Purge>,
    /// Print RSS at this interval (soak runs).
    #[serde(skip)]
    pub rss_every: Option<Duration>,
}

/// What one run measured.
pub struct Measured {
    pub elapsed: Duration,
    pub entries: u64,
    pub payload_bytes: u64,
    pub latency: Histogram<u64>,
    pub latency_during_purge: Histogram<u64>,
    pub syncs: u64,
    pub cpu: Duration,
    pub write_bytes: u64,
    pub peak_rss: u64,
    pub purges: Vec<Duration>,
    pub reads: u64,
    pub rss_samples: Vec<(Duration, u64)>,
}

/// A latency histogram in nanoseconds: 1 ns to 100 s at 3 significant digits.
fn histogram() -> Result<Histogram<u64>, BoxError> {
    Ok(Histogram::new_with_bounds(1, 100_000_000_000, 3)?)
}

/// Live progress, for the progress bar.
#[derive(Default)]
pub struct Progress {
    pub appends: AtomicU64,
}

struct Shared {
    backend: Backend,
    stop: AtomicBool,
    purging: AtomicBool,
    /// Last index appended per group (proposers own disjoint groups).
    last: Vec<AtomicU64>,
    progress: Arc<Progress>,
}

/// Runs `w` against `backend` and measures it. The backend is closed afterwards.
// One run read top to bottom: checks, tasks, measurement.
#[allow(clippy::too_many_lines)]
pub async fn run(backend: Backend, w: &Workload, progress: Arc<Progress>) -> Result<Measured, BoxError> {
    if w.groups < w.proposers {
        return Err(format!(
            "{}: {} groups for {} proposers: each proposer needs its own group",
            w.name, w.groups, w.proposers
        )
        .into());
    }
    let shared = Arc::new(Shared {
        backend,
        stop: AtomicBool::new(false),
        purging: AtomicBool::new(false),
        last: (0..w.groups).map(|_| AtomicU64::new(0)).collect(),
        progress,
    });
    sys::reset_peak_rss();
    let before = sys::sample();
    let syncs_before = shared.backend.syncs();
    let started = Instant::now();
    let per_proposer_appends = match w.stop {
        Stop::Appends(n) => Some(n.div_ceil(w.proposers)),
        Stop::Duration(_) => None,
    };

    let payload = payload_pool(w.entry_bytes);
    let mut proposers = Vec::new();
    for p in 0..w.proposers {
        let (shared, payload, w) = (Arc::clone(&shared), payload.clone(), w.clone());
        proposers
            .push(tokio::spawn(async move { propose(shared, p, &w, payload, per_proposer_appends).await }));
    }
    let mut readers = Vec::new();
    for r in 0..w.readers {
        let (shared, groups) = (Arc::clone(&shared), w.groups);
        readers.push(tokio::spawn(async move { read_loop(shared, r, groups).await }));
    }
    let purge_task = w.purge.map(|spec| {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move { purge_loop(shared, spec).await })
    });
    let sampler = w.rss_every.map(|every| {
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let start = Instant::now();
            while !shared.stop.load(Ordering::Relaxed) {
                tokio::time::sleep(every).await;
                let rss = sys::rss();
                eprintln!("soak: {:>6.0}s rss {:.1} MiB", start.elapsed().as_secs_f64(), mib(rss));
                samples.push((start.elapsed(), rss));
            }
            samples
        })
    });

    if let Stop::Duration(d) = w.stop {
        tokio::time::sleep(d).await;
        shared.stop.store(true, Ordering::Relaxed);
    }
    let mut latency = histogram()?;
    let mut latency_during_purge = histogram()?;
    let mut appends = 0;
    for p in proposers {
        let (h, hp, n) = p.await??;
        latency.add(&h)?;
        latency_during_purge.add(&hp)?;
        appends += n;
    }
    let elapsed = started.elapsed();
    shared.stop.store(true, Ordering::Relaxed);
    let mut reads = 0;
    for r in readers {
        reads += r.await??;
    }
    let purges = match purge_task {
        Some(p) => p.await??,
        None => Vec::new(),
    };
    let rss_samples = match sampler {
        Some(s) => s.await?,
        None => Vec::new(),
    };
    let after = sys::sample();
    let syncs = shared.backend.syncs() - syncs_before;
    let peak_rss = sys::peak_rss();
    let shared = Arc::into_inner(shared).ok_or("workload tasks still hold the backend")?;
    shared.backend.close().await?;
    let entries = appends * w.entries_per_append;
    Ok(Measured {
        elapsed,
        entries,
        payload_bytes: entries * w.entry_bytes as u64,
        latency,
        latency_during_purge,
        syncs,
        cpu: after.cpu.saturating_sub(before.cpu),
        write_bytes: after.write_bytes.saturating_sub(before.write_bytes),
        peak_rss,
        purges,
        reads,
        rss_samples,
    })
}

type ProposerResult = Result<(Histogram<u64>, Histogram<u64>, u64), BoxError>;

/// Bytes the payloads are cut from: pseudo-random, so neither a backend that compresses
/// its writes (raft-engine lz4-compresses batches over 8 KiB) nor RocksDB's SST
/// compression sees repeated content that real entries would not have.
const POOL_BYTES: usize = 16 << 20;

fn payload_pool(entry_bytes: usize) -> bytes::Bytes {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut pool = Vec::with_capacity(POOL_BYTES + entry_bytes + 8);
    while pool.len() < POOL_BYTES + entry_bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pool.extend_from_slice(&x.to_le_bytes());
    }
    pool.into()
}

/// Entry `index` of `group`'s payload: a slice of the pool at an offset that differs
/// from entry to entry, so no two entries of a batch repeat each other.
fn payload_of(pool: &bytes::Bytes, group: u64, index: u64, len: usize) -> bytes::Bytes {
    let mix = group.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    let offset = usize::try_from(mix % POOL_BYTES as u64).unwrap_or(0);
    pool.slice(offset..offset + len)
}

async fn propose(
    shared: Arc<Shared>,
    p: u64,
    w: &Workload,
    payload: bytes::Bytes,
    limit: Option<u64>,
) -> ProposerResult {
    let mut latency = histogram()?;
    let mut during_purge = histogram()?;
    let groups: Vec<u64> = (p..w.groups).step_by(index(w.proposers)).collect();
    let mut done = 0u64;
    for g in groups.iter().cycle() {
        if shared.stop.load(Ordering::Relaxed) || limit.is_some_and(|l| done >= l) {
            break;
        }
        let first = shared.last[index(*g)].load(Ordering::Relaxed) + 1;
        let entries: Vec<Entry> = (first..first + w.entries_per_append)
            .map(|i| {
                Entry::new(i, 1, bytes::Bytes::copy_from_slice(&payload_of(&payload, *g, i, w.entry_bytes)))
            })
            .collect();
        let purging = shared.purging.load(Ordering::Relaxed);
        let started = Instant::now();
        shared.backend.append(*g, entries).await?;
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
        latency.saturating_record(nanos);
        if purging || shared.purging.load(Ordering::Relaxed) {
            during_purge.saturating_record(nanos);
        }
        shared.last[index(*g)].store(first + w.entries_per_append - 1, Ordering::Relaxed);
        shared.progress.appends.fetch_add(1, Ordering::Relaxed);
        done += 1;
    }
    Ok((latency, during_purge, done))
}

async fn read_loop(shared: Arc<Shared>, r: u64, groups: u64) -> Result<u64, BoxError> {
    let mut reads = 0;
    let mut g = r % groups;
    while !shared.stop.load(Ordering::Relaxed) {
        let last = shared.last[index(g)].load(Ordering::Relaxed);
        let lo = last.saturating_sub(200).max(1);
        let shared2 = Arc::clone(&shared);
        let n = tokio::task::spawn_blocking(move || shared2.backend.read(g, lo, 100)).await??;
        if n.is_none() {
            break;
        }
        reads += 1;
        g = (g + 1) % groups;
        tokio::task::yield_now().await;
    }
    Ok(reads)
}

async fn purge_loop(shared: Arc<Shared>, spec: Purge) -> Result<Vec<Duration>, BoxError> {
    let mut times = Vec::new();
    loop {
        tokio::time::sleep(spec.every).await;
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(times);
        }
        shared.purging.store(true, Ordering::Relaxed);
        let started = Instant::now();
        // Every group at once, as a multi-raft node's groups would: they share commits.
        let mut tasks = Vec::new();
        for g in 0..shared.last.len() as u64 {
            let last = shared.last[index(g)].load(Ordering::Relaxed);
            if last > spec.keep {
                let shared = Arc::clone(&shared);
                tasks.push(tokio::spawn(async move {
                    shared.backend.purge(g, LogId::new(1, last - spec.keep)).await
                }));
            }
        }
        let purged_any = !tasks.is_empty();
        let mut supported = true;
        for t in tasks {
            supported &= t.await??;
        }
        shared.purging.store(false, Ordering::Relaxed);
        if !supported {
            return Ok(times);
        }
        if purged_any {
            times.push(started.elapsed());
        }
    }
}

/// A group id or count as an index: the vectors indexed are allocated with `groups`
/// elements, so every id below it fits a `usize`.
fn index(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Bytes as MiB, for display (exact far beyond any memory size).
#[allow(clippy::cast_precision_loss)]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}
