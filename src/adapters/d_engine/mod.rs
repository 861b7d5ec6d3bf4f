//! Storage for [d-engine](https://crates.io/crates/d-engine-core) 0.2.4: its
//! [`StorageEngine`], [`LogStore`](d_engine_core::LogStore) and
//! [`MetaStore`](d_engine_core::MetaStore) over one
//! rocklog [`Group`] (feature `d-engine`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use d_engine_core::{LogStore as _, StorageEngine as _};
//! use rocklog::{Config, d_engine::DEngineStorage};
//!
//! # async fn demo() -> Result<(), d_engine_core::Error> {
//! // One engine for this node; group 1 holds this Raft group's log and hard state.
//! let storage = Arc::new(DEngineStorage::open(Config::new("/var/lib/node/raft-log"), 1)?);
//! assert!(storage.log_store().is_write_durable());
//! // ... hand `storage` to d-engine's `BufferedRaftLog` / node builder ...
//! storage.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Several d-engine groups (or other libraries' groups) can share one engine, and with it
//! their fsyncs: open one [`LogStore`] and call [`DEngineStorage::new`]
//! once per group.
//!
//! # What maps to what
//!
//! | d-engine | rocklog |
//! |---|---|
//! | `persist_entries(entries)` | [`Group::append`]; entries already in the log (same index and term) are skipped, a conflicting overlap replaces the suffix atomically |
//! | `replace_range(from, entries)` | one [`Group::append`] starting at `from`: the truncation and the new entries commit in one batch |
//! | `truncate(from)`, `purge(id)`, `reset()` | [`Group::truncate`], [`Group::purge`], [`Group::reset`] (the hard state stays) |
//! | `load_purge_boundary()` | [`Group::purged`] |
//! | `last_index()` | [`Group::last_index`]: the last entry, or the purge boundary of an empty log, so d-engine numbers the next entry right after a snapshot; 0 when never written |
//! | `entry`, `get_entries` | [`Group::entry`], [`Group::entries`] (the range is cut to what the log holds) |
//! | `save_hard_state`, `load_hard_state` | [`Group::save_hard_state`], [`Group::hard_state`], encoded as below |
//! | `is_write_durable()` | `true` under [`Durability::Sync`](crate::Durability::Sync): every write resolves after its fsync, so d-engine never needs `flush` |
//! | `flush()` / `flush_async()` | [`LogStore::flush`](crate::LogStore::flush) under `Buffered`; nothing to do under `Sync` |
//!
//! **Entries.** A rocklog entry's index and term are the d-engine entry's; its payload is
//! the d-engine `Entry`'s protobuf encoding *without* index and term (field 3, the
//! `EntryPayload`, alone; nothing when the entry has no payload). Index and term are stored
//! once, where rocklog validates them (contiguity, terms never decreasing, purge boundary),
//! and an entry with no payload stays distinct from one with an empty payload. Reading
//! decodes the payload and sets index and term from rocklog; a payload that carries its own
//! different index or term is reported as corruption.
//!
//! **Hard state.** d-engine's `HardState { current_term, voted_for: Option<VotedFor {
//! voted_for_id: u32, voted_for_term: u64, committed: bool }> }` has two values rocklog's
//! [`HardState`](crate::HardState) has no field for, and d-engine needs both (it grants a
//! vote only if `voted_for_term` is older than the request's term; `committed` marks a
//! known leader). d-engine does not persist a commit index, so the encoding is exact and
//! one write stays one atomic record:
//!
//! | rocklog | d-engine |
//! |---|---|
//! | `term` | `current_term` |
//! | `vote: None` | `voted_for: None` (and `commit` is 0) |
//! | `vote: Some(v)` | `voted_for_id = v & 0xffff_ffff`, `committed = v & (1 << 32) != 0` |
//! | `commit` | `voted_for_term` |
//!
//! `rocklog inspect` therefore shows the vote's term in the `commit` column and adds
//! 4294967296 to the vote of a committed vote. A hard state that does not fit this encoding
//! (written by something else) is reported as corruption.
//!
//! # Synchronous calls
//!
//! d-engine's `save_hard_state` and `flush` are synchronous while rocklog's writes are
//! futures. The adapter drives such a future to completion on the calling thread, which
//! is sound because nothing it waits for needs the caller's runtime: the writer runs on
//! its own OS thread and replies through channels. On a worker of a multi-threaded tokio
//! runtime the wait runs inside [`tokio::task::block_in_place`], so the worker's other
//! tasks move elsewhere; on a current-thread runtime or outside any runtime the thread
//! simply blocks for the one fsync, as a synchronous RocksDB write would. The writer must
//! be running: [`DEngineStorage::open`] starts it; with [`DEngineStorage::new`] use
//! [`LogStore::start`](crate::LogStore::start), or spawn [`Writer::run`](crate::Writer::run)
//! on a runtime other than a current-thread one the synchronous call would block.
//!
//! # Errors
//!
//! rocklog's [`Error`](crate::Error) becomes d-engine's
//! `Error::System(SystemError::Storage(StorageError::IoError(io)))`, whose `io` carries the
//! rocklog error as its inner error (kind `InvalidInput` for bad input, `InvalidData` for
//! corruption, `ResourceBusy` for a locked directory, `Other` otherwise); an I/O error on a
//! path becomes `StorageError::PathError`. [`rocklog_error`] gets the rocklog error back.
//!
//! # Restarting
//!
//! Dropping the last handle of the engine (every [`DEngineStorage`], store and group
//! clone) commits what is queued, closes the database and releases its lock before the
//! drop returns, so the directory can be reopened at once; [`DEngineStorage::shutdown`]
//! does the same explicitly.

mod bridge;
mod codec;
mod log;
mod meta;

use std::sync::Arc;

use d_engine_core::StorageEngine;

use crate::config::Config;
use crate::handle::Group;
use crate::handle::LogStore;

pub use codec::{decode_entry, decode_hard_state, encode_entry, encode_hard_state, rocklog_error};
pub use log::DEngineLogStore;
pub use meta::DEngineMetaStore;

/// d-engine's storage engine over one rocklog group: hands out the group's log store and
/// meta store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DEngineStorage {
    log: Arc<DEngineLogStore>,
    meta: Arc<DEngineMetaStore>,
}

impl DEngineStorage {
    /// Opens (or creates) a rocklog engine at `config.path`, starts its writer on its own
    /// thread, and serves group `group` of it.
    ///
    /// Fails as [`LogStore::start`](crate::LogStore::start) does (invalid config, a
    /// directory that is not rocklog's or is locked, a disk error), mapped as described in
    /// the [module docs](self#errors).
    pub fn open(config: Config, group: u64) -> Result<Self, d_engine_core::Error> {
        let store = LogStore::start(config)?;
        Ok(Self::new(&store, group))
    }

    /// Serves group `group` of an engine that is already open (several d-engine groups can
    /// share one engine and its fsyncs). Its writer must be running or about to: see the
    /// [module docs](self#synchronous-calls).
    pub fn new(store: &LogStore, group: u64) -> Self {
        let group = store.group(group);
        DEngineStorage {
            log: Arc::new(DEngineLogStore::new(group.clone())),
            meta: Arc::new(DEngineMetaStore::new(group)),
        }
    }

    /// The rocklog group holding the log and hard state.
    pub fn group(&self) -> &Group {
        self.log.group()
    }

    /// The engine the group lives in.
    pub fn store(&self) -> &LogStore {
        self.log.group().store()
    }

    /// Commits what is queued, syncs and closes the engine, releasing the directory: it can
    /// be reopened as soon as this returns. Every handle of the engine (other groups'
    /// included) fails with a closed error afterwards.
    ///
    /// Fails as [`LogStore::shutdown`](crate::LogStore::shutdown) does: only under
    /// `Durability::Buffered`, when writes could not be made durable.
    pub async fn shutdown(&self) -> Result<(), d_engine_core::Error> {
        Ok(self.store().shutdown().await?)
    }
}

impl StorageEngine for DEngineStorage {
    type LogStore = DEngineLogStore;
    type MetaStore = DEngineMetaStore;

    fn log_store(&self) -> Arc<DEngineLogStore> {
        Arc::clone(&self.log)
    }

    fn meta_store(&self) -> Arc<DEngineMetaStore> {
        Arc::clone(&self.meta)
    }
}
