//! `rocklog bench`: a synced workload against rocklog and, with `--compare`, against the
//! baselines a user would otherwise pick — all in the same process and interleaved by
//! round, because this class of machine's disks drift by 10× between minutes and only
//! side-by-side figures mean anything.

mod backend;
mod driver;
mod plot;
#[cfg(feature = "raft-engine")]
mod raft_engine;
mod raw;
mod recovery;
mod report;
mod rocks;
mod sys;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rocklog::{ByteSize, Config, Durability};

use backend::{Backend, BoxError, Kind};
use driver::{Progress, Purge, Stop, Workload};
pub use recovery::{WriterArgs, writer_child};

/// The standard workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// W1 serial: 1 proposer, 1 group, 256 B — the latency floor.
    W1,
    /// W2 concurrent: 64 proposers, 64 groups, 256 B — group commit.
    W2,
    /// W3 multi-raft: 1000 groups, 1 KiB entries, 10 per append, 16 proposers.
    W3,
    /// W4 large: 4 proposers, 64 KiB entries — bandwidth against the raw floor.
    W4,
    /// W5 purge under load: W2 plus a purge of every group each second keeping its last
    /// 100 entries (see --purge-keep), and 4 readers of 100-entry ranges.
    W5,
    /// W6 recovery: fill 1000 groups with 2 GiB (see --fill-bytes) in 64 KiB appends,
    /// close, then time a clean reopen and a reopen after a killed writer, per round.
    W6,
    /// W7 steady state: W3's shape (1000 groups, 1 KiB × 10) for 30 s while every group
    /// is purged each second down to its last 100 entries (see --purge-keep), as a Raft
    /// node does after snapshots; reports write amplification and SST bytes.
    W7,
    /// All of W1..W7 in turn.
    All,
    /// W5 for a long time, printing RSS every 10 s (use with --duration 10m).
    Soak,
}

/// W6's default fill.
const FILL_BYTES: u64 = 2 << 30;

/// Options of `rocklog bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Standard workload(s) to run (repeatable). Without one, W2's shape with the flags
    /// below applied: labelled W2-concurrent while it still is W2, `custom` once
    /// --proposers, --groups, --entry-bytes or --entries-per-append change that shape
    /// (--duration, --appends, --rounds and rocklog's settings do not; --purge-* and
    /// --fill-bytes do not apply to it).
    #[arg(long, value_enum)]
    preset: Vec<Preset>,
    /// Concurrent proposer tasks.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    proposers: Option<u64>,
    /// Raft groups (at least one per proposer).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    groups: Option<u64>,
    /// Payload bytes per entry.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    entry_bytes: Option<usize>,
    /// Entries per append call.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    entries_per_append: Option<u64>,
    /// How long each run lasts, e.g. 5s, 10m.
    #[arg(long, value_parser = parse_positive_duration)]
    duration: Option<Duration>,
    /// W5/W7/soak: entries each group keeps when purged (the spec's 10000 needs runs long
    /// enough for the baselines to reach it; a purge costs the same whatever it keeps).
    #[arg(long)]
    purge_keep: Option<u64>,
    /// W5/W7/soak: how often every group is purged, e.g. 1s.
    #[arg(long, value_parser = parse_positive_duration)]
    purge_every: Option<Duration>,
    /// W6: payload bytes to fill the store with before timing its reopens, e.g. 2GiB.
    #[arg(long)]
    fill_bytes: Option<ByteSize>,
    /// Stop each run after this many appends instead of after --duration.
    #[arg(long, conflicts_with = "duration", value_parser = clap::value_parser!(u64).range(1..))]
    appends: Option<u64>,
    /// rocklog's durability (the baselines always sync).
    #[arg(long, value_parser = parse_durability)]
    durability: Option<Durability>,
    /// rocklog: most entries per group commit.
    #[arg(long)]
    max_batch_entries: Option<usize>,
    /// rocklog: most payload bytes per group commit, e.g. 4MiB.
    #[arg(long)]
    max_batch_bytes: Option<ByteSize>,
    /// rocklog: how long a batch waits for more commands, e.g. 0s, 200us.
    #[arg(long, value_parser = rocklog::units::parse_duration)]
    linger: Option<Duration>,
    /// Where to put the data. Without it: a temporary directory, removed afterwards.
    /// With it, every run's data directory is KEPT, for `rocklog inspect`/`check`/`dump`:
    /// DIR/<workload>-<backend>-<round> (rounds from 0; DIR is created if missing), with
    /// `.2`, `.3`, ... appended when that name is taken, as by an earlier bench into the
    /// same DIR; nothing already in DIR is reused, changed or removed. Each kept path is
    /// printed on stderr (`kept: PATH`), or under `dirs` in every --json row. Kept runs
    /// take disk space (W6 fills 2 GiB per backend and round, raw-prealloc 64 MiB): remove
    /// them when done.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// rocklog settings from a TOML file (flags above override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve Prometheus metrics at this address while running, e.g. 127.0.0.1:9184.
    #[arg(long)]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Run rocklog from OS threads (its blocking writes) and the baselines too:
    /// raft-engine (when built with the `raft-engine` feature) from threads and through
    /// `spawn_blocking`, rocksdb-sync, raw-prealloc and raw-batched. `--backends` adds raw, seed-style and rocksdb-sync-spawn-blocking.
    #[arg(long)]
    compare: bool,
    /// Exactly which backends to run (overrides --compare).
    #[arg(long, value_enum, value_delimiter = ',')]
    backends: Vec<Kind>,
    /// Rounds; each round runs every backend once, interleaved, and the report gives medians.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Print machine-readable JSON on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Show the progress bar even with --json.
    #[arg(long)]
    progress: bool,
    /// Also draw the run as an SVG picture into this file: throughput per workload and
    /// backend, and the latency percentiles.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

/// A duration above zero: a zero-length run or purge interval measures nothing.
fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match rocklog::units::parse_duration(s)? {
        Duration::ZERO => Err("must be above zero".into()),
        d => Ok(d),
    }
}

fn parse_durability(s: &str) -> Result<Durability, String> {
    match s {
        "sync" => Ok(Durability::Sync),
        "buffered" => Ok(Durability::Buffered),
        other => Err(format!("unknown durability `{other}` (sync or buffered)")),
    }
}

fn preset(p: Preset) -> Vec<Workload> {
    let base = |name: &str, proposers, groups, entry_bytes, entries_per_append| Workload {
        name: name.into(),
        proposers,
        groups,
        entry_bytes,
        entries_per_append,
        stop: Stop::Duration(Duration::from_secs(5)),
        readers: 0,
        purge: None,
        rss_every: None,
        recovery: false,
    };
    let w5 = Workload {
        readers: 4,
        purge: Some(Purge { every: Duration::from_secs(1), keep: 100 }),
        ..base("W5-purge", 64, 64, 256, 1)
    };
    match p {
        Preset::W1 => vec![base("W1-serial", 1, 1, 256, 1)],
        Preset::W2 => vec![base("W2-concurrent", 64, 64, 256, 1)],
        Preset::W3 => vec![base("W3-multi-raft", 16, 1000, 1024, 10)],
        Preset::W4 => vec![base("W4-large", 4, 4, 64 * 1024, 1)],
        Preset::W5 => vec![w5],
        Preset::W6 => vec![Workload {
            stop: Stop::Appends(FILL_BYTES.div_ceil(1024 * 64)),
            recovery: true,
            ..base("W6-recovery", 16, 1000, 1024, 64)
        }],
        Preset::W7 => vec![Workload {
            stop: Stop::Duration(Duration::from_secs(30)),
            purge: Some(Purge { every: Duration::from_secs(1), keep: 100 }),
            ..base("W7-steady", 16, 1000, 1024, 10)
        }],
        Preset::All => [Preset::W1, Preset::W2, Preset::W3, Preset::W4, Preset::W5, Preset::W6, Preset::W7]
            .into_iter()
            .flat_map(preset)
            .collect(),
        Preset::Soak => vec![Workload {
            name: "soak".into(),
            stop: Stop::Duration(Duration::from_secs(600)),
            rss_every: Some(Duration::from_secs(10)),
            ..w5
        }],
    }
}

impl BenchArgs {
    fn workloads(&self) -> Vec<Workload> {
        let mut workloads: Vec<Workload> = if self.preset.is_empty() {
            preset(Preset::W2)
        } else {
            self.preset.iter().copied().flat_map(preset).collect()
        };
        for w in &mut workloads {
            if let Some(v) = self.proposers {
                w.proposers = v;
            }
            if let Some(v) = self.groups {
                w.groups = v;
            } else if w.groups < w.proposers {
                w.groups = w.proposers;
            }
            if let Some(v) = self.entry_bytes {
                w.entry_bytes = v;
            }
            if let Some(v) = self.entries_per_append {
                w.entries_per_append = v;
            }
            if let Some(d) = self.duration {
                w.stop = Stop::Duration(d);
            }
            if let Some(n) = self.appends {
                w.stop = Stop::Appends(n);
            }
            if w.recovery {
                let bytes = self.fill_bytes.map_or(FILL_BYTES, ByteSize::bytes);
                let per_append = (w.entry_bytes as u64 * w.entries_per_append).max(1);
                w.stop = Stop::Appends(self.appends.unwrap_or(bytes.div_ceil(per_append)).max(1));
            }
            if let Some(p) = w.purge.as_mut() {
                p.keep = self.purge_keep.unwrap_or(p.keep);
                p.every = self.purge_every.unwrap_or(p.every);
            }
        }
        // The default run is W2 and says so, unless the flags made it something else:
        // by the shape it ended up with, so `--proposers 64` alone is still W2.
        if self.preset.is_empty() {
            for (w, w2) in workloads.iter_mut().zip(preset(Preset::W2)) {
                if !w.same_shape(&w2) {
                    w.name = "custom".into();
                }
            }
        }
        workloads
    }

    fn config(&self) -> Result<Config, BoxError> {
        let mut config = match &self.config {
            Some(path) => Config::from_toml_file(path)?,
            None => Config::default(),
        };
        if let Some(v) = self.durability {
            config.durability = v;
        }
        if let Some(v) = self.max_batch_entries {
            config.max_batch_entries = v;
        }
        if let Some(v) = self.max_batch_bytes {
            config.max_batch_bytes = v;
        }
        if let Some(v) = self.linger {
            config.linger = v;
        }
        config.validate()?;
        Ok(config)
    }

    fn backends(&self) -> Vec<Kind> {
        if !self.backends.is_empty() {
            self.backends.clone()
        } else if self.compare {
            Kind::compared()
        } else {
            vec![Kind::Rocklog]
        }
    }
}

/// Runs the benchmark.
pub fn run(args: &BenchArgs) -> Result<ExitCode, Box<dyn std::error::Error>> {
    run_bench(args).map_err(|e| -> Box<dyn std::error::Error> { e })
}

fn run_bench(args: &BenchArgs) -> Result<ExitCode, BoxError> {
    let config = args.config()?;
    let workloads = args.workloads();
    let backends = args.backends();
    if !cfg!(feature = "raft-engine") && backends.iter().any(|k| k.is_raft_engine()) {
        return Err("the raft-engine baseline is not built in; rebuild with `--features raft-engine`".into());
    }
    if args.rounds == 0 {
        return Err("--rounds must be at least 1".into());
    }
    // Refused here, before any run directory exists, rather than by the driver.
    if let Some(w) = workloads.iter().find(|w| w.groups < w.proposers) {
        let (name, groups, proposers) = (&w.name, w.groups, w.proposers);
        return Err(format!(
            "{name}: {groups} groups for {proposers} proposers: each proposer needs its own group"
        )
        .into());
    }
    // Created now, so a path that cannot be written fails before a long run, not after.
    if let Some(path) = &args.plot {
        std::fs::File::create(path).map_err(|e| format!("--plot {}: {e}", path.display()))?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Some(addr) = args.metrics_addr {
        let _guard = runtime.enter();
        rocklog::metrics::install_prometheus(addr)?;
        if !args.json {
            eprintln!("serving metrics on http://{addr}/metrics");
        }
    }
    let data = Root::new(args.dir.as_deref())?;
    let (root, keep) = (data.path(), matches!(data, Root::Kept(_)));
    if !keep {
        remove_on_interrupt(&runtime, root.to_owned())?;
    }
    let show_progress = !args.json || args.progress;
    let mut results = Vec::new();
    for w in &workloads {
        let runs_here: Vec<Kind> = if w.recovery {
            let (reopened, skip): (Vec<Kind>, Vec<Kind>) =
                backends.iter().partition(|k| recovery::reopens(**k));
            if !skip.is_empty() && !args.json {
                let names: Vec<&str> = skip.iter().map(|k| k.name()).collect();
                eprintln!("{}: skipping {} (nothing to reopen)", w.name, names.join(", "));
            }
            reopened
        } else {
            backends.clone()
        };
        let mut runs: Vec<(Kind, Vec<driver::Measured>)> =
            runs_here.iter().map(|k| (*k, Vec::new())).collect();
        for round in 0..args.rounds {
            // Rotate the order each round, so no backend always runs right after another's
            // cleanup; and flush every dirty page first, so one run's writeback does not
            // land in the next one's figures.
            let n = runs.len();
            for k in 0..n {
                let (kind, measured) = &mut runs[(k + round) % n];
                nix::unistd::sync();
                let label = format!("{} {} round {}/{}", w.name, kind.name(), round + 1, args.rounds);
                let dir =
                    claim_run_dir(root, &format!("{}-{}-{}", w.name, kind.name(), round)).map_err(|e| {
                        format!("{label}: cannot create its directory in {}: {e}", root.display())
                    })?;
                // A failed run's data stays too, with --dir: say where.
                let kept_in =
                    if keep { format!(" (its data is kept in {})", dir.display()) } else { String::new() };
                let mut m = runtime
                    .block_on(run_one(*kind, &dir, &config, w, &label, show_progress))
                    .map_err(|e| format!("{label}: {e}{kept_in}"))?;
                if w.recovery {
                    let mut reopens = recovery::Reopens::default();
                    runtime
                        .block_on(recovery::round(*kind, &dir, &config, &mut reopens))
                        .map_err(|e| format!("{label}: reopen: {e}{kept_in}"))?;
                    m.reopens = Some(reopens);
                }
                if keep {
                    if !args.json {
                        eprintln!("kept: {}", dir.display());
                    }
                    m.kept_dir = Some(dir);
                } else {
                    std::fs::remove_dir_all(&dir).ok();
                }
                measured.push(m);
            }
        }
        results.push(report::summarize(w, &runs, args.rounds, &config));
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "rocklog bench — {} round(s), medians; rocklog durability {:?}",
            args.rounds, config.durability
        );
        std::fs::write(path, plot::svg(&results, &title))
            .map_err(|e| format!("--plot {}: {e}", path.display()))?;
    }
    if args.json {
        // One object per (workload, backend).
        let flat: Vec<&report::Summary> = results.iter().flatten().collect();
        println!("{}", serde_json::to_string_pretty(&flat)?);
    } else {
        report::print_table(&results, &config);
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the runs' directories go.
enum Root {
    /// `--dir`, made absolute so the paths printed and in the JSON work from anywhere:
    /// every run's directory is kept.
    Kept(PathBuf),
    /// A temporary directory: each run's directory is removed after it, and the whole
    /// directory when this is dropped, even after a failed run.
    Temporary(tempfile::TempDir),
}

impl Root {
    /// `--dir` (created if missing) when given, a new temporary directory otherwise.
    fn new(dir: Option<&Path>) -> Result<Root, BoxError> {
        match dir {
            Some(dir) if dir.exists() && !dir.is_dir() => {
                Err(format!("--dir {} is not a directory", dir.display()).into())
            }
            Some(dir) => {
                let refused = |e: std::io::Error| format!("--dir {}: {e}", dir.display());
                std::fs::create_dir_all(dir).map_err(refused)?;
                Ok(Root::Kept(std::path::absolute(dir).map_err(refused)?))
            }
            None => Ok(Root::Temporary(tempfile::Builder::new().prefix("rocklog-bench-").tempdir()?)),
        }
    }

    /// The directory the runs' directories are made in.
    fn path(&self) -> &Path {
        match self {
            Root::Kept(path) => path,
            Root::Temporary(tmp) => tmp.path(),
        }
    }
}

/// Once SIGINT (Ctrl-C) or SIGTERM arrives, removes the temporary directory `dir` and
/// exits with 128 + the signal's number. Without it, a bench stopped part-way left its
/// runs' data behind in the system's temporary directory (W4 writes about 400 MiB/s, so
/// a minute of it left tens of GiB). A run still writing into `dir` may recreate a
/// file while it is removed, so the removal is tried again for up to a second.
fn remove_on_interrupt(runtime: &tokio::runtime::Runtime, dir: PathBuf) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let _entered = runtime.enter();
    let (mut interrupt, mut terminate) = (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?);
    runtime.spawn(async move {
        let code = tokio::select! {
            _ = interrupt.recv() => 130,
            _ = terminate.recv() => 143,
        };
        eprintln!("interrupted: removing {}", dir.display());
        for _ in 0..20 {
            match std::fs::remove_dir_all(&dir) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                _ => break,
            }
        }
        if dir.exists() {
            eprintln!("could not remove {}: remove it by hand", dir.display());
        }
        std::process::exit(code);
    });
    Ok(())
}

/// Creates a new directory for one run in `root`: `root/name`, or `root/name.2`,
/// `root/name.3`, ... when that name is taken (by an earlier bench into the same --dir, a
/// preset given twice, or anything else), so a run never reuses, changes or removes what
/// is already there. `create_dir` claims a name atomically: two benches sharing a --dir
/// cannot pick the same one.
fn claim_run_dir(root: &Path, name: &str) -> std::io::Result<PathBuf> {
    const MOST: u32 = 10_000;
    for n in 1..=MOST {
        let dir = if n == 1 { root.join(name) } else { root.join(format!("{name}.{n}")) };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        format!("{name}, and {name}.2 to {name}.{MOST}, are all taken"),
    ))
}

async fn run_one(
    kind: Kind,
    dir: &Path,
    config: &Config,
    w: &Workload,
    label: &str,
    show_progress: bool,
) -> Result<driver::Measured, BoxError> {
    let backend = Backend::open(kind, dir, config)?;
    let progress = Arc::new(Progress::default());
    let bar = if show_progress { ProgressBar::new(0) } else { ProgressBar::hidden() };
    bar.set_draw_target(if show_progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let (len, template) = match w.stop {
        Stop::Duration(d) => (millis(d), "{prefix:.bold} [{bar:30}] {elapsed}/{duration} {msg}"),
        Stop::Appends(n) => (n, "{prefix:.bold} [{bar:30}] {pos}/{len} appends {msg}"),
    };
    bar.set_length(len);
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar.set_prefix(label.to_owned());
    let ticker = {
        let (bar, progress, stop) = (bar.clone(), Arc::clone(&progress), w.stop);
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let done = progress.appends.load(std::sync::atomic::Ordering::Relaxed);
                match stop {
                    Stop::Duration(_) => bar.set_position(millis(started.elapsed())),
                    Stop::Appends(_) => bar.set_position(done),
                }
                bar.set_message(format!("{:.0} appends/s", rate(done, started.elapsed())));
            }
        })
    };
    let disk = sys::Disk::of(dir);
    let result = driver::run(backend, w, progress, disk.as_ref()).await;
    ticker.abort();
    bar.finish_and_clear();
    result
}

/// Milliseconds of `d`, saturating (a bench never runs for 584 million years).
fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Events per second, for the progress bar.
#[allow(clippy::cast_precision_loss)] // a count past 2^53 is out of reach
fn rate(count: u64, over: std::time::Duration) -> f64 {
    count as f64 / over.as_secs_f64()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::BenchArgs;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    /// The label of the default run (no --preset) under these flags.
    fn label(flags: &[&str]) -> String {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(flags.iter().copied())).unwrap();
        let workloads = cli.bench.workloads();
        assert_eq!(workloads.len(), 1);
        workloads[0].name.clone()
    }

    /// A taken name, whether by a directory or by a file, gets the next suffix, and what
    /// held it is left as it was.
    #[test]
    fn a_run_directory_never_reuses_a_taken_name() {
        let root = tempfile::tempdir().unwrap();
        let first = super::claim_run_dir(root.path(), "W1-serial-rocklog-0").unwrap();
        assert_eq!(first, root.path().join("W1-serial-rocklog-0"));
        std::fs::write(first.join("data"), b"first run").unwrap();
        std::fs::write(root.path().join("W1-serial-rocklog-0.2"), b"a user's file").unwrap();
        let next = super::claim_run_dir(root.path(), "W1-serial-rocklog-0").unwrap();
        assert_eq!(next, root.path().join("W1-serial-rocklog-0.3"));
        assert!(next.is_dir() && std::fs::read_dir(&next).unwrap().next().is_none());
        assert_eq!(std::fs::read(first.join("data")).unwrap(), b"first run");
        assert_eq!(std::fs::read(root.path().join("W1-serial-rocklog-0.2")).unwrap(), b"a user's file");
        let missing = root.path().join("missing");
        assert!(super::claim_run_dir(&missing, "x").is_err(), "the root must exist");
    }

    #[test]
    fn the_default_run_is_w2_until_its_shape_changes() {
        for same in [
            &[][..],
            &["--appends", "40"],
            &["--duration", "1s", "--rounds", "3"],
            &["--durability", "buffered", "--linger", "0s", "--max-batch-entries", "8"],
            &["--proposers", "64", "--groups", "64", "--entry-bytes", "256", "--entries-per-append", "1"],
            &["--purge-keep", "5", "--purge-every", "2s", "--fill-bytes", "1MiB"],
        ] {
            assert_eq!(label(same), "W2-concurrent", "{same:?}");
        }
        for changed in [
            &["--proposers", "4"][..],
            &["--groups", "65"],
            &["--entry-bytes", "100"],
            &["--entries-per-append", "2"],
        ] {
            assert_eq!(label(changed), "custom", "{changed:?}");
        }
    }
}
