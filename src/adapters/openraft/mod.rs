//! An [openraft](https://docs.rs/openraft/0.9) 0.9 log store on rocklog (cargo feature
//! `openraft`).
//!
//! [`LogStorage`] implements openraft's storage-v2 [`RaftLogStorage`] and
//! [`RaftLogReader`] over one rocklog [`Group`], generic over your
//! [`RaftTypeConfig`]; its `LogReader` is a [`LogReader`] (a cheap clone reading the same
//! group). Many Raft groups can share one [`LogStore`](crate::LogStore): each
//! `LogStorage` on its own group, all group-committed by the one writer.
//!
//! Enabling this feature turns on openraft's `storage-v2` feature, which **removes
//! openraft's v1 `RaftStorage` trait (and its `Adaptor`) for the whole build**: a crate
//! in the same build that implements the v1 trait no longer compiles.
//!
//! # What goes where
//!
//! | openraft | rocklog |
//! |---|---|
//! | entry with log id `(term, node)-index` | [`Entry`](crate::Entry) at `index`, term `term`; the payload is the whole openraft entry in MessagePack, so the leader id comes back intact |
//! | `append(entries, callback)` | [`Group::append_then`]: returns once the entries are readable; rocklog's syncer thread calls `callback` after the fsync that holds them (0.9's core waits for it before its next append) |
//! | `truncate(log_id)` | [`Group::truncate`]`(log_id.index)`: `[index, ∞)` |
//! | `purge(log_id)` | the log id is saved in the metadata record, then [`Group::purge`] deletes `(-∞, index]` (past the end: an empty log whose last log id is the purged one) |
//! | `save_vote` / `save_committed` | the group's metadata record ([`Group::save_metadata`]): openraft's vote (leader id and committed flag) and committed log id, which rocklog's [`HardState`](crate::HardState) cannot hold for a generic node id |
//! | `get_log_state` | last purged = the saved purged log id; last = the last entry's log id, or the purged one |
//!
//! Every write but `append` resolves after the group commit holding it is durable (under
//! [`Durability::Sync`](crate::Durability::Sync)); `append` resolves once its entries are
//! written and reports durability through its callback. All of them go through rocklog's
//! one writer in the order the adapter submits them, so openraft's rule that log and vote
//! I/O apply in order holds.
//!
//! The version-independent half is shared with the openraft 0.10 adapter
//! (`rocklog::openraft10`). openraft's saved purged log id is the authority; rocklog's purge boundary (term and
//! index only) follows it, and `open` finishes a purge a crash cut between the two. Two
//! states rocklog's own rules would refuse are mapped instead: a log whose first entry is
//! above index 1 (openraft's suite builds one) gets a rocklog boundary just below it,
//! which openraft never sees; and entries at or below the purged index, which openraft
//! never reads, are left out of an append.
//!
//! # Payload format
//!
//! Entries and the metadata record are MessagePack ([`rmp_serde`]) with structs written
//! as maps. MessagePack is self-describing, so user types whose `Deserialize` needs
//! `deserialize_any` (`#[serde(untagged)]`, `#[serde(flatten)]`, internally tagged enums)
//! round-trip; keeping field names costs a few bytes per field but keeps
//! `#[serde(skip_serializing_if)]` and later-added `#[serde(default)]` fields working,
//! which positional encodings (bincode, MessagePack arrays) silently break.
//!
//! # Example
//!
//! ```no_run
//! use std::io::Cursor;
//! use std::sync::Arc;
//!
//! use openraft::storage::RaftStateMachine;
//! use openraft::{Raft, RaftNetworkFactory};
//! use rocklog::openraft::LogStorage;
//! use rocklog::{Config, LogStore};
//!
//! openraft::declare_raft_types!(pub TypeConfig: D = String, R = String);
//!
//! async fn start_node<N, SM>(
//!     id: u64,
//!     store: &LogStore,
//!     network: N,
//!     state_machine: SM,
//! ) -> Result<Raft<TypeConfig>, Box<dyn std::error::Error>>
//! where
//!     N: RaftNetworkFactory<TypeConfig>,
//!     SM: RaftStateMachine<TypeConfig>,
//! {
//!     // Raft group 1 of this node's engine; other groups can share `store`.
//!     let log = LogStorage::<TypeConfig>::open(store.group(1)).await?;
//!     let config = Arc::new(openraft::Config::default().validate()?);
//!     Ok(Raft::new(id, config, network, log, state_machine).await?)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = LogStore::start(Config::new("/var/lib/mynode/raft-log"))?;
//! // let raft = start_node(1, &store, my_network, my_state_machine).await?;
//! // ...
//! store.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! `examples/openraft_cluster.rs` runs a 3-node cluster this way, and
//! `tests/openraft_suite.rs` passes openraft's own storage test suite.

// openraft's traits return `StorageError` (~190 bytes) by value; the helpers return what
// the traits must.
#![allow(clippy::result_large_err)]

mod codec;
mod reader;

use std::fmt::{self, Debug};

use ::openraft::storage::{LogFlushed, RaftLogStorage};
use ::openraft::{
    ErrorSubject, ErrorVerb, LogId, LogState, OptionalSend, RaftLogReader, RaftTypeConfig, StorageError, Vote,
};

use self::codec::{Meta, boundary, encode_entry, storage_error};
pub use self::reader::LogReader;
pub use crate::adapters::openraft_shared::DEFAULT_MAX_READ_BYTES;
use crate::adapters::openraft_shared::{Failure, GroupLog};
use crate::handle::Group;

/// openraft's [`RaftLogStorage`] over one rocklog [`Group`]. See the
/// [module docs](self) for the mapping.
///
/// Open one per Raft group with [`LogStorage::open`] and hand it to `openraft::Raft::new`.
/// Only this value may write to its group: it keeps openraft's vote, committed and purged
/// log ids in memory (loaded by `open`) and in the group's metadata record.
pub struct LogStorage<C: RaftTypeConfig> {
    reader: LogReader<C>,
    meta: Meta<C::NodeId>,
}

impl<C: RaftTypeConfig> Debug for LogStorage<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStorage").field("reader", &self.reader).field("meta", &self.meta).finish()
    }
}

impl<C: RaftTypeConfig> LogStorage<C> {
    /// Opens openraft's log in `group` (which need not exist yet): loads the vote,
    /// committed and purged log ids, and finishes a purge a crash interrupted.
    ///
    /// Fails with a `StorageError` when the metadata record does not decode (the group
    /// holds something other than this adapter's data), or when rocklog cannot read or
    /// write (the engine is closed or poisoned, or RocksDB fails).
    pub async fn open(group: Group) -> Result<Self, StorageError<C::NodeId>> {
        let meta = Meta::load(&group).map_err(|e| storage_error(ErrorSubject::Store, ErrorVerb::Read, &e))?;
        let storage = LogStorage { reader: LogReader::new(group), meta };
        let purged = storage.meta.purged.clone();
        storage.log().apply_purge(boundary(purged.as_ref())).await.map_err(|e| {
            let subject = purged.map_or(ErrorSubject::Logs, ErrorSubject::Log);
            storage_error(subject, ErrorVerb::Delete, &e)
        })?;
        Ok(storage)
    }

    /// Sets the bound, in payload bytes, on one `limited_get_log_entries` answer (which
    /// replication uses), for this value and the readers it hands out from now on.
    /// Defaults to [`DEFAULT_MAX_READ_BYTES`].
    #[must_use]
    pub fn with_max_read_bytes(mut self, max_read_bytes: u64) -> Self {
        self.reader.set_max_read_bytes(max_read_bytes);
        self
    }

    /// The rocklog group holding the log.
    pub fn group(&self) -> &Group {
        self.reader.group()
    }

    fn log(&self) -> &GroupLog {
        self.reader.log()
    }

    /// rocklog's boundary for openraft's saved purged log id.
    fn purged(&self) -> Option<crate::records::LogId> {
        boundary(self.meta.purged.as_ref())
    }

    /// Saves `meta` as the group's metadata record, then adopts it.
    async fn save_meta(
        &mut self,
        meta: Meta<C::NodeId>,
        subject: ErrorSubject<C::NodeId>,
    ) -> Result<(), StorageError<C::NodeId>> {
        self.log().save_meta(&meta).await.map_err(|e| storage_error(subject, ErrorVerb::Write, &e))?;
        self.meta = meta;
        Ok(())
    }
}

impl<C: RaftTypeConfig> RaftLogReader<C> for LogStorage<C> {
    /// See [`LogReader`]'s implementation.
    ///
    /// Fails as [`LogReader`]'s does.
    async fn try_get_log_entries<RB: std::ops::RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        self.reader.try_get_log_entries(range).await
    }

    /// See [`LogReader`]'s implementation.
    ///
    /// Fails as [`LogReader`]'s does.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        self.reader.limited_get_log_entries(start, end).await
    }
}

impl<C: RaftTypeConfig> RaftLogStorage<C> for LogStorage<C> {
    type LogReader = LogReader<C>;

    /// The saved purged log id, and the log id of the last entry (or the purged one when
    /// the log is empty).
    ///
    /// Fails when rocklog cannot read the last entry or it does not decode.
    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let purged = self.meta.purged.clone();
        let last = self.reader.last_log_id(purged.as_ref().map(|p| p.index))?;
        Ok(LogState { last_log_id: last.or_else(|| purged.clone()), last_purged_log_id: purged })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader.clone()
    }

    /// Saves the vote (leader id and committed flag) in the metadata record; returns once
    /// it is durable.
    ///
    /// Fails when rocklog cannot write (closed, poisoned, or the write or fsync failed).
    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let meta = Meta { vote: Some(vote.clone()), ..self.meta.clone() };
        self.save_meta(meta, ErrorSubject::Vote).await
    }

    /// The last vote saved; no disk read.
    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.meta.vote.clone())
    }

    /// Saves the committed log id in the metadata record; returns once it is durable.
    ///
    /// Fails when rocklog cannot write.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        if committed == self.meta.committed {
            return Ok(());
        }
        let meta = Meta { committed, ..self.meta.clone() };
        self.save_meta(meta, ErrorSubject::Store).await
    }

    /// The last committed log id saved; no disk read.
    async fn read_committed(&mut self) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.meta.committed.clone())
    }

    /// Appends `entries` (replacing any suffix from the first one's index) and returns as
    /// soon as they are readable; rocklog's writer thread calls `callback` once the group
    /// commit holding them is fsynced (see [`Group::append_then`](crate::Group::append_then)),
    /// so openraft replicates them while the leader's fsync runs.
    ///
    /// Entries at or below the purged index are left out (openraft never reads there).
    ///
    /// Fails, dropping `callback` unreported (openraft then sees the error returned), when
    /// an entry does not encode, when rocklog refuses the entries (a gap, terms going back,
    /// an entry over `max_entry_bytes`), or when it cannot write.
    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        use ::openraft::RaftLogId;
        let mut first = None;
        let encoded = entries
            .into_iter()
            .map(|e| {
                first.get_or_insert_with(|| e.get_log_id().clone());
                encode_entry::<C>(&e)
            })
            .collect::<Result<Vec<_>, Failure>>();
        let on_durable = move |result: crate::error::Result<()>| {
            callback.log_io_completed(result.map_err(std::io::Error::other));
        };
        let appended = match encoded {
            Ok(encoded) => self.log().append_then(self.purged(), encoded, on_durable).await,
            Err(e) => Err(e),
        };
        appended.map_err(|e| {
            let subject = first.map_or(ErrorSubject::Logs, ErrorSubject::Log);
            storage_error(subject, ErrorVerb::Write, &e)
        })
    }

    /// Deletes the entries from `log_id.index` on; returns once durable.
    ///
    /// Fails when `log_id.index` is at or below the purged index, or rocklog cannot
    /// write.
    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let truncated = self.log().truncate(self.purged(), log_id.index).await;
        truncated.map_err(|e| storage_error(ErrorSubject::Log(log_id), ErrorVerb::Delete, &e))
    }

    /// Records `log_id` as purged (durably, first), then deletes the entries up to it.
    /// Past the last entry it leaves an empty log whose last log id is `log_id`. Purging
    /// at or below the purged index is a no-op.
    ///
    /// Fails when rocklog cannot write.
    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        if self.meta.purged.as_ref().is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        let meta = Meta { purged: Some(log_id.clone()), ..self.meta.clone() };
        self.save_meta(meta, ErrorSubject::Log(log_id.clone())).await?;
        let purged = self.log().apply_purge(self.purged()).await;
        purged.map_err(|e| storage_error(ErrorSubject::Log(log_id), ErrorVerb::Delete, &e))
    }
}
