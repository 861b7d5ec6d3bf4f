//! W6 recovery: how long a store takes to open again over a full log.
//!
//! The workload's run fills the store (1000 groups, 2 GiB by default) and closes it
//! cleanly. Then, for each round:
//! - a **clean reopen** is timed (page cache dropped first where the process may, so the
//!   reopen reads from disk as after a reboot);
//! - a child process (`rocklog __bench-writer`) opens the store, appends to it from one
//!   thread until it is killed with SIGKILL a second after its first durable append, and
//!   a **reopen after the kill** is timed: the store replays whatever its log holds past
//!   its last checkpoint.
//!
//! Each reopen ends with a read of a filled group's first entry, so a store that opens
//! lazily still pays for finding its data.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rocklog::{Config, Entry};

use super::backend::{Backend, BoxError, Kind};

/// What W6 measured of one store, besides its fill.
#[derive(Clone, Debug, Default)]
pub struct Reopens {
    /// Clean reopens, one per round.
    pub clean: Vec<Duration>,
    /// Reopens after the writer child was killed, one per round.
    pub after_kill: Vec<Duration>,
    /// Whether the page cache was dropped before each reopen (needs root).
    pub cold: bool,
}

/// The groups the writer child appends to: above every group a workload fills, so its
/// appends start at index 1 whatever the fill left.
const CHILD_GROUPS: std::ops::Range<u64> = 1_000_000..1_000_016;

/// Whether `kind` can be reopened over the data it wrote (the raw files are recreated).
pub fn reopens(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Rocklog
            | Kind::RocklogThreads
            | Kind::RaftEngine
            | Kind::RaftEngineSpawnBlocking
            | Kind::RocksdbSync
    )
}

/// Drops the page cache, so the next open reads from disk; `false` where the process may
/// not (not root, or no /proc).
fn drop_page_cache() -> bool {
    nix::unistd::sync();
    std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

/// Opens the `kind` store in `dir`, reads `group`'s first entry, closes it; the time to
/// the read's answer.
async fn timed_open(kind: Kind, dir: &Path, config: &Config, group: u64) -> Result<Duration, BoxError> {
    let started = Instant::now();
    let backend = Backend::open(kind, dir, config)?;
    let read = backend.read(group, 1, 1)?;
    let took = started.elapsed();
    backend.close().await?;
    match read {
        Some(1) => Ok(took),
        other => {
            Err(format!("{}: group {group}'s first entry is missing after a reopen ({other:?})", kind.name())
                .into())
        }
    }
}

/// One round of W6 on the store a fill left in `dir`: a clean reopen, then a reopen after
/// a killed writer.
pub async fn round(kind: Kind, dir: &Path, config: &Config, into: &mut Reopens) -> Result<(), BoxError> {
    into.cold = drop_page_cache();
    into.clean.push(timed_open(kind, dir, config, 0).await?);
    kill_a_writer(kind, dir, config)?;
    into.cold &= drop_page_cache();
    into.after_kill.push(timed_open(kind, dir, config, 0).await?);
    Ok(())
}

/// Runs `rocklog __bench-writer` on `dir` and kills it with SIGKILL a second after its
/// first durable append.
fn kill_a_writer(kind: Kind, dir: &Path, config: &Config) -> Result<(), BoxError> {
    let config_file = tempfile::NamedTempFile::new()?;
    std::fs::write(config_file.path(), config.to_toml_string())?;
    let mut child = Command::new(std::env::current_exe()?)
        .arg("__bench-writer")
        .arg("--backend")
        .arg(kind.name())
        .arg("--dir")
        .arg(dir)
        .arg("--config")
        .arg(config_file.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    if line.trim() != "ready" {
        let _ = child.kill();
        let status = child.wait()?;
        return Err(format!("the writer child failed before its first append ({status})").into());
    }
    std::thread::sleep(Duration::from_secs(1));
    child.kill()?;
    child.wait()?;
    Ok(())
}

/// Options of the hidden `rocklog __bench-writer`, W6's victim.
#[derive(clap::Args, Debug)]
pub struct WriterArgs {
    /// The store to open.
    #[arg(long, value_enum)]
    backend: Kind,
    /// The directory a bench run filled.
    #[arg(long)]
    dir: PathBuf,
    /// rocklog's settings, as the bench used them.
    #[arg(long)]
    config: PathBuf,
}

/// Opens the store and appends 64 entries of 1 KiB at a time to its own groups, printing
/// `ready` after the first durable append, until it is killed, or until the bench that
/// started it is gone (stopped by a signal between the child's start and its kill): an
/// orphan would append forever into a directory the bench removed.
pub fn writer_child(args: &WriterArgs) -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    let bench = std::os::unix::process::parent_id();
    let config = Config::from_toml_file(&args.config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let backend = Backend::open(args.backend, &args.dir, &config).map_err(|e| e.to_string())?;
    let threaded = backend.threaded();
    let payload = bytes::Bytes::from(vec![0x5a; 1024]);
    let mut next = vec![1u64; CHILD_GROUPS.clone().count()];
    for turn in 0u64.. {
        let slot = usize::try_from(turn % next.len() as u64).unwrap_or(0);
        let group = CHILD_GROUPS.start + slot as u64;
        let first = next[slot];
        let entries: Vec<Entry> = (first..first + 64).map(|i| Entry::new(i, 1, payload.clone())).collect();
        match &threaded {
            Some(store) => store.append(group, &entries),
            None => runtime.block_on(backend.append(group, entries)),
        }
        .map_err(|e| e.to_string())?;
        next[slot] += 64;
        if turn == 0 {
            println!("ready");
        }
        if std::os::unix::process::parent_id() != bench {
            break;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
