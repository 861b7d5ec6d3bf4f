//! # rocklog
//!
//! A durable Raft log store on RocksDB, for one Raft group or thousands.
//!
//! - One **engine** per data directory holds the logs of many Raft groups (multi-raft),
//!   each with its own first/last index, purge boundary and hard state.
//! - One **writer** owns the write side. Appends, truncates, purges and hard-state saves
//!   from every group queue on a bounded channel and are *group-committed*: one RocksDB
//!   `WriteBatch` and one fsync carry everything queued, and every waiter is answered only
//!   after that sync. Under load, one fsync serves many proposers; a lone caller finding
//!   the writer idle commits on its own thread instead, saving two thread wake-ups
//!   ([`Config::inline_commits`]).
//! - Cloneable **handles** ([`LogStore`], [`Group`]) read straight from RocksDB. Writes
//!   are async; a caller on its own OS threads uses [`Group::blocking`] instead.
//!
//! ## Durability contract
//!
//! Under [`Durability::Sync`] (the default) a write's future resolves `Ok` only after the
//! batch holding it is in the WAL and fsynced: a crash right after `Ok` loses nothing.
//! Commands of one batch apply in the order they were sent, atomically. If a write or
//! fsync fails, every waiter of that batch gets [`Error::WriteFailed`] and the engine is
//! poisoned: later writes fail with [`Error::Poisoned`] until it is reopened, because after
//! a failed fsync the kernel may have dropped the dirty pages. Reads keep working.
//!
//! ## Layout
//!
//! Arrows point one way: adapters → handle → writer → storage.
//!
//! - `handle/`: [`LogStore`] (open, start, flush, shutdown, stats) and [`Group`] (writes
//!   sent to the writer; reads straight from RocksDB, retried under the write epoch),
//!   with [`BlockingGroup`], its writes for callers on OS threads;
//! - `writer/`: the actor ([`Writer`]): drain the channel, then commit one batch as a
//!   pipeline *stage → write → publish → answer*, with a syncer thread for pipelined
//!   appends; every write and fsync goes through one place (`writer/wal.rs`);
//! - `shared/`: what the writer and the handles share, one concern per file: the write
//!   epoch and its read protocol, poison, the writer's lifecycle, the [`Stats`] counters;
//! - `storage/`: RocksDB and the on-disk layout: key and record codecs, opening (options,
//!   creation, format version), recovery;
//! - [`offline`]: read-only access to a directory for `inspect`, `dump` and `check`;
//! - `adapters/`: `openraft` (0.9), `openraft10` (0.10), `d_engine`, `raft_rs` (each
//!   behind its feature); the two openraft adapters share `openraft_shared.rs`;
//! - [`config`], [`units`], [`metrics`], and the records ([`Entry`], [`HardState`],
//!   [`LogId`], [`LogState`]) and [`Error`]: the vocabulary every layer shares.
//!
//! Long-form documentation lives beside the crate in `docs/`: operations (configuration,
//! metrics, the `rocklog` tool), adapters, benchmarks, and reliability (the durability
//! contract in full and how it is tested).
//!
//! ## Example
//!
//! ```
//! use rocklog::{Config, Entry, HardState, LogId, LogStore};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! # rt.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let store = LogStore::start(Config::new(dir.path()))?;
//!
//! let group = store.group(1);
//! group.append(&[Entry::new(1, 1, "x = 1"), Entry::new(2, 1, "y = 2")]).await?;
//! group.save_hard_state(HardState { term: 1, vote: Some(7), commit: 2 }).await?;
//! assert_eq!(group.last_log_id()?, Some(LogId::new(1, 2)));
//!
//! // A new leader in term 2 overwrites the conflicting suffix from index 2.
//! group.append(&[Entry::new(2, 2, "y = 3")]).await?;
//! assert_eq!(group.entry(2)?.map(|e| e.payload), Some("y = 3".into()));
//!
//! group.purge(LogId::new(1, 1)).await?;
//! assert_eq!(group.first_index()?, Some(2));
//!
//! store.shutdown().await?;
//! // The directory can be reopened at once: everything acknowledged is there.
//! let store = LogStore::start(Config::new(dir.path()))?;
//! assert_eq!(store.group(1).entries(.., None)?.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```

#![forbid(unsafe_code)]

#[cfg(any(feature = "openraft", feature = "openraft10", feature = "d-engine", feature = "raft-rs"))]
mod adapters;
pub mod config;
mod error;
#[cfg(feature = "__testing")]
#[doc(hidden)]
pub mod fuzzing;
mod handle;
pub mod metrics;
pub mod offline;
mod records;
mod shared;
mod state;
mod storage;
pub mod units;
mod writer;

#[cfg(feature = "d-engine")]
pub use adapters::d_engine;
#[cfg(feature = "openraft")]
pub use adapters::openraft;
#[cfg(feature = "openraft10")]
pub use adapters::openraft10;
#[cfg(feature = "raft-rs")]
pub use adapters::raft_rs;
pub use config::{Compression, Config, Durability};
pub use error::{Error, Result};
pub use handle::{BlockingGroup, CheckpointReport, CopyMethod, Group, LogStore};
pub use records::{Entry, HardState, LogId};
pub use shared::Stats;
pub use state::LogState;
pub use storage::codec::FORMAT_VERSION;
pub use storage::{StorageState, StorageStats};
pub use units::ByteSize;
pub use writer::Writer;
