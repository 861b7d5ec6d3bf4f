//! `crash-child`: the workload `tests/crash_loop.rs` SIGKILLs at random moments, then
//! checks the reopened directory against what this process acknowledged. A test-only
//! program of the `rocklog-testkit` package: never shipped in the `rocklog` binary.
//!
//! It opens the directory (continuing whatever state a killed predecessor left), prints the
//! recovered state, then runs `--tasks` tokio tasks, each the only writer of its own groups
//! and each with one operation in flight at a time, plus a task that flushes every few
//! milliseconds. Every event is one line on stdout, written with one `write` and flushed at
//! once, so a kill can lose the line of an operation but never reorder or merge lines:
//!
//! ```text
//! R g=3 first=12 last=5:40 purged=4:11 hs=5/2/30   recovered state of an existing group
//! R                                                 recovery printed, workload starts
//! > A g=3 first=41 n=4 term=5 seed=991              about to send (may or may not land)
//! A g=3 first=41 n=4 term=5 seed=991                acknowledged (the same text)
//! T g=3 from=20 · P g=3 upto=5:19 · H g=3 hs=6/-/19  truncate, purge, hard state (term/vote/commit)
//! > F 7 · F 7                                       flush sent, flush returned
//! E <what failed>                                   a command failed: the child exits with 1
//! S                                                 --ops reached; shutting down
//! X                                                 the engine was shut down
//! ```
//!
//! An append's payloads are [`payload`]`(seed, index)`, so the parent regenerates them.
//! Under `--durability buffered` an acknowledgement means the batch reached the WAL in the
//! OS, which a process kill cannot undo; a `F` line additionally covers power loss.

use std::error::Error;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use rocklog::{ByteSize, Config, Durability, Entry, Group, HardState, LogId, LogState, LogStore};
use rocklog_testkit::{payload, splitmix};

type BoxError = Box<dyn Error + Send + Sync>;

/// Options of `crash-child`.
#[derive(Parser, Debug)]
#[command(name = "crash-child", about = "The crash loop's workload (rocklog-testkit)")]
struct CrashChildArgs {
    /// The data directory: created if missing, continued if a previous run left state.
    #[arg(long)]
    dir: PathBuf,
    /// Seeds every choice and payload of this run.
    #[arg(long)]
    seed: u64,
    /// When the engine acknowledges writes.
    #[arg(long, value_enum, default_value_t = Mode::Sync)]
    durability: Mode,
    /// Concurrent writer tasks; group k belongs to task k % tasks.
    #[arg(long, default_value_t = 4)]
    tasks: u64,
    /// Groups: ids 0..groups-1, the last one being `u64::MAX`.
    #[arg(long, default_value_t = 8)]
    groups: u64,
    /// Operations per task before a clean shutdown; 0 runs until killed.
    #[arg(long, default_value_t = 0)]
    ops: u64,
    /// Never call `flush()`: with `--durability buffered`, nothing acknowledged is ever
    /// fsynced. The power-loss loop's control: a harness that cannot see the loss then
    /// proves nothing.
    #[arg(long)]
    no_flush: bool,
    /// rocklog settings from a TOML file (its `path` and `durability` are replaced by
    /// `--dir` and `--durability`). Without one: the defaults with a 256 KiB memtable.
    #[arg(long)]
    config: Option<PathBuf>,
}

/// The engine's durability, as a command-line value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// `Durability::Sync`.
    Sync,
    /// `Durability::Buffered`.
    Buffered,
}

fn main() -> ExitCode {
    match run(CrashChildArgs::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("crash-child: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the workload until killed (or for `--ops` operations per task).
fn run(args: CrashChildArgs) -> Result<ExitCode, Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(drive(args)).map_err(|e| -> Box<dyn Error> { e })
}

async fn drive(args: CrashChildArgs) -> Result<ExitCode, BoxError> {
    if args.tasks == 0 || args.groups < args.tasks {
        return Err("need at least one task and one group per task".into());
    }
    let mut config = match &args.config {
        Some(file) => Config::from_toml_file(file)?,
        None => Config {
            // Small memtables: flushes to SST files (and kills during them) happen every
            // few hundred appends, not once a run.
            write_buffer_size: ByteSize::kib(256),
            ..Config::default()
        },
    };
    config.path.clone_from(&args.dir);
    config.durability = match args.durability {
        Mode::Sync => Durability::Sync,
        Mode::Buffered => Durability::Buffered,
    };
    let store = LogStore::start(config)?;
    let out = Arc::new(Out(Mutex::new(std::io::stdout())));

    let mut owned: Vec<Vec<View>> = (0..args.tasks).map(|_| Vec::new()).collect();
    for k in 0..args.groups {
        let id = if k + 1 == args.groups { u64::MAX } else { k };
        let view = View::recover(store.group(id))?;
        if view.exists {
            let hs = view.hard_state.map_or("-".into(), |h| hs_text(&h));
            let s = &view.log;
            let (first, last, purged) = (opt(s.first_index), log_id(s.last_log_id), log_id(s.purged));
            out.line(&format!("R g={id} first={first} last={last} purged={purged} hs={hs}"))?;
        }
        owned[usize::try_from(k % args.tasks)?].push(view);
    }
    out.line("R")?;

    let mut tasks = tokio::task::JoinSet::new();
    for (t, views) in owned.into_iter().enumerate() {
        let rng = Rng::new(args.seed ^ (t as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
        tasks.spawn(writer(Arc::clone(&out), views, rng, args.ops));
    }
    let flusher = (!args.no_flush).then(|| tokio::spawn(flusher(store.clone(), Arc::clone(&out))));
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done.map_err(|e| -> BoxError { e.into() }).and_then(|r| r) {
            let _ = out.line(&format!("E {e}"));
            return Ok(ExitCode::from(1));
        }
    }
    if let Some(flusher) = flusher {
        flusher.abort();
        store.flush().await?;
    }
    out.line("S")?;
    store.shutdown().await?;
    out.line("X")?;
    Ok(ExitCode::SUCCESS)
}

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        splitmix(&mut self.0)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
}

/// Stdout, one whole line per `write`, flushed at once: a line is out before the next
/// operation starts, and a kill never leaves two lines merged.
struct Out(Mutex<std::io::Stdout>);

impl Out {
    fn line(&self, text: &str) -> Result<(), BoxError> {
        let mut line = String::with_capacity(text.len() + 1);
        line.push_str(text);
        line.push('\n');
        let mut out = self.0.lock().map_err(|_| "stdout lock poisoned")?;
        // A closed pipe (the parent is gone) ends the child here.
        out.write_all(line.as_bytes())?;
        out.flush()?;
        Ok(())
    }
}

/// One write, as printed and as sent.
#[derive(Clone, Copy, Debug)]
enum Op {
    Append { group: u64, first: u64, n: u64, term: u64, seed: u64 },
    Truncate { group: u64, from: u64 },
    Purge { group: u64, upto: LogId },
    Hard { group: u64, hs: HardState },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Append { group, first, n, term, seed } => {
                write!(f, "A g={group} first={first} n={n} term={term} seed={seed}")
            }
            Op::Truncate { group, from } => write!(f, "T g={group} from={from}"),
            Op::Purge { group, upto } => write!(f, "P g={group} upto={}:{}", upto.term, upto.index),
            Op::Hard { group, hs } => write!(f, "H g={group} hs={}", hs_text(hs)),
        }
    }
}

impl Op {
    async fn send(&self, group: &Group) -> rocklog::Result<()> {
        match *self {
            Op::Append { first, n, term, seed, .. } => {
                let entries: Vec<Entry> =
                    (first..first + n).map(|i| Entry::new(i, term, payload(seed, i))).collect();
                if seed % 4 == 1 {
                    // A blocking append, as a Raft node on threads makes: committed on
                    // this thread when the writer is idle (`Config::inline_commits`).
                    let group = group.blocking();
                    return tokio::task::block_in_place(move || group.append(&entries));
                }
                if seed % 2 == 0 {
                    return group.append(&entries).await;
                }
                // Every other append is pipelined (`append_then`): acknowledged once its
                // durable callback runs, so kills also land between "visible" and "synced"
                // and while the syncer thread is fsyncing.
                let (tx, rx) = tokio::sync::oneshot::channel();
                group
                    .append_then(&entries, move |r| {
                        let _ = tx.send(r);
                    })
                    .await?;
                rx.await.unwrap_or(Err(rocklog::Error::Closed))
            }
            Op::Truncate { from, .. } => group.truncate(from).await,
            Op::Purge { upto, .. } => group.purge(upto).await,
            Op::Hard { hs, .. } => group.save_hard_state(hs).await,
        }
    }
}

fn hs_text(hs: &HardState) -> String {
    format!("{}/{}/{}", hs.term, opt(hs.vote), hs.commit)
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn log_id(id: Option<LogId>) -> String {
    id.map_or("-".into(), |id| format!("{}:{}", id.term, id.index))
}

/// What a task knows of one of its groups; it is the group's only writer.
struct View {
    group: Group,
    exists: bool,
    log: LogState,
    hard_state: Option<HardState>,
    /// The term new entries get: never below any term in the log, the boundary or the
    /// hard state, so no append is refused for a term regression.
    term: u64,
}

impl View {
    fn recover(group: Group) -> Result<Self, BoxError> {
        let exists = group.exists();
        let (log, hard_state) =
            if exists { (group.log_state()?, group.hard_state()?) } else { (LogState::default(), None) };
        let term = [log.last_log_id.map(|l| l.term), log.purged.map(|p| p.term), hard_state.map(|h| h.term)]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0)
            .max(1);
        Ok(View { group, exists, log, hard_state, term })
    }

    /// The next operation: mostly appends, with overwrites, truncates, purges and hard
    /// states mixed in; a log past 256 entries is purged down to a short tail half the time.
    fn next_op(&mut self, rng: &mut Rng) -> Result<Op, BoxError> {
        let group = self.group.id();
        let entries = match (self.log.first_index, self.log.last_log_id) {
            (Some(first), Some(last)) => Some((first, last.index)),
            _ => None,
        };
        let roll = if self.log.len() > 256 && rng.chance(2) { 70 } else { rng.below(100) };
        let op = match (roll, entries) {
            (55..63, Some((first, last))) => {
                self.term += 1;
                // Like Raft: mostly a short conflicting suffix, sometimes most of the log.
                let start = if rng.chance(8) {
                    rng.between(first, last)
                } else {
                    last - rng.below(4).min(last - first)
                };
                Op::Append { group, first: start, n: rng.between(1, 6), term: self.term, seed: rng.next() }
            }
            (63..70, _) if self.exists => {
                let from = match entries {
                    Some((first, last)) if rng.chance(8) => rng.between(first, last + 1),
                    Some((first, last)) => last + 1 - rng.below(8).min(last + 1 - first),
                    None => self.log.next_index().unwrap_or(1),
                };
                Op::Truncate { group, from }
            }
            // Short logs are rarely purged, so logs reach a few hundred entries (and SSTs).
            (70..83, _) if self.log.len() >= 64 || rng.chance(4) => {
                Op::Purge { group, upto: self.purge_point(rng, entries)? }
            }
            (83.., _) => {
                if rng.chance(3) {
                    self.term += 1;
                }
                let vote = rng.below(6);
                let commit = rng.below(self.log.last_index().unwrap_or(0) + 1);
                Op::Hard {
                    group,
                    hs: HardState { term: self.term, vote: (vote > 0).then_some(vote), commit },
                }
            }
            _ => {
                if rng.chance(20) {
                    self.term += 1;
                }
                let n = if rng.chance(10) { rng.between(1, 32) } else { rng.between(1, 4) };
                let first = self.log.next_index().unwrap_or_else(|| rng.below(2));
                Op::Append { group, first, n, term: self.term, seed: rng.next() }
            }
        };
        Ok(op)
    }

    /// Mostly an index inside the log (with its stored term); sometimes past the end (an
    /// empty log remains) or the current boundary again (a no-op).
    fn purge_point(&self, rng: &mut Rng, entries: Option<(u64, u64)>) -> Result<LogId, BoxError> {
        if let Some((first, last)) = entries
            && !rng.chance(10)
        {
            let index = if last - first >= 256 { last - rng.below(64) } else { rng.between(first, last) };
            let term = self.group.term(index)?.ok_or_else(|| format!("no term at {index}"))?;
            return Ok(LogId::new(term, index));
        }
        if let Some(purged) = self.log.purged
            && rng.chance(4)
        {
            return Ok(purged);
        }
        let past = self.log.last_index().map_or(0, |l| l + 1);
        Ok(LogId::new(self.term, past + rng.below(4)))
    }

    fn acknowledged(&mut self) -> Result<(), BoxError> {
        self.exists = true;
        self.log = self.group.log_state()?;
        self.hard_state = self.group.hard_state()?;
        Ok(())
    }
}

/// One writer task: one operation in flight at a time, over its own groups.
async fn writer(out: Arc<Out>, mut views: Vec<View>, mut rng: Rng, ops: u64) -> Result<(), BoxError> {
    let mut done = 0;
    while ops == 0 || done < ops {
        let k = usize::try_from(rng.below(views.len() as u64)).unwrap_or(0);
        let view = &mut views[k];
        let op = view.next_op(&mut rng)?;
        out.line(&format!("> {op}"))?;
        op.send(&view.group).await.map_err(|e| format!("{op}: {e}"))?;
        out.line(&op.to_string())?;
        view.acknowledged()?;
        done += 1;
    }
    Ok(())
}

/// Flushes every few milliseconds: `> F n` before, `F n` once it returned.
async fn flusher(store: LogStore, out: Arc<Out>) -> Result<(), BoxError> {
    for n in 1u64.. {
        tokio::time::sleep(Duration::from_millis(3 + n % 17)).await;
        out.line(&format!("> F {n}"))?;
        store.flush().await?;
        out.line(&format!("F {n}"))?;
        let stats = store.stats();
        out.line(&format!("C {}", stats.inline_commits))?;
        out.line(&format!("T {}", stats.sst_files_trimmed))?;
    }
    Ok(())
}
