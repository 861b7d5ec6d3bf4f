//! An [openraft](https://docs.rs/openraft/0.10.0-alpha.37) 0.10 log store on rocklog (cargo
//! feature `openraft10`, openraft pinned to `=0.10.0-alpha.37`).
//!
//! [`LogStorage`] implements openraft 0.10's [`RaftLogStorage`] over one rocklog
//! [`Group`], generic over your [`RaftTypeConfig`]; its `LogReader` is a [`LogReader`] (a
//! cheap clone reading the same group). Many Raft groups can share one
//! [`LogStore`](crate::LogStore): each `LogStorage` on its own group, all group-committed
//! by the one writer.
//!
//! This is the adapter that gets group commit out of a single busy leader: openraft 0.10
//! submits an append and goes on without waiting for its flush (`IOFlushed`), and merges
//! queued client writes into one append (`Config::api_batch_capacity`), so several of
//! one leader's appends share an fsync. openraft 0.9's core waits for each flush (see the
//! 0.9 adapter, `rocklog::openraft`, and `docs/adapters.md`).
//!
//! It sits beside the 0.9 adapter: the crate is a renamed dependency, `openraft10`, so one
//! build can hold both. openraft 0.10 is only published as alphas, and each alpha may
//! change the storage traits, so the version is pinned with `=`; moving it forward is
//! bumping the pin and rerunning `tests/openraft10_suite.rs` (openraft's own suite).
//!
//! Your type config's committed leader id must implement [`LeaderTerm`] (rocklog files
//! every entry under a `u64` term); both leader ids openraft ships do, with any unsigned
//! integer term.
//!
//! # What goes where
//!
//! | openraft 0.10 | rocklog |
//! |---|---|
//! | entry with log id `(term, node)-index` | [`Entry`](crate::Entry) at `index`, term `term` ([`LeaderTerm`]); the payload is the whole openraft entry in MessagePack, so the leader id comes back intact |
//! | `append(entries, callback)` | [`Group::append_then`]: returns once the entries are readable; rocklog's syncer thread calls `callback.io_completed` after the fsync that holds them, so many appends share one fsync |
//! | `truncate_after(log_id)` | [`Group::truncate`]`(log_id.index + 1)` (`None`: from 0): `[index + 1, ∞)` |
//! | `purge(log_id)` | the log id is saved in the metadata record, then [`Group::purge`] deletes `(-∞, index]` (past the end: an empty log whose last log id is the purged one) |
//! | `save_vote` / `save_committed` | the group's metadata record ([`Group::save_metadata`]): openraft's vote (leader id and committed flag) and committed log id, which rocklog's [`HardState`](crate::HardState) cannot hold for generic ids |
//! | `read_vote` (on the reader) | the vote last saved, shared in memory by the storage and its readers |
//! | `get_log_state` | last purged = the saved purged log id; last = the last entry's log id, or the purged one |
//! | `io::Error` | rocklog's [`Error`](crate::Error) travels inside (`ErrorKind::Other`; `get_ref()` and a downcast give it back); the adapter's own refusals are `InvalidInput`, records that do not decode `InvalidData` |
//!
//! openraft's rule that log and vote I/O apply in order holds because every write goes
//! through rocklog's one writer in the order the adapter submits it: an append returns
//! once its entries are in the writer's batch, and a later vote or truncate is applied
//! (and made durable) after it.
//!
//! Purges, logs that do not start at 0 or 1, and the payload format are handled as in the
//! 0.9 adapter (`rocklog::openraft`); the code is shared.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use openraft10::network::{NetSnapshot, RaftNetworkFactory};
//! use openraft10::storage::RaftStateMachine;
//! use openraft10::Raft;
//! use rocklog::openraft10::LogStorage;
//! use rocklog::{Config, LogStore};
//!
//! openraft10::declare_raft_types!(pub TypeConfig: D = String, R = String);
//!
//! async fn start_node<N, SM>(
//!     id: u64,
//!     store: &LogStore,
//!     network: N,
//!     state_machine: SM,
//! ) -> Result<Raft<TypeConfig, SM>, Box<dyn std::error::Error>>
//! where
//!     N: RaftNetworkFactory<TypeConfig>,
//!     N::Network: NetSnapshot<TypeConfig, SnapshotData = SM::SnapshotData>,
//!     SM: RaftStateMachine<TypeConfig>,
//! {
//!     // Raft group 1 of this node's engine; other groups can share `store`.
//!     let log = LogStorage::<TypeConfig>::open(store.group(1)).await?;
//!     let config = openraft10::Config {
//!         // Merge up to 256 queued client writes into one append (one fsync).
//!         api_batch_capacity: 256,
//!         ..Default::default()
//!     };
//!     let config = Arc::new(config.validate()?);
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
//! `examples/openraft10_cluster.rs` runs a 3-node cluster this way, and
//! `tests/openraft10_suite.rs` passes openraft 0.10's own storage test suite.

mod codec;
mod reader;

use std::fmt::{self, Debug};
use std::io;

use ::openraft10::storage::{IOFlushed, LogState, RaftLogStorage};
use ::openraft10::type_config::alias::{CommittedLeaderIdOf, LogIdOf, VoteOf};
use ::openraft10::{OptionalSend, RaftTypeConfig};

pub use self::codec::LeaderTerm;
use self::codec::{Meta, boundary, encode_entry};
pub use self::reader::LogReader;
pub use crate::adapters::openraft_shared::DEFAULT_MAX_READ_BYTES;
use crate::adapters::openraft_shared::{Failure, GroupLog};
use crate::handle::Group;

/// openraft 0.10's [`RaftLogStorage`] over one rocklog [`Group`]. See the
/// [module docs](self) for the mapping.
///
/// Open one per Raft group with [`LogStorage::open`] and hand it to `openraft::Raft::new`.
/// Only this value may write to its group: it keeps openraft's vote, committed and purged
/// log ids in memory (loaded by `open`, shared with its readers) and in the group's
/// metadata record.
pub struct LogStorage<C: RaftTypeConfig> {
    reader: LogReader<C>,
}

impl<C: RaftTypeConfig> Debug for LogStorage<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogStorage").field("reader", &self.reader).finish()
    }
}

impl<C> LogStorage<C>
where
    C: RaftTypeConfig,
    CommittedLeaderIdOf<C>: LeaderTerm,
{
    /// Opens openraft's log in `group` (which need not exist yet): loads the vote,
    /// committed and purged log ids, and finishes a purge a crash interrupted.
    ///
    /// Fails when the metadata record does not decode (`InvalidData`: the group holds
    /// something other than this adapter's data), or when rocklog cannot read or write
    /// (the engine is closed or poisoned, or RocksDB fails; the [`crate::Error`] is the
    /// `io::Error`'s inner error).
    pub async fn open(group: Group) -> Result<Self, io::Error> {
        let meta = Meta::<C>::load(&group)?;
        let purged = boundary::<C>(meta.purged.as_ref())?;
        let log = GroupLog::new(group);
        log.apply_purge(purged).await?;
        Ok(LogStorage { reader: LogReader::new(log, meta) })
    }

    /// Sets the bound, in payload bytes, on one `limited_get_log_entries` answer (which
    /// replication uses), for this value and the readers it hands out from now on.
    /// Defaults to [`DEFAULT_MAX_READ_BYTES`].
    #[must_use]
    pub fn with_max_read_bytes(mut self, max_read_bytes: u64) -> Self {
        self.reader.log_mut().set_max_read_bytes(max_read_bytes);
        self
    }

    /// The rocklog group holding the log.
    pub fn group(&self) -> &Group {
        self.reader.group()
    }

    fn log(&self) -> &GroupLog {
        self.reader.log()
    }

    fn meta(&self) -> Meta<C> {
        self.reader.meta().clone()
    }

    /// rocklog's boundary for openraft's saved purged log id.
    fn purged(&self) -> Result<Option<crate::records::LogId>, Failure> {
        boundary::<C>(self.reader.meta().purged.as_ref())
    }

    /// Saves `meta` as the group's metadata record, then adopts it (for the readers too).
    async fn save_meta(&self, meta: Meta<C>) -> Result<(), io::Error> {
        self.log().save_meta(&meta).await?;
        *self.reader.meta() = meta;
        Ok(())
    }
}

impl<C> RaftLogStorage<C> for LogStorage<C>
where
    C: RaftTypeConfig,
    CommittedLeaderIdOf<C>: LeaderTerm,
{
    type LogReader = LogReader<C>;

    /// The saved purged log id, and the log id of the last entry (or the purged one when
    /// the log is empty).
    ///
    /// Fails when rocklog cannot read the last entry or it does not decode.
    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let purged = self.meta().purged;
        let last = self.reader.last_log_id(purged.as_ref().map(|p| p.index))?;
        Ok(LogState { last_log_id: last.or_else(|| purged.clone()), last_purged_log_id: purged })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader.clone()
    }

    /// Saves the vote (leader id and committed flag) in the metadata record; returns once
    /// it is durable, after every append submitted before it.
    ///
    /// Fails when rocklog cannot write (closed, poisoned, or the write or fsync failed).
    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        let meta = Meta::<C> { vote: Some(vote.clone()), ..self.meta() };
        self.save_meta(meta).await
    }

    /// Saves the committed log id in the metadata record; returns once it is durable.
    ///
    /// Fails when rocklog cannot write.
    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let current = self.meta();
        if committed == current.committed {
            return Ok(());
        }
        self.save_meta(Meta::<C> { committed, ..current }).await
    }

    /// The last committed log id saved; no disk read.
    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        Ok(self.meta().committed)
    }

    /// Appends `entries` (replacing any suffix from the first one's index) and returns as
    /// soon as they are readable, without waiting for their fsync: rocklog's syncer
    /// thread calls `callback` once the group commit holding them is fsynced (see
    /// [`Group::append_then`]), so openraft's next appends join the same or the next
    /// fsync.
    ///
    /// Entries at or below the purged index are left out (openraft never reads there).
    ///
    /// Fails, dropping `callback` unreported (openraft then sees the error returned), when
    /// an entry does not encode, when rocklog refuses the entries (a gap, terms going back,
    /// an entry over `max_entry_bytes`), or when it cannot write.
    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded = entries.into_iter().map(|e| encode_entry::<C>(&e)).collect::<Result<Vec<_>, _>>()?;
        let on_durable =
            move |result: crate::error::Result<()>| callback.io_completed(result.map_err(io::Error::other));
        self.log().append_then(self.purged()?, encoded, on_durable).await?;
        Ok(())
    }

    /// Deletes the entries after `last_log_id` (all of them for `None`); returns once
    /// durable.
    ///
    /// Fails when that would delete at or below the purged index, or rocklog cannot write.
    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let Some(from) = last_log_id.map_or(Some(0), |id| id.index.checked_add(1)) else {
            return Ok(()); // nothing lies after u64::MAX
        };
        self.log().truncate(self.purged()?, from).await?;
        Ok(())
    }

    /// Records `log_id` as purged (durably, first), then deletes the entries up to it.
    /// Past the last entry it leaves an empty log whose last log id is `log_id`. Purging
    /// at or below the purged index is a no-op.
    ///
    /// Fails when rocklog cannot write.
    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let current = self.meta();
        if current.purged.as_ref().is_some_and(|p| p.index >= log_id.index) {
            return Ok(());
        }
        self.save_meta(Meta::<C> { purged: Some(log_id), ..current }).await?;
        self.log().apply_purge(self.purged()?).await?;
        Ok(())
    }
}
