//! The stores a workload can drive: rocklog, and the baselines a user would otherwise
//! write — each behind the same calls, each acknowledging an append only once durable,
//! and each driven the way its own users drive it.

use std::path::Path;
use std::sync::Arc;

use rocklog::{Config, Entry, LogId, LogStore};

#[cfg(feature = "raft-engine")]
use super::raft_engine::RaftEngine;
use super::raw::{Raw, RawBatched, RawPrealloc};
use super::rocks::Rocks;

/// Which store a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// rocklog: group commit through one writer, appended to from tokio tasks.
    Rocklog,
    /// The same rocklog appended to through its blocking writes ([`rocklog::BlockingGroup`])
    /// from one OS thread per proposer: how a Raft node on threads drives it.
    RocklogThreads,
    /// tikv's raft-engine 0.4 with TiKV's settings, `write(batch, sync = true)` per
    /// append from one OS thread per proposer (built with the `raft-engine` feature).
    RaftEngine,
    /// The same raft-engine called through `tokio::task::spawn_blocking`: as an async
    /// caller would reach it.
    RaftEngineSpawnBlocking,
    /// Bare RocksDB: one `WriteBatch` with sync = true per append, from one OS thread per
    /// proposer (RocksDB's own write-group commit applies).
    RocksdbSync,
    /// The same bare RocksDB called through `spawn_blocking`.
    RocksdbSyncSpawnBlocking,
    /// `pwrite` + `fdatasync` per append, one at a time, into a preallocated,
    /// already-written file: the disk's floor for one durable append.
    RawPrealloc,
    /// Every queued proposer's bytes in one `write` + `fdatasync`: ideal group commit
    /// with no engine.
    RawBatched,
    /// A growing file: `write` + `fdatasync` per append, one at a time.
    Raw,
    /// Bare RocksDB the seed engine's way: manual WAL flush, write with sync = false,
    /// then `flush_wal(true)` per append, from OS threads.
    SeedStyle,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rocklog => "rocklog",
            Kind::RocklogThreads => "rocklog-threads",
            Kind::RaftEngine => "raft-engine",
            Kind::RaftEngineSpawnBlocking => "raft-engine-spawn-blocking",
            Kind::RocksdbSync => "rocksdb-sync",
            Kind::RocksdbSyncSpawnBlocking => "rocksdb-sync-spawn-blocking",
            Kind::RawPrealloc => "raw-prealloc",
            Kind::RawBatched => "raw-batched",
            Kind::Raw => "raw",
            Kind::SeedStyle => "seed-style",
        }
    }

    /// Whether this backend needs the `raft-engine` feature.
    pub fn is_raft_engine(self) -> bool {
        matches!(self, Kind::RaftEngine | Kind::RaftEngineSpawnBlocking)
    }

    /// The backends `--compare` runs: rocklog from tasks and from threads, the peer
    /// engines driven natively and through `spawn_blocking`, and the disk's floor and
    /// ceiling.
    pub fn compared() -> Vec<Kind> {
        let mut all = vec![Kind::Rocklog, Kind::RocklogThreads];
        if cfg!(feature = "raft-engine") {
            all.extend([Kind::RaftEngine, Kind::RaftEngineSpawnBlocking]);
        }
        all.extend([Kind::RocksdbSync, Kind::RawPrealloc, Kind::RawBatched]);
        all
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A baseline: a store with a blocking, durable append.
pub enum Baseline {
    Raw(Raw),
    RawPrealloc(RawPrealloc),
    RawBatched(RawBatched),
    Rocks(Rocks),
    #[cfg(feature = "raft-engine")]
    RaftEngine(RaftEngine),
}

impl Baseline {
    /// Appends `entries` to `group`, returning once they are durable.
    pub fn append(&self, group: u64, entries: &[Entry]) -> Result<(), BoxError> {
        match self {
            Baseline::Raw(raw) => raw.append(entries),
            Baseline::RawPrealloc(raw) => raw.append(entries),
            Baseline::RawBatched(raw) => raw.append(entries),
            Baseline::Rocks(db) => db.append(group, entries),
            #[cfg(feature = "raft-engine")]
            Baseline::RaftEngine(engine) => engine.append(group, entries),
        }
    }

    /// Deletes each listed group's entries up to its log id, durably; `false` when the
    /// baseline has no such operation (the raw files).
    pub fn purge(&self, upto: &[(u64, LogId)]) -> Result<bool, BoxError> {
        match self {
            Baseline::Raw(_) | Baseline::RawPrealloc(_) | Baseline::RawBatched(_) => Ok(false),
            Baseline::Rocks(db) => db.purge(upto).map(|()| true),
            #[cfg(feature = "raft-engine")]
            Baseline::RaftEngine(engine) => engine.purge(upto).map(|()| true),
        }
    }

    /// Reads up to `n` entries of `group` from `lo`; `None` when the baseline cannot read.
    pub fn read(&self, group: u64, lo: u64, n: u64) -> Result<Option<usize>, BoxError> {
        match self {
            Baseline::Raw(_) | Baseline::RawPrealloc(_) | Baseline::RawBatched(_) => Ok(None),
            Baseline::Rocks(db) => db.read(group, lo, n).map(Some),
            #[cfg(feature = "raft-engine")]
            Baseline::RaftEngine(engine) => engine.read(group, lo, n).map(Some),
        }
    }

    fn syncs(&self) -> u64 {
        match self {
            Baseline::Raw(raw) => raw.syncs(),
            Baseline::RawPrealloc(raw) => raw.syncs(),
            Baseline::RawBatched(raw) => raw.syncs(),
            Baseline::Rocks(db) => db.syncs(),
            #[cfg(feature = "raft-engine")]
            Baseline::RaftEngine(_) => RaftEngine::syncs(),
        }
    }
}

/// How a store's proposers call it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drive {
    /// One OS thread per proposer calling the blocking append: how a baseline's users
    /// drive it, and rocklog's through [`rocklog::BlockingGroup`].
    Threads,
    /// tokio tasks: rocklog's async append, or a baseline's blocking one reached through
    /// `spawn_blocking`.
    Tasks,
}

/// An open store.
pub enum Backend {
    Rocklog(LogStore, Drive),
    Baseline(Arc<Baseline>, Drive),
}

/// A store's blocking append, for the proposers' own OS threads.
#[derive(Clone)]
pub enum Threaded {
    Rocklog(LogStore),
    Baseline(Arc<Baseline>),
}

impl Threaded {
    /// Appends `entries` to `group`, returning once they are durable.
    pub fn append(&self, group: u64, entries: &[Entry]) -> Result<(), BoxError> {
        match self {
            Threaded::Rocklog(store) => Ok(store.group(group).blocking().append(entries)?),
            Threaded::Baseline(b) => b.append(group, entries),
        }
    }
}

impl Backend {
    /// Opens a `kind` store in the empty directory `dir`.
    pub fn open(kind: Kind, dir: &Path, config: &Config) -> Result<Backend, BoxError> {
        std::fs::create_dir_all(dir)?;
        let baseline = |b: Baseline, drive| Ok(Backend::Baseline(Arc::new(b), drive));
        match kind {
            Kind::Rocklog | Kind::RocklogThreads => {
                // `dir` itself, so a run directory kept by --dir is one `rocklog inspect`,
                // `check` and `dump` read as it is.
                let config = Config { path: dir.to_owned(), ..config.clone() };
                let drive = if kind == Kind::Rocklog { Drive::Tasks } else { Drive::Threads };
                Ok(Backend::Rocklog(LogStore::start(config)?, drive))
            }
            Kind::Raw => baseline(Baseline::Raw(Raw::open(dir)?), Drive::Threads),
            Kind::RawPrealloc => baseline(Baseline::RawPrealloc(RawPrealloc::open(dir)?), Drive::Threads),
            Kind::RawBatched => baseline(Baseline::RawBatched(RawBatched::open(dir)?), Drive::Threads),
            Kind::RocksdbSync => baseline(Baseline::Rocks(Rocks::open(dir, config, false)?), Drive::Threads),
            Kind::RocksdbSyncSpawnBlocking => {
                baseline(Baseline::Rocks(Rocks::open(dir, config, false)?), Drive::Tasks)
            }
            Kind::SeedStyle => baseline(Baseline::Rocks(Rocks::open(dir, config, true)?), Drive::Threads),
            #[cfg(feature = "raft-engine")]
            Kind::RaftEngine => {
                baseline(Baseline::RaftEngine(RaftEngine::open(&dir.join("raft-engine"))?), Drive::Threads)
            }
            #[cfg(feature = "raft-engine")]
            Kind::RaftEngineSpawnBlocking => {
                baseline(Baseline::RaftEngine(RaftEngine::open(&dir.join("raft-engine"))?), Drive::Tasks)
            }
            #[cfg(not(feature = "raft-engine"))]
            Kind::RaftEngine | Kind::RaftEngineSpawnBlocking => {
                Err("this rocklog was built without the raft-engine baseline; \
                     rebuild with `--features raft-engine`"
                    .into())
            }
        }
    }

    /// The blocking append to call from the proposers' own OS threads, if that is how
    /// this backend is driven.
    pub fn threaded(&self) -> Option<Threaded> {
        match self {
            Backend::Rocklog(store, Drive::Threads) => Some(Threaded::Rocklog(store.clone())),
            Backend::Baseline(b, Drive::Threads) => Some(Threaded::Baseline(Arc::clone(b))),
            _ => None,
        }
    }

    /// Appends `entries` to `group` from a task, returning once they are durable. A
    /// baseline is reached through `spawn_blocking`, whatever its [`Drive`].
    pub async fn append(&self, group: u64, entries: Vec<Entry>) -> Result<(), BoxError> {
        match self {
            Backend::Rocklog(store, _) => Ok(store.group(group).append(&entries).await?),
            Backend::Baseline(b, _) => {
                let b = Arc::clone(b);
                tokio::task::spawn_blocking(move || b.append(group, &entries)).await?
            }
        }
    }

    /// Deletes each listed group's entries up to its log id, durably. `false` when the
    /// backend has no such operation (the raw files). rocklog's purges go concurrently,
    /// one per group, and share group commits; a baseline's go in one batch, as TiKV's
    /// log GC batches them.
    pub async fn purge(&self, upto: Vec<(u64, LogId)>) -> Result<bool, BoxError> {
        match self {
            Backend::Rocklog(store, _) => {
                let mut tasks = tokio::task::JoinSet::new();
                for (group, id) in upto {
                    let group = store.group(group);
                    tasks.spawn(async move { group.purge(id).await });
                }
                while let Some(done) = tasks.join_next().await {
                    done??;
                }
                Ok(true)
            }
            Backend::Baseline(b, _) => {
                let b = Arc::clone(b);
                tokio::task::spawn_blocking(move || b.purge(&upto)).await?
            }
        }
    }

    /// Reads up to `n` entries of `group` from `lo`; the number read, or `None` when the
    /// backend cannot read (the raw files).
    pub fn read(&self, group: u64, lo: u64, n: u64) -> Result<Option<usize>, BoxError> {
        match self {
            Backend::Rocklog(store, _) => match store.group(group).entries(lo..lo + n, None) {
                Ok(v) => Ok(Some(v.len())),
                // A group the proposers have not reached yet, or a range just purged.
                Err(rocklog::Error::Compacted { .. } | rocklog::Error::GroupNotFound(_)) => Ok(Some(0)),
                Err(e) => Err(e.into()),
            },
            Backend::Baseline(b, _) => b.read(group, lo, n),
        }
    }

    /// Fsyncs done so far, where the backend can tell.
    pub fn syncs(&self) -> u64 {
        match self {
            Backend::Rocklog(store, _) => store.stats().syncs,
            Backend::Baseline(b, _) => b.syncs(),
        }
    }

    /// RocksDB's counters so far: SST bytes written by flushes and by compactions, and
    /// microseconds writers stalled; `None` for a store without SST files.
    pub fn sst_bytes(&self) -> Option<[u64; 3]> {
        match self {
            Backend::Rocklog(store, _) => {
                let s = store.storage_stats();
                Some([s.flush_bytes, s.compaction_bytes, s.stall_micros])
            }
            Backend::Baseline(b, _) => match &**b {
                Baseline::Rocks(db) => Some(db.sst_bytes()),
                _ => None,
            },
        }
    }

    /// Stops the store and releases its directory.
    pub async fn close(self) -> Result<(), BoxError> {
        if let Backend::Rocklog(store, _) = &self {
            store.shutdown().await?;
        }
        Ok(())
    }
}
