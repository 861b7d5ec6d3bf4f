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
//! | `append(entries, callback)` | [`Group::append`]; returns once the group commit holding the entries is fsynced, then calls `callback` |
//! | `truncate(log_id)` | [`Group::truncate`]`(log_id.index)`: `[index, ∞)` |
//! | `purge(log_id)` | the log id is saved in the metadata record, then [`Group::purge`] deletes `(-∞, index]` (past the end: an empty log whose last log id is the purged one) |
//! | `save_vote` / `save_committed` | the group's metadata record ([`Group::save_metadata`]): openraft's vote (leader id and committed flag) and committed log id, which rocklog's [`HardState`](crate::HardState) cannot hold for a generic node id |
//! | `get_log_state` | last purged = the saved purged log id; last = the last entry's log id, or the purged one |
//!
//! Every write resolves after the group commit holding it is durable (under
//! [`Durability::Sync`](crate::Durability::Sync)), and the adapter awaits each before the
//! next, so openraft's rule that log and vote I/O apply in order holds.
//!
//! openraft's saved purged log id is the authority; rocklog's purge boundary (term and
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
    ErrorSubject, ErrorVerb, LogId, LogState, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig,
    StorageError, Vote,
};

use self::codec::{Meta, decode_meta, encode_entry, encode_meta, refused, rocklog_error};
pub use self::reader::{DEFAULT_MAX_READ_BYTES, LogReader};
use crate::{Error, Group, LogState as RocklogState};

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
        let meta = match group.metadata() {
            Ok(Some(bytes)) => decode_meta(&bytes)?,
            Ok(None) | Err(Error::GroupNotFound(_)) => Meta::default(),
            Err(e) => return Err(rocklog_error(ErrorSubject::Store, ErrorVerb::Read, &e)),
        };
        let storage = LogStorage { reader: LogReader::new(group), meta };
        storage.apply_purge().await?;
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

    fn state(&self) -> Result<RocklogState, StorageError<C::NodeId>> {
        self.reader.state()
    }

    /// Saves `meta` as the group's metadata record, then adopts it.
    async fn save_meta(
        &mut self,
        meta: Meta<C::NodeId>,
        subject: ErrorSubject<C::NodeId>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let bytes = encode_meta(&meta)?;
        self.group().save_metadata(bytes).await.map_err(|e| rocklog_error(subject, ErrorVerb::Write, &e))?;
        self.meta = meta;
        Ok(())
    }

    /// Makes rocklog's log agree with the saved purged log id: deletes the entries up to
    /// it unless rocklog's boundary is already there (or above). The boundary takes the
    /// term of the entry at that index when there is one, so it never conflicts with it.
    async fn apply_purge(&self) -> Result<(), StorageError<C::NodeId>> {
        let Some(purged) = self.meta.purged.clone() else {
            return Ok(());
        };
        let state = self.state()?;
        if state.purged.is_some_and(|b| b.index >= purged.index) {
            return Ok(());
        }
        let subject = || ErrorSubject::Log(purged.clone());
        let term = if state.contains(purged.index) {
            self.group().term(purged.index).map_err(|e| rocklog_error(subject(), ErrorVerb::Read, &e))?
        } else {
            None
        };
        let upto = crate::LogId::new(term.unwrap_or(purged.leader_id.term), purged.index);
        self.group().purge(upto).await.map_err(|e| rocklog_error(subject(), ErrorVerb::Delete, &e))
    }

    /// Clears rocklog's log (every entry and its boundary), then restores the boundary of
    /// the saved purged log id.
    async fn clear(&self) -> Result<(), StorageError<C::NodeId>> {
        self.group().reset().await.map_err(|e| rocklog_error(ErrorSubject::Logs, ErrorVerb::Delete, &e))?;
        self.apply_purge().await
    }

    /// Makes rocklog accept entries starting at `first` (above openraft's purged index) of
    /// `term` where openraft's log allows them but rocklog's rules would not: a log that
    /// does not start at 0 or 1 (openraft's suite builds one), or a restart below a
    /// boundary the adapter itself set for such a log.
    async fn make_room(&self, first: u64, term: u64) -> Result<(), StorageError<C::NodeId>> {
        let subject = || ErrorSubject::LogIndex(first);
        let mut state = self.state()?;
        if state.purged.is_some_and(|b| first <= b.index) {
            // The boundary is the adapter's own (above openraft's purged id), and every
            // entry lies above it: they are all replaced.
            self.clear().await?;
            state = self.state()?;
        }
        if state.is_empty() {
            let start_ok = match state.next_index() {
                Some(next) => first == next,
                None => first <= 1,
            };
            if !start_ok {
                let boundary = crate::LogId::new(term, first.saturating_sub(1));
                self.group()
                    .purge(boundary)
                    .await
                    .map_err(|e| rocklog_error(subject(), ErrorVerb::Write, &e))?;
            }
        }
        Ok(())
    }

    /// Appends `entries`, leaving out those at or below openraft's purged index: they are
    /// covered by the snapshot the purge followed, and openraft reads nothing there.
    /// Returns once they are readable; `callback` hears when they are durable.
    async fn append_entries(
        &self,
        mut entries: Vec<C::Entry>,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>> {
        if let Some(p) = &self.meta.purged {
            entries.retain(|e| e.get_log_id().index > p.index);
        }
        let Some(first) = entries.first().map(|e| e.get_log_id().clone()) else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        let prepared = match entries.iter().map(encode_entry::<C>).collect::<Result<Vec<_>, _>>() {
            Ok(encoded) => self.make_room(first.index, first.leader_id.term).await.map(|()| encoded),
            Err(e) => Err(e),
        };
        let encoded = match prepared {
            Ok(encoded) => encoded,
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                return Err(e);
            }
        };
        // The writer thread calls back once the group commit holding these entries is
        // fsynced; the append itself returns as soon as they are readable, so openraft
        // replicates them to followers while the leader's fsync runs.
        let on_durable = move |result: crate::Result<()>| {
            callback.log_io_completed(result.map_err(std::io::Error::other));
        };
        self.group()
            .append_then(&encoded, on_durable)
            .await
            .map_err(|e| rocklog_error(ErrorSubject::Log(first), ErrorVerb::Write, &e))
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
        let state = self.state()?;
        let last = match (state.first_index, state.last_index()) {
            (Some(_), Some(last)) if purged.as_ref().is_none_or(|p| last > p.index) => {
                let id = self.reader.log_id(last)?;
                Some(id.ok_or_else(|| {
                    let reason = format!("entry {last} vanished while it was the last one");
                    refused(ErrorSubject::LogIndex(last), ErrorVerb::Read, reason)
                })?)
            }
            _ => purged.clone(),
        };
        Ok(LogState { last_purged_log_id: purged, last_log_id: last })
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
    /// Fails, after reporting the error to `callback` too, when an entry does not encode,
    /// when rocklog refuses the entries (a gap, terms going back, an entry over
    /// `max_entry_bytes`), or when it cannot write.
    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.append_entries(entries.into_iter().collect(), callback).await
    }

    /// Deletes the entries from `log_id.index` on; returns once durable.
    ///
    /// Fails when `log_id.index` is at or below the purged index, or rocklog cannot
    /// write.
    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let from = log_id.index;
        let subject = || ErrorSubject::Log(log_id.clone());
        if let Some(p) = self.meta.purged.as_ref().filter(|p| from <= p.index) {
            return Err(refused(
                subject(),
                ErrorVerb::Delete,
                format!("truncate at or below the purged log id {p}"),
            ));
        }
        let state = self.state()?;
        if state.purged.is_some_and(|b| from <= b.index) {
            // Below a boundary the adapter set for a log not starting at 0 or 1.
            return self.clear().await;
        }
        match self.group().truncate(from).await {
            Ok(()) | Err(Error::GroupNotFound(_)) => Ok(()),
            Err(e) => Err(rocklog_error(subject(), ErrorVerb::Delete, &e)),
        }
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
        self.save_meta(meta, ErrorSubject::Log(log_id)).await?;
        self.apply_purge().await
    }
}
