//! The stores a workload can drive: rocklog, and the baselines a user would otherwise
//! write — each behind the same calls, each acknowledging an append only once durable.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prost::Message;
use rocklog::{Config, Entry, LogId, LogStore};
use rocksdb::statistics::Ticker;

/// Which store a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// rocklog: group commit through one writer.
    Rocklog,
    /// A plain file: write + fdatasync per append, one at a time (the disk's floor).
    Raw,
    /// Bare RocksDB: one `WriteBatch` with sync = true per append, from `spawn_blocking`
    /// (RocksDB's own write-group commit applies).
    RocksdbSync,
    /// Bare RocksDB the seed engine's way: manual WAL flush, write with sync = false,
    /// then `flush_wal(true)` per append.
    SeedStyle,
    /// tikv's raft-engine 0.4, `write(batch, sync = true)` per append (built with the
    /// `raft-engine` feature).
    RaftEngine,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rocklog => "rocklog",
            Kind::Raw => "raw",
            Kind::RocksdbSync => "rocksdb-sync",
            Kind::SeedStyle => "seed-style",
            Kind::RaftEngine => "raft-engine",
        }
    }
}

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An open store.
pub enum Backend {
    Rocklog(LogStore),
    Raw {
        file: Arc<Mutex<File>>,
        syncs: Arc<AtomicU64>,
    },
    Rocks {
        db: Arc<rocksdb::DB>,
        opts: rocksdb::Options,
        seed: bool,
    },
    #[cfg(feature = "raft-engine")]
    RaftEngine(super::raft_engine::RaftEngine),
}

fn key(group: u64, index: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&group.to_be_bytes());
    k[8..].copy_from_slice(&index.to_be_bytes());
    k
}

impl Backend {
    /// Opens a `kind` store in the empty directory `dir`.
    pub fn open(kind: Kind, dir: &Path, config: &Config) -> Result<Backend, BoxError> {
        std::fs::create_dir_all(dir)?;
        Ok(match kind {
            Kind::Rocklog => {
                let config = Config { path: dir.join("rocklog"), ..config.clone() };
                Backend::Rocklog(LogStore::start(config)?)
            }
            Kind::Raw => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("raw.log"))?;
                Backend::Raw { file: Arc::new(Mutex::new(file)), syncs: Arc::default() }
            }
            Kind::RocksdbSync | Kind::SeedStyle => {
                let seed = kind == Kind::SeedStyle;
                let mut opts = rocksdb::Options::default();
                opts.create_if_missing(true);
                opts.enable_statistics();
                opts.set_manual_wal_flush(seed);
                opts.set_write_buffer_size(
                    usize::try_from(config.write_buffer_size.bytes()).unwrap_or(64 << 20),
                );
                opts.set_max_background_jobs(2);
                let db = rocksdb::DB::open(&opts, dir.join("rocksdb"))?;
                Backend::Rocks { db: Arc::new(db), opts, seed }
            }
            #[cfg(feature = "raft-engine")]
            Kind::RaftEngine => {
                Backend::RaftEngine(super::raft_engine::RaftEngine::open(&dir.join("raft-engine"))?)
            }
            #[cfg(not(feature = "raft-engine"))]
            Kind::RaftEngine => {
                return Err("this rocklog was built without the raft-engine baseline; \
                            rebuild with `--features raft-engine`"
                    .into());
            }
        })
    }

    /// Appends `entries` to `group`, returning once they are durable.
    pub async fn append(&self, group: u64, entries: Vec<Entry>) -> Result<(), BoxError> {
        match self {
            Backend::Rocklog(store) => Ok(store.group(group).append(&entries).await?),
            Backend::Raw { file, syncs } => {
                let (file, syncs) = (Arc::clone(file), Arc::clone(syncs));
                tokio::task::spawn_blocking(move || -> Result<(), BoxError> {
                    let mut buf = Vec::new();
                    for e in &entries {
                        e.encode_length_delimited(&mut buf)?;
                    }
                    let mut f = file.lock().map_err(|_| "raw file lock poisoned")?;
                    f.write_all(&buf)?;
                    f.sync_data()?;
                    syncs.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                })
                .await?
            }
            Backend::Rocks { db, seed, .. } => {
                let (db, seed) = (Arc::clone(db), *seed);
                tokio::task::spawn_blocking(move || -> Result<(), BoxError> {
                    let mut batch = rocksdb::WriteBatch::default();
                    for e in &entries {
                        batch.put(key(group, e.index), e.encode_to_vec());
                    }
                    let mut wo = rocksdb::WriteOptions::default();
                    wo.set_sync(!seed);
                    db.write_opt(batch, &wo)?;
                    if seed {
                        db.flush_wal(true)?;
                    }
                    Ok(())
                })
                .await?
            }
            #[cfg(feature = "raft-engine")]
            Backend::RaftEngine(engine) => engine.append(group, entries).await,
        }
    }

    /// Deletes `group`'s entries up to `upto.index`, durably. `false` when the backend
    /// has no such operation (raw).
    pub async fn purge(&self, group: u64, upto: LogId) -> Result<bool, BoxError> {
        match self {
            Backend::Rocklog(store) => {
                store.group(group).purge(upto).await?;
                Ok(true)
            }
            Backend::Raw { .. } => Ok(false),
            Backend::Rocks { db, seed, .. } => {
                let (db, seed) = (Arc::clone(db), *seed);
                tokio::task::spawn_blocking(move || -> Result<bool, BoxError> {
                    let mut batch = rocksdb::WriteBatch::default();
                    batch.delete_range(key(group, 0), key(group, upto.index + 1));
                    let mut wo = rocksdb::WriteOptions::default();
                    wo.set_sync(!seed);
                    db.write_opt(batch, &wo)?;
                    if seed {
                        db.flush_wal(true)?;
                    }
                    Ok(true)
                })
                .await?
            }
            #[cfg(feature = "raft-engine")]
            Backend::RaftEngine(engine) => {
                engine.purge(group, upto).await?;
                Ok(true)
            }
        }
    }

    /// Reads up to `n` entries of `group` from `lo`; the number read, or `None` when the
    /// backend cannot read (raw).
    pub fn read(&self, group: u64, lo: u64, n: u64) -> Result<Option<usize>, BoxError> {
        match self {
            Backend::Rocklog(store) => match store.group(group).entries(lo..lo + n, None) {
                Ok(v) => Ok(Some(v.len())),
                // A group the proposers have not reached yet, or a range just purged.
                Err(rocklog::Error::Compacted { .. } | rocklog::Error::GroupNotFound(_)) => Ok(Some(0)),
                Err(e) => Err(e.into()),
            },
            Backend::Raw { .. } => Ok(None),
            Backend::Rocks { db, .. } => {
                let mut ro = rocksdb::ReadOptions::default();
                ro.set_iterate_upper_bound(key(group, lo + n).to_vec());
                let mut it = db.raw_iterator_opt(ro);
                it.seek(key(group, lo));
                let mut count = 0;
                while let Some(v) = it.value() {
                    Entry::decode(v)?;
                    count += 1;
                    it.next();
                }
                it.status()?;
                Ok(Some(count))
            }
            #[cfg(feature = "raft-engine")]
            Backend::RaftEngine(engine) => Ok(Some(engine.read(group, lo, n)?)),
        }
    }

    /// Fsyncs done so far, where the backend can tell.
    pub fn syncs(&self) -> u64 {
        match self {
            Backend::Rocklog(store) => store.stats().syncs,
            Backend::Raw { syncs, .. } => syncs.load(Ordering::Relaxed),
            Backend::Rocks { opts, .. } => opts.get_ticker_count(Ticker::WalFileSynced),
            #[cfg(feature = "raft-engine")]
            Backend::RaftEngine(_) => super::raft_engine::RaftEngine::syncs(),
        }
    }

    /// Stops the store and releases its directory.
    pub async fn close(self) -> Result<(), BoxError> {
        if let Backend::Rocklog(store) = &self {
            store.shutdown().await?;
        }
        Ok(())
    }
}
