//! The workload driver: proposers appending to their own groups, optional readers and a
//! purger, every append's latency in an HDR histogram. rocklog's proposers are tokio
//! tasks, as its async users' are, or OS threads calling its blocking writes, as a Raft
//! node on threads would; a baseline's are OS threads calling its blocking append, as its
//! users' are, or tokio tasks reaching it through `spawn_blocking` for the row that shows
//! what an async caller pays.

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
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
    /// W6: after the run (the fill), time reopens of the store.
    pub recovery: bool,
}

impl Workload {
    /// Whether `self` does the same work as `other` for every append: the same proposers,
    /// groups, entries, readers, purges and reopens. How long it runs (`stop`) and how
    /// often it samples RSS are not its shape.
    pub fn same_shape(&self, other: &Workload) -> bool {
        (self.proposers, self.groups, self.entry_bytes, self.entries_per_append)
            == (other.proposers, other.groups, other.entry_bytes, other.entries_per_append)
            && (self.readers, self.purge, self.recovery) == (other.readers, other.purge, other.recovery)
    }
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
    /// Bytes the data directory's disk wrote, where it has counters.
    pub disk_write_bytes: Option<u64>,
    pub peak_rss: u64,
    pub purges: Vec<Duration>,
    pub reads: u64,
    pub rss_samples: Vec<(Duration, u64)>,
    /// Bytes written into SST files by flushes and by compactions during the run
    /// (and microseconds writers stalled), for the stores that have them.
    pub sst_bytes: Option<[u64; 3]>,
    /// W6's reopen times, filled in after the run.
    pub reopens: Option<super::recovery::Reopens>,
    /// With `--dir`: the run's data directory, kept; filled in after the run.
    pub kept_dir: Option<std::path::PathBuf>,
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
/// `disk` is the data directory's block device, whose written bytes are measured too.
pub async fn run(
    backend: Backend,
    w: &Workload,
    progress: Arc<Progress>,
    disk: Option<&sys::Disk>,
) -> Result<Measured, BoxError> {
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
    let before = sys::sample(disk);
    let syncs_before = shared.backend.syncs();
    let sst_before = shared.backend.sst_bytes();
    let started = Instant::now();
    let per_proposer_appends = match w.stop {
        Stop::Appends(n) => Some(n.div_ceil(w.proposers)),
        Stop::Duration(_) => None,
    };

    let payload = payload_pool(w.entry_bytes);
    let mut proposers = Vec::new();
    let threaded = shared.backend.threaded();
    for p in 0..w.proposers {
        let proposer = Proposer::new(Arc::clone(&shared), p, w, payload.clone(), per_proposer_appends)?;
        proposers.push(match &threaded {
            // A baseline's users call its blocking append from their own threads, and so
            // do rocklog's on threads.
            Some(store) => {
                let store = store.clone();
                Running::Thread(
                    std::thread::Builder::new()
                        .name(format!("proposer-{p}"))
                        .spawn(move || proposer.run_blocking(|g, e| store.append(g, &e)))?,
                )
            }
            None => Running::Task(tokio::spawn(proposer.run_async())),
        });
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
        let (h, hp, n) = match p {
            Running::Task(t) => t.await??,
            Running::Thread(t) => {
                // Joined off the runtime's workers, which rocklog's own tasks may need.
                tokio::task::spawn_blocking(move || t.join().map_err(|_| "a proposer thread panicked"))
                    .await???
            }
        };
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
    let after = sys::sample(disk);
    let syncs = shared.backend.syncs() - syncs_before;
    let sst_bytes = shared
        .backend
        .sst_bytes()
        .zip(sst_before)
        .map(|(a, b)| [a[0].saturating_sub(b[0]), a[1].saturating_sub(b[1]), a[2].saturating_sub(b[2])]);
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
        disk_write_bytes: after
            .disk_write_bytes
            .zip(before.disk_write_bytes)
            .map(|(a, b)| a.saturating_sub(b)),
        peak_rss,
        purges,
        reads,
        rss_samples,
        sst_bytes,
        reopens: None,
        kept_dir: None,
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

/// A running proposer: a tokio task (rocklog, or a baseline through `spawn_blocking`) or
/// an OS thread (a baseline driven natively, or rocklog through its blocking writes).
enum Running {
    Task(tokio::task::JoinHandle<ProposerResult>),
    Thread(std::thread::JoinHandle<ProposerResult>),
}

/// One proposer's state: its groups, the shared payload, its latency histograms.
struct Proposer {
    shared: Arc<Shared>,
    groups: Vec<u64>,
    next: usize,
    entry_bytes: usize,
    entries_per_append: u64,
    payload: bytes::Bytes,
    limit: Option<u64>,
    done: u64,
    latency: Histogram<u64>,
    during_purge: Histogram<u64>,
}

/// An append about to be timed.
struct Pending {
    group: u64,
    last: u64,
    purging: bool,
    started: Instant,
}

impl Proposer {
    fn new(
        shared: Arc<Shared>,
        p: u64,
        w: &Workload,
        payload: bytes::Bytes,
        limit: Option<u64>,
    ) -> Result<Self, BoxError> {
        Ok(Proposer {
            shared,
            groups: (p..w.groups).step_by(index(w.proposers)).collect(),
            next: 0,
            entry_bytes: w.entry_bytes,
            entries_per_append: w.entries_per_append,
            payload,
            limit,
            done: 0,
            latency: histogram()?,
            during_purge: histogram()?,
        })
    }

    /// The next append's group and entries (built before the clock starts), or `None`
    /// once the run is over.
    fn next_append(&mut self) -> Option<(Pending, Vec<Entry>)> {
        if self.shared.stop.load(Ordering::Relaxed) || self.limit.is_some_and(|l| self.done >= l) {
            return None;
        }
        let g = *self.groups.get(self.next % self.groups.len().max(1))?;
        self.next += 1;
        let first = self.shared.last[index(g)].load(Ordering::Relaxed) + 1;
        let last = first + self.entries_per_append - 1;
        let entries = (first..=last)
            .map(|i| {
                let payload = payload_of(&self.payload, g, i, self.entry_bytes);
                Entry::new(i, 1, bytes::Bytes::copy_from_slice(&payload))
            })
            .collect();
        let purging = self.shared.purging.load(Ordering::Relaxed);
        Some((Pending { group: g, last, purging, started: Instant::now() }, entries))
    }

    /// Records a finished append.
    fn finish(&mut self, p: &Pending) {
        let nanos = u64::try_from(p.started.elapsed().as_nanos()).unwrap_or(u64::MAX).max(1);
        self.latency.saturating_record(nanos);
        if p.purging || self.shared.purging.load(Ordering::Relaxed) {
            self.during_purge.saturating_record(nanos);
        }
        self.shared.last[index(p.group)].store(p.last, Ordering::Relaxed);
        self.shared.progress.appends.fetch_add(1, Ordering::Relaxed);
        self.done += 1;
    }

    fn into_figures(self) -> (Histogram<u64>, Histogram<u64>, u64) {
        (self.latency, self.during_purge, self.done)
    }

    /// Appends from a tokio task until the run is over.
    async fn run_async(mut self) -> ProposerResult {
        while let Some((pending, entries)) = self.next_append() {
            self.shared.backend.append(pending.group, entries).await?;
            self.finish(&pending);
        }
        Ok(self.into_figures())
    }

    /// Appends from the calling OS thread through `append` until the run is over.
    fn run_blocking(mut self, append: impl Fn(u64, Vec<Entry>) -> Result<(), BoxError>) -> ProposerResult {
        while let Some((pending, entries)) = self.next_append() {
            append(pending.group, entries)?;
            self.finish(&pending);
        }
        Ok(self.into_figures())
    }
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
        // Every group at once, as a multi-raft node's log GC would.
        let upto: Vec<(u64, LogId)> = (0..shared.last.len() as u64)
            .filter_map(|g| {
                let last = shared.last[index(g)].load(Ordering::Relaxed);
                (last > spec.keep).then(|| (g, LogId::new(1, last - spec.keep)))
            })
            .collect();
        let purged_any = !upto.is_empty();
        let supported = !purged_any || shared.backend.purge(upto).await?;
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
